"""The report's figures as PNG bytes: RSMs, UMAP maps, training, threshold and few-shot curves.

Why bytes: the HTML report embeds them as base64 and an experiment writes them
to files (:func:`write_png`), so no caller needs a display. Figures are built
with matplotlib's object API on the Agg canvas, never ``pyplot``: no global
"current figure" is shared between calls (so separate threads do not draw on
each other's figures) and none is left open. Each function returns one PNG at
:data:`DPI` dots per inch, laid out with matplotlib's constrained layout (a
tight layout that also fits colour bars and legends).

>>> from embedforge.evaluate.rsm import similarity_matrix
>>> png = rsm_figure(similarity_matrix(np.eye(4), np.array([0, 0, 1, 1])), title="identity")
>>> png[:4]
b'\\x89PNG'
"""

from __future__ import annotations  # matplotlib's types in hints only: it is imported lazily

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from embedforge.evaluate.projection import Projection
from embedforge.evaluate.rsm import RSM, within_between
from embedforge.extras import require
from embedforge.files.atomic import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

DPI = 100
PANEL = (6.0, 4.5)
"""Width and height in inches of a one-panel figure."""
LEGEND_PANEL = (8.5, 4.5)
"""A one-panel figure with its legend beside the axes: many curves' legend would hide some."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SIMILARITY_COLORMAP = "RdBu_r"
"""Diverging, so the sign of a similarity reads at a glance: red alike, white unrelated, blue
opposite."""
BINS = 50
MAX_MARKED_CLASSES = 40
"""Above this many classes, boundary lines and class ticks would hide the matrix: none is drawn."""
MAX_LEGEND_CLASSES = 20
"""Above this many classes a map has no legend (the qualitative colours repeat anyway)."""
POINTS = {"s": 6, "alpha": 0.7, "linewidths": 0}
"""Scatter style of a map: small, translucent markers, so that dense clusters show as dense."""
REFERENCE_LINE = {"color": "grey", "linestyle": "--", "linewidth": 1}
"""A baseline drawn across a plot (no threshold, chance)."""


def rsm_figure(rsm: RSM, *, title: str, label_names: Sequence[str] | None = None) -> bytes:
    """The RSM as a heat map, and beside it the histogram of its off-diagonal values.

    With integer ``sorted_values`` (class labels) thin lines separate the
    classes, the ticks name them (``label_names[label]`` if given, else the
    label), and the histogram stacks the pairs within a class on those
    between classes, with the two means (:func:`within_between`). With
    continuous values, a few ticks show the value at their position.
    """
    figure = _figure(2 * PANEL[0], PANEL[1])
    heat_map, histogram = figure.subplots(1, 2, width_ratios=(1.2, 1))
    image = _draw_rsm(heat_map, histogram, rsm, label_names)
    figure.colorbar(image, ax=heat_map, label="cosine similarity")
    figure.suptitle(title)
    return _png(figure)


def rsm_grid_figure(rsms: Mapping[str, RSM], *, label_names: Sequence[str] | None = None) -> bytes:
    """Several encoders' RSMs side by side (name → RSM): one column each, the heat map above
    its histogram, one colour scale for all (every heat map spans -1 to 1)."""
    if not rsms:
        raise ValueError("rsm_grid_figure needs at least one RSM")
    figure = _figure(3.5 * len(rsms) + 1.0, 7.0)
    axes = figure.subplots(2, len(rsms), squeeze=False, height_ratios=(3, 2))
    for column, (name, rsm) in enumerate(rsms.items()):
        image = _draw_rsm(axes[0, column], axes[1, column], rsm, label_names)
        axes[0, column].set_title(name)
    figure.colorbar(image, ax=axes[0, :], label="cosine similarity")
    return _png(figure)


def umap_figure(
    projection: Projection,
    values: np.ndarray,
    *,
    title: str,
    categorical: bool,
    value_name: str,
    label_names: Sequence[str] | None = None,
) -> bytes:
    """The 2-D map, each point coloured by its item's value.

    Args:
        values: (n,) one value per original item; ``values[projection.index]``
            colours the points.
        categorical: class labels, in qualitative colours with a legend (up to
            :data:`MAX_LEGEND_CLASSES` classes; beyond, colours repeat and there
            is no legend); else continuous values with a colour bar.
        value_name: the legend's title or the colour bar's label.
        label_names: names of integer class labels, ``label_names[label]``.
    """
    values = np.asarray(values)
    if values.ndim != 1 or (len(projection.index) and projection.index.max() >= len(values)):
        raise ValueError(
            f"values must be 1-D, one per original item (at least "
            f"{projection.index.max(initial=-1) + 1}); got shape {values.shape}"
        )
    shown = values[projection.index]
    x, y = projection.coords.T
    figure = _figure(*PANEL)
    axes = figure.subplots()
    if categorical:
        classes, codes = np.unique(shown, return_inverse=True)
        from matplotlib.lines import Line2D

        palette = require_matplotlib().colormaps["tab10" if len(classes) <= 10 else "tab20"].colors
        axes.scatter(x, y, c=np.asarray(palette)[codes % len(palette)], **POINTS)
        if len(classes) <= MAX_LEGEND_CLASSES:
            handles = [
                Line2D([], [], linestyle="", marker="o", color=palette[code % len(palette)])
                for code in range(len(classes))
            ]
            names = [_class_name(label, label_names) for label in classes]
            axes.legend(
                handles, names, title=value_name, loc="center left", bbox_to_anchor=(1, 0.5)
            )
    else:
        if label_names is not None:
            raise ValueError("label_names names class labels: pass categorical=True")
        points = axes.scatter(x, y, c=shown, cmap="viridis", **POINTS)
        figure.colorbar(points, ax=axes, label=value_name)
    axes.set(title=title, xlabel="UMAP 1", ylabel="UMAP 2", xticks=[], yticks=[])
    axes.set_aspect("equal", adjustable="datalim")
    return _png(figure)


def curves_figure(
    records: Sequence[Mapping[str, float]], *, keys: Sequence[str], title: str
) -> bytes:
    """Training curves from metrics.jsonl records: one panel per key, the value against
    ``record["epoch"]``. Records without the key (epochs that were not validated), or whose
    value is None or NaN, are skipped; a key with no value at all gets an empty panel."""
    if not keys:
        raise ValueError("curves_figure needs at least one key")
    columns = min(len(keys), 3)
    rows = math.ceil(len(keys) / columns)
    figure = _figure(4.0 * columns, 3.0 * rows)
    from matplotlib.ticker import MaxNLocator

    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for panel, key in zip(axes, keys, strict=False):
        points = [
            (record["epoch"], record[key])
            for record in records
            if record.get(key) is not None and not math.isnan(record[key])
        ]
        if points:
            panel.plot(*zip(*points, strict=True), marker="o", markersize=3)
        else:
            panel.text(0.5, 0.5, "no values", ha="center", va="center", transform=panel.transAxes)
        panel.set(title=key, xlabel="epoch")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
    for panel in axes[len(keys) :]:
        panel.set_visible(False)
    figure.suptitle(title)
    return _png(figure)


def threshold_figure(
    thresholds: np.ndarray,
    scores: np.ndarray,
    *,
    best_threshold: float,
    baseline: float | None,
    title: str,
) -> bytes:
    """MAP@5 against the open-set distance threshold (T,) ascending, with a marker at the best
    threshold and, when given, a dashed line at the MAP@5 without a threshold."""
    thresholds, scores = np.asarray(thresholds, float), np.asarray(scores, float)
    if thresholds.ndim != 1 or thresholds.shape != scores.shape or len(thresholds) == 0:
        raise ValueError(
            "thresholds and scores must be two 1-D arrays of the same non-zero length; "
            f"got shapes {thresholds.shape} and {scores.shape}"
        )
    best_score = float(np.interp(best_threshold, thresholds, scores))
    figure = _figure(*PANEL)
    axes = figure.subplots()
    axes.plot(thresholds, scores, label="MAP@5")
    axes.plot(
        [best_threshold],
        [best_score],
        "o",
        color="tab:red",
        label=f"best: {best_score:.3f} at {best_threshold:.3g}",
    )
    if baseline is not None:
        axes.axhline(baseline, **REFERENCE_LINE, label=f"no threshold: {baseline:.3f}")
    axes.set(title=title, xlabel="distance threshold", ylabel="MAP@5")
    axes.legend()
    return _png(figure)


def few_shot_figure(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    chance: float | None = None,
) -> bytes:
    """Accuracy against the labelled fraction of the training set (log scale), one line per
    encoder (name → ``(fraction, accuracy)`` points), and a dashed chance level when given."""
    if not curves:
        raise ValueError("few_shot_figure needs at least one curve")
    figure = _figure(*LEGEND_PANEL)
    axes = figure.subplots()
    fractions = set()
    for name, points in curves.items():
        xy = np.asarray(points, dtype=float).reshape(-1, 2)  # (p, 2) fraction, accuracy
        axes.plot(xy[:, 0], xy[:, 1], marker="o", label=name)
        fractions.update(xy[:, 0].tolist())
    if chance is not None:
        axes.axhline(chance, **REFERENCE_LINE, label=f"chance: {chance:.2f}")
    axes.set_xscale("log")
    ticks = sorted(fractions)
    axes.set_xticks(ticks, [f"{100 * fraction:g}%" for fraction in ticks])
    axes.minorticks_off()
    axes.set(title=title, xlabel="labelled fraction of the training set", ylabel="accuracy")
    figure.legend(loc="outside right upper", fontsize="small")
    return _png(figure)


def write_png(png: bytes, path: str | os.PathLike[str]) -> None:
    """Write a figure's bytes to ``path`` through a temporary file renamed over it, so that a
    reader never sees half a picture and a failed write leaves any old file whole."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path}: expected the bytes of a PNG image")
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(png))


