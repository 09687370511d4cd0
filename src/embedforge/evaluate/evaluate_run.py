"""``embedforge evaluate RUN_DIR``: every metric of a trained run, in one metrics.json.

The run's held-out items (see :mod:`embedforge.run_items`) are
measured the ways practitioners compare embeddings: retrieval against the
training items (P@1, R-precision, MAP@R, MAP@k, MRR, recall@k), clustering (NMI,
AMI), kNN classification, a linear probe, and the few-shot curve.
``mean_average_precision`` is PML's MAP@k, which divides by R (all of the
query's relevant items), so with k = 5 it stays far below 1 when classes are
large; MAP@R is the one to compare.

Palette runs add view matching (their own validation) and, with the ``[emd]`` extra, how
far the embedding agrees with exact EMD in CIELAB, the perceptual truth of search by example
(:mod:`embedforge.metrics.emd_agreement`): recall@10 of each held-out palette's EMD
neighbours among its embedding neighbours in the training palettes, and Spearman's rho of
the two distances over sampled pairs. Exact EMD is one linear programme per pair, so it is
measured on a seeded sample of at most :data:`EMD_QUERIES` held-out and
:data:`EMD_REFERENCE` training palettes; without POT, ``metrics.json`` holds a note naming
the extra instead. Unlabelled palettes have only these.

Re-identification runs whose held-out images include individuals with no training image also
get the open-set sweep: the distance threshold before which "new individual" is inserted,
calibrated for MAP@5 on the held-out images (so that MAP@5 is optimistic; the curve shows how
sharp the optimum is).
"""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedforge.errors import UserError
from embedforge.evaluate.open_set import NEW_LABEL, calibrate_threshold, mark_unseen_as_new
from embedforge.evaluate.probes import few_shot_curve, knn_accuracy, linear_probe
from embedforge.files.atomic import atomic_write_text
from embedforge.files.run_folder import METRICS
from embedforge.metrics.collapse import collapse_metrics
from embedforge.metrics.emd import LabPalettes, emd_to_collection, has_colours, require_pot
from embedforge.metrics.emd_agreement import (
    DEFAULT_PAIRS,
    emd_spearman,
    recall_at_k_of_emd_neighbours,
)
from embedforge.metrics.knn import knn_search
from embedforge.metrics.retrieval import ALL_METRIC_NAMES, retrieval_metrics
from embedforge.run_items import RunEmbeddings, load_run_embeddings

K = 5  # neighbours for MAP@k, recall@k and the kNN vote
OPEN_SET_NEIGHBOURS = 20  # neighbour rows the threshold sweep walks
EMD_K = 10  # EMD neighbours a held-out palette's embedding neighbours are checked against
EMD_QUERIES = 50
"""Held-out palettes (a seeded sample) whose exact EMD to the reference sample is solved."""
EMD_REFERENCE = 1_000
"""Training palettes (a seeded sample) they are compared with: at most 50,000 EMD solves."""


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    run: RunEmbeddings | None = None,
    seed: int = 0,
    allow_changed_data: bool = False,
) -> dict[str, Any]:
    """The metrics of ``run_dir``'s best checkpoint, also written to ``run_dir/metrics.json``.

    ``run``: its embeddings when the caller already has them (the report does).
    ``allow_changed_data``: score data that changed since training (see
    :func:`~embedforge.run_items.load_run_embeddings`); ``metrics.json`` then
    says ``"data": "changed since training"``.
    """
    run_dir = Path(run_dir)
    run = run or load_run_embeddings(run_dir, allow_changed_data=allow_changed_data)
    metrics: dict[str, Any] = {
        "kind": "palettes" if run.view_matching else "images",
        "data": "changed since training" if run.data_changed else "as trained",
        "queries": len(run.query),
        "reference": len(run.reference),
        "k": K,
    }
    metrics["collapse"] = collapse_metrics(run.query)  # of the held-out embeddings
    if run.view_matching:
        metrics["view_matching"] = run.view_matching
    if run.query_sets is not None:
        metrics["emd"] = _emd_agreement(run, seed)
    if run.query_labels is not None:
        metrics["labels"] = run.label_name
        metrics.update(_labelled_metrics(run, seed))
        open_set = _open_set(run)
        if open_set:
            metrics["open_set"] = open_set
    text = json.dumps(metrics, indent=2) + "\n"
    atomic_write_text(run_dir / METRICS, text)
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """The headline numbers of :func:`evaluate_run`'s result, on one line."""
    parts = [f"{name} {value:.4f}" for name, value in metrics.get("view_matching", {}).items()]
    if "spearman" in metrics.get("emd", {}):
        emd = metrics["emd"]
        parts += [
            f"EMD recall@{emd['k']} {emd['recall_at_k']:.4f}",
            f"EMD rho {emd['spearman']:.4f}",
        ]
    if "retrieval" in metrics:
        retrieval = metrics["retrieval"]
        parts += [
            f"P@1 {retrieval['precision_at_1']:.4f}",
            f"MAP@R {retrieval['mean_average_precision_at_r']:.4f}",
            f"kNN {metrics['knn_accuracy']:.4f}",
            f"linear probe {metrics['linear_probe']:.4f}",
        ]
    return "  ".join(parts)


