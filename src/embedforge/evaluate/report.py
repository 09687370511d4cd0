"""``embedforge report RUN_DIR``: one self-contained HTML page about a trained run.

The page is meant to be mailed, attached to a Kaggle discussion, or opened on a
machine without network: every plot is a PNG embedded as a ``data:`` URI, the
style sheet is inline, and there is no script. Sections, each with a stable
``id`` (the browser test looks for them): ``recipe``, ``training`` (curves from
metrics.jsonl), ``metrics`` (metrics.json, re-evaluated when older than the best
checkpoint; with the few-shot curve), ``neighbours`` (a few held-out items beside their
nearest training items: palettes as colour swatches with their exact EMD, images as
thumbnails marked right or wrong; :mod:`~embedforge.evaluate.palette_swatches`,
:mod:`~embedforge.evaluate.image_neighbours`), ``map`` (UMAP of the held-out items),
``rsm`` (their cosine similarities sorted by label, with the histogram) and,
for a re-identification run with new individuals, ``threshold`` (MAP@5 against
the distance threshold) and ``new`` (held-out images that threshold calls new).
"""

import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from embedforge.errors import UserError
from embedforge.evaluate.evaluate_run import evaluate_run
from embedforge.evaluate.html_page import image, note, page, section, table
from embedforge.evaluate.image_neighbours import called_new, image_neighbours
from embedforge.evaluate.palette_swatches import palette_neighbours
from embedforge.evaluate.plots import (
    curves_figure,
    few_shot_figure,
    require_matplotlib,
    rsm_figure,
    threshold_figure,
    umap_figure,
)
from embedforge.evaluate.projection import require_umap, umap_2d
from embedforge.evaluate.rsm import similarity_matrix, within_between
from embedforge.files.atomic import atomic_write_text
from embedforge.files.run_folder import BEST, METRICS, RECIPE, REPORT, read_history
from embedforge.run_items import RunEmbeddings, load_run_embeddings

SECTIONS = ("recipe", "training", "metrics", "neighbours", "map", "rsm")
"""The sections every report has (``threshold`` and ``new`` are added when there is a
threshold curve)."""
OPEN_SET_SECTIONS = ("threshold", "new")
"""The sections a re-identification run with new individuals adds."""


def require_report_packages() -> None:
    """matplotlib and umap-learn (``pip install embedforge[report]``), or the UserError naming
    the extra: checked before any work, so a report that cannot be drawn writes nothing (not
    even a fresh metrics.json)."""
    require_matplotlib()
    require_umap()


def write_report(
    run_dir: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    seed: int = 0,
    allow_changed_data: bool = False,
) -> Path:
    """Write the report of ``run_dir`` (to ``run_dir/report.html`` unless ``out``); its path.

    The run's own report is replaced freely; an existing ``out`` only with ``overwrite``.
    """
    require_report_packages()
    run_dir = Path(run_dir)
    if out is not None and Path(out).exists() and not overwrite:
        raise UserError(f"{out}: exists; pass --overwrite to replace it")
    run = load_run_embeddings(run_dir, allow_changed_data=allow_changed_data)
    history = read_history(run_dir)  # before evaluating, which writes metrics.json
    metrics = _current_metrics(run_dir, run, seed)
    sections = [
        section("recipe", "Recipe", f"<pre>{html.escape((run_dir / RECIPE).read_text())}</pre>"),
        section("training", "Training", _training(history)),
        section("metrics", "Metrics", _metrics(metrics)),
        section("neighbours", "Nearest neighbours", _neighbours(run, seed)),
        section("map", "Map of the held-out items (UMAP)", _map(run, seed)),
        section("rsm", "Representational similarity", _rsm(run, seed)),
    ]
    if "open_set" in metrics:
        open_set = metrics["open_set"]
        sections += [
            section("threshold", "Known or new", _threshold(open_set)),
            section("new", "Called new", called_new(run, open_set["threshold"], seed=seed)),
        ]
    text = page(f"embedforge report: {run_dir.resolve().name}", sections)
    path = Path(out) if out is not None else run_dir / REPORT
    atomic_write_text(path, text)
    return path