def require_matplotlib() -> ModuleType:
    """matplotlib, or the UserError naming the ``[report]`` extra (imported at the first figure,
    so that importing this module, or the report's, loads no matplotlib)."""
    return require("matplotlib", "report", "the report draws its plots")


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, so no global state)."""
    require_matplotlib()  # first: a stale matplotlib.figure in sys.modules would hide its absence
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _draw_rsm(
    heat_map: Axes, histogram: Axes, rsm: RSM, label_names: Sequence[str] | None
) -> AxesImage:
    """Draw the matrix on ``heat_map`` and its values' histogram on ``histogram``."""
    image = heat_map.imshow(rsm.matrix, cmap=SIMILARITY_COLORMAP, vmin=-1, vmax=1)
    similarities = rsm.off_diagonal()
    if _are_labels(rsm.sorted_values):
        _mark_classes(heat_map, rsm.sorted_values, label_names)
        same = rsm.same_value_pairs()
        within, between = within_between(rsm)
        groups = [
            (similarities[same], f"same class (mean {within:.2f})", "tab:red"),
            (similarities[~same], f"different classes (mean {between:.2f})", "tab:blue"),
        ]
        groups = [group for group in groups if len(group[0])]  # (a mean is NaN only if empty)
        if groups:
            values, names, colours = zip(*groups, strict=True)
            histogram.hist(
                values, bins=BINS, range=(-1, 1), stacked=True, color=colours, label=names
            )
            histogram.legend(fontsize="small")
    else:
        if label_names is not None:
            raise ValueError("label_names names class labels, but the RSM is sorted by floats")
        _mark_values(heat_map, rsm.sorted_values)
        histogram.hist(similarities, bins=BINS, range=(-1, 1), color="grey")
    histogram.set(xlim=(-1, 1), xlabel="cosine similarity", ylabel="pairs")
    return image