def _labelled_metrics(run: RunEmbeddings, seed: int) -> dict[str, Any]:
    query, query_labels = run.query, run.query_labels
    reference, reference_labels = run.reference, run.reference_labels
    return {
        "retrieval": retrieval_metrics(
            query,
            query_labels,
            reference,
            reference_labels,
            include=ALL_METRIC_NAMES,
            k=K,
            seed=seed,
        ),
        "knn_accuracy": knn_accuracy(reference, reference_labels, query, query_labels, k=K),
        "linear_probe": linear_probe(reference, reference_labels, query, query_labels),
        "few_shot": [
            point._asdict()
            for point in few_shot_curve(reference, reference_labels, query, query_labels, seed=seed)
        ],
    }


def _emd_agreement(run: RunEmbeddings, seed: int) -> dict[str, Any]:
    """recall@k of the EMD neighbours and Spearman's rho on a seeded sample, or a note why not."""
    if not has_colours(run.feature_names):
        return {"note": f"the sets' features {list(run.feature_names)} are not palette colours"}
    try:
        require_pot()
    except UserError as missing:
        return {"note": str(missing)}
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.permutation(len(run.query))[:EMD_QUERIES])
    reference = np.sort(rng.permutation(len(run.reference))[:EMD_REFERENCE])
    emd = emd_to_collection(
        LabPalettes.from_sets(run.query_sets[queries], run.feature_names),
        LabPalettes.from_sets(run.reference_sets[reference], run.feature_names),
    )  # (q, n)
    query = run.query[torch.from_numpy(queries)]
    collection = run.reference[torch.from_numpy(reference)]
    k = min(EMD_K, len(reference))
    return {
        "k": k,
        "queries": len(queries),
        "reference": len(reference),
        "recall_at_k": recall_at_k_of_emd_neighbours(query, collection, emd, k),
        "spearman": emd_spearman(query, collection, emd, seed=seed),
        "pairs": min(DEFAULT_PAIRS, emd.size),
    }


def _open_set(run: RunEmbeddings) -> dict[str, Any] | None:
    """The threshold sweep, when some held-out labels are absent from the training items."""
    reference_labels = run.reference_labels.numpy()
    truth = mark_unseen_as_new(run.query_labels.numpy(), reference_labels)
    new = truth == NEW_LABEL
    if not new.any() or new.all():
        return None
    k = min(OPEN_SET_NEIGHBOURS, len(reference_labels))
    distances, indices = knn_search(run.query, run.reference, k)
    neighbour_labels = reference_labels.astype(object)[indices.numpy()]
    calibration = calibrate_threshold(distances.numpy(), neighbour_labels, truth)
    return {
        "new_queries": int(new.sum()),
        "threshold": calibration.threshold,
        "map_at_5": calibration.map_at_5,
        "map_at_5_without_threshold": calibration.map_at_5_without_threshold,
        "thresholds": np.asarray(calibration.thresholds, dtype=float).tolist(),
        "scores": np.asarray(calibration.scores, dtype=float).tolist(),
    }