def _current_metrics(run_dir: Path, run: RunEmbeddings, seed: int) -> dict[str, Any]:
    """metrics.json when it is newer than the best checkpoint and scored the same data, else a
    fresh evaluation."""
    path = run_dir / METRICS
    current = path.is_file() and path.stat().st_mtime >= (run_dir / BEST).stat().st_mtime
    if current and not run.data_changed:
        return json.loads(path.read_text())
    return evaluate_run(run_dir, run=run, seed=seed)


def _training(history: list[dict[str, Any]]) -> str:
    if not history:
        return note("No training history (metrics.jsonl) in this run folder.")
    keys = [key for key in history[-1] if key not in ("epoch", "seconds")]
    seconds = sum(row.get("seconds", 0.0) for row in history)
    return image(curves_figure(history, keys=keys, title="per epoch"), "training curves") + note(
        f"{len(history)} epochs, {seconds:.1f} s of training."
    )


COLLAPSE_NOTE = (
    "Collapse monitors of the held-out embeddings: rankme (effective rank, arXiv:2210.02885) "
    "near the embedding's dimension is healthy, near 1 collapsed; dimension_std (SimSiam's "
    "per-dimension spread of the normalised embeddings, times the square root of the "
    "dimension) near 1 is spread out, near 0 collapsed; uniformity (arXiv:2005.10242) more "
    "negative is more uniform; alignment (views, palettes) near 0 means views agree."
)


def _metrics(metrics: Mapping[str, Any]) -> str:
    rows: list[tuple[str, Any]] = [
        ("held-out items (queries)", metrics["queries"]),
        ("training items (reference)", metrics["reference"]),
    ]
    rows += [(f"view matching: {k}", v) for k, v in metrics.get("view_matching", {}).items()]
    rows += [(f"collapse: {k}", v) for k, v in metrics.get("collapse", {}).items()]
    if "labels" in metrics:
        rows += [(name, value) for name, value in metrics["retrieval"].items()]
        rows += [
            (f"kNN accuracy (k = {metrics['k']})", metrics["knn_accuracy"]),
            ("linear probe accuracy", metrics["linear_probe"]),
        ]
    body = table(rows)
    if "collapse" in metrics:
        body += note(COLLAPSE_NOTE)
    if "labels" in metrics:
        body = note(f"Labels: {metrics['labels']}; retrieval of held-out items.") + body
        curve = [(point["fraction"], point["accuracy"]) for point in metrics["few_shot"]]
        png = few_shot_figure({"linear probe": curve}, title="accuracy with a fraction of labels")
        body += image(png, "few-shot curve")
    return body


def _neighbours(run: RunEmbeddings, seed: int) -> str:
    if run.query_sets is not None:
        return palette_neighbours(run, seed=seed)
    return image_neighbours(run, seed=seed)


def _map(run: RunEmbeddings, seed: int) -> str:
    if len(run.query) < 3:
        return note("Too few held-out items to draw a map.")
    projection = umap_2d(run.query, seed=seed)
    png = umap_figure(
        projection,
        run.query_values,
        title=f"held-out items coloured by {run.value_name}",
        categorical=run.categorical,
        value_name=run.value_name,
        label_names=run.label_names,
    )
    return image(png, "UMAP map")


def _rsm(run: RunEmbeddings, seed: int) -> str:
    rsm = similarity_matrix(run.query, run.query_values, seed=seed)
    png = rsm_figure(
        rsm, title=f"cosine similarity, sorted by {run.value_name}", label_names=run.label_names
    )
    body = image(png, "representational similarity matrix")
    if run.categorical:
        within, between = within_between(rsm)
        body += note(
            f"Mean cosine similarity within a {run.value_name}: {within:.3f}; "
            f"between: {between:.3f}."
        )
    return body


def _threshold(open_set: Mapping[str, Any]) -> str:
    png = threshold_figure(
        open_set["thresholds"],
        open_set["scores"],
        best_threshold=open_set["threshold"],
        baseline=open_set["map_at_5_without_threshold"],
        title="MAP@5 against the distance threshold",
    )
    return image(png, "threshold curve") + note(
        f"{open_set['new_queries']} held-out images show individuals absent from training. "
        f"Threshold {open_set['threshold']:.4f}: MAP@5 {open_set['map_at_5']:.4f}, against "
        f"{open_set['map_at_5_without_threshold']:.4f} without one (calibrated on these same "
        "images, so optimistic)."
    )