def _mark_classes(axes: Axes, labels: np.ndarray, label_names: Sequence[str] | None) -> None:
    """Lines between the classes of sorted labels, and a tick naming each class at its middle."""
    starts = np.flatnonzero(labels[1:] != labels[:-1]) + 1  # where each class but the first begins
    if len(starts) + 1 > MAX_MARKED_CLASSES:
        axes.set(xticks=[], yticks=[])
        return
    for boundary in starts - 0.5:  # between two pixels
        axes.axhline(boundary, color="black", linewidth=0.5)
        axes.axvline(boundary, color="black", linewidth=0.5)
    edges = np.concatenate([[0], starts, [len(labels)]])
    middles = (edges[:-1] + edges[1:] - 1) / 2
    names = [_class_name(labels[start], label_names) for start in edges[:-1]]
    axes.set_xticks(middles, names, rotation=90)
    axes.set_yticks(middles, names)


def _mark_values(axes: Axes, values: np.ndarray) -> None:
    """A few ticks, evenly spaced along the sorted items, showing the value there."""
    positions = np.unique(np.linspace(0, len(values) - 1, 5).round().astype(int))
    names = [f"{values[position]:.3g}" for position in positions]
    axes.set_xticks(positions, names, rotation=90)
    axes.set_yticks(positions, names)


def _are_labels(values: np.ndarray) -> bool:
    return values.dtype.kind in "iub"  # signed, unsigned, bool


def _class_name(label: Any, label_names: Sequence[str] | None) -> str:
    if label_names is None:
        return str(label)
    if not 0 <= int(label) < len(label_names):
        raise ValueError(f"label {label} has no name: label_names holds {len(label_names)} names")
    return label_names[int(label)]
