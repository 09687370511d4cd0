"""``embedforge evaluate RUN_DIR``: every metric of a trained image run, in one metrics.json.

The run's recipe says which data and split it was trained on; its best
checkpoint is embedded on that split and measured the ways practitioners
compare embeddings: retrieval of held-out items against the training items
(P@1, R-precision, MAP@R, MAP@k, MRR, recall@k), clustering (NMI, AMI), kNN
classification, a linear probe, and the few-shot curve. ``mean_average_precision``
is PML's MAP@k, which divides by R (all of the query's relevant items), so with
k = 5 it stays far below 1 when classes are large; MAP@R is the one to compare.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch

from embedforge.errors import UserError
from embedforge.evaluate.probes import few_shot_curve, knn_accuracy, linear_probe
from embedforge.evaluate.retrieval import ALL_METRIC_NAMES, retrieval_metrics
from embedforge.recipe import DataSection, load_recipe
from embedforge.train.build import build_data, build_model
from embedforge.train.checkpoint import BEST, RECIPE, atomic_write, load_state
from embedforge.train.image_task import embed_images

K = 5  # neighbours for MAP@k, recall@k and the kNN vote


def evaluate_run(run_dir: str | os.PathLike[str], *, seed: int = 0) -> dict[str, Any]:
    """The metrics of ``run_dir``'s best checkpoint, also written to ``run_dir/metrics.json``."""
    run_dir = Path(run_dir)
    recipe = load_recipe(run_dir / RECIPE)
    if not isinstance(recipe.data, DataSection):
        raise UserError(
            f"{run_dir}: evaluate handles image runs; palette runs are not supported yet"
        )
    split = build_data(recipe.data)
    _, channels, size, _ = split.train_images.shape
    model = build_model(recipe, image_size=size, in_channels=channels)
    try:
        model.load_state_dict(load_state(run_dir / BEST)["model"])
    except (KeyError, RuntimeError) as error:
        raise UserError(f"{run_dir / BEST}: weights do not fit recipe.yaml ({error})") from None
    device = torch.device("cpu")
    train_emb = embed_images(model, split.train_images, device)
    test_emb = embed_images(model, split.test_images, device)
    train_labels, test_labels = split.train_labels, split.test_labels

    metrics: dict[str, Any] = {
        "queries": len(test_labels),
        "reference": len(train_labels),
        "k": K,
        "retrieval": retrieval_metrics(
            test_emb, test_labels, train_emb, train_labels, include=ALL_METRIC_NAMES, k=K, seed=seed
        ),
        "knn_accuracy": knn_accuracy(train_emb, train_labels, test_emb, test_labels, k=K),
        "linear_probe": linear_probe(train_emb, train_labels, test_emb, test_labels),
        "few_shot": [
            point._asdict()
            for point in few_shot_curve(train_emb, train_labels, test_emb, test_labels, seed=seed)
        ],
    }
    text = json.dumps(metrics, indent=2) + "\n"
    atomic_write(run_dir / "metrics.json", lambda tmp: tmp.write_text(text))
    return metrics
