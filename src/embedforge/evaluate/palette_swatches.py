"""The report's palettes section: held-out palettes as swatches beside their nearest palettes.

A palette is drawn as a swatch, a bar whose colours' widths are proportional to their ratios
(the way the competition's palettes are shown), so a reader sees at once whether the
embedding's nearest training palettes look like the query. Under each neighbour: its exact
EMD to the query in CIELAB (:mod:`embedforge.metrics.emd`, the perceptual truth the
embedding is measured against) and its embedding distance (Euclidean, the one search uses).
Only :data:`~embedforge.evaluate.neighbour_rows.QUERIES` ×
:data:`~embedforge.evaluate.neighbour_rows.NEIGHBOURS` EMDs are solved, so the section costs
milliseconds; without POT (the ``[emd]`` extra) the swatches are drawn without EMD and a note
names the extra.
"""

from collections.abc import Sequence

import numpy as np
import torch

from embedforge.data.palettes import LAB_SCALE, lab_to_srgb
from embedforge.data.set_batch import SetBatch
from embedforge.errors import UserError
from embedforge.evaluate.html_page import note
from embedforge.evaluate.neighbour_rows import NEIGHBOURS, row, sample_queries, tile
from embedforge.metrics.emd import (
    LAB_FEATURES,
    LabPalettes,
    has_colours,
    palette_emd,
    require_pot,
)
from embedforge.metrics.knn import knn_search
from embedforge.run_items import RunEmbeddings

Palette = tuple[np.ndarray, np.ndarray]
"""A palette to draw: weights ``(k,)`` and sRGB colours ``(k, 3)`` in [0, 1]."""


def swatch(weights: np.ndarray, rgb: np.ndarray) -> str:
    """A palette as a bar of colours, each as wide as its share of the weights.

    >>> bar = swatch(np.array([3.0, 1.0]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    >>> bar.count("<span"), "width:75.0000%;background:#ff0000" in bar
    (2, True)
    """
    shares = np.asarray(weights, dtype=np.float64) / np.sum(weights)  # (k,)
    codes = np.rint(np.clip(rgb, 0.0, 1.0) * 255).astype(int)  # (k, 3)
    colours = ["#{:02x}{:02x}{:02x}".format(*code) for code in codes]
    spans = "".join(
        f"<span style='width:{100 * share:.4f}%;background:{colour}'></span>"
        for share, colour in zip(shares, colours, strict=True)
    )
    label = ", ".join(
        f"{colour} {share:.0%}" for share, colour in zip(shares, colours, strict=True)
    )
    return f"<div class='swatch' role='img' aria-label='{label}'>{spans}</div>"


def palette_colours(sets: SetBatch, feature_names: tuple[str, ...]) -> list[Palette]:
    """Each set's weights and sRGB colours, for sets whose features are palette colours
    (RGB in [0, 1], or CIELAB scaled as :func:`~embedforge.data.palettes.read_palettes`
    scales it, drawn through :func:`~embedforge.data.palettes.lab_to_srgb`)."""
    if not has_colours(feature_names):
        raise ValueError(f"the sets' features {list(feature_names)} are not palette colours")
    palettes = []
    for values, mask in zip(sets.values.numpy(), sets.mask.numpy(), strict=True):
        rows = values[mask].astype(np.float64)  # (k, 4)
        colours = rows[:, 1:]
        if tuple(feature_names) == LAB_FEATURES:
            colours = lab_to_srgb(colours * LAB_SCALE)
        palettes.append((rows[:, 0], colours))
    return palettes


def palette_rows(
    query_ids: Sequence[object],
    queries: Sequence[Palette],
    neighbour_ids: Sequence[Sequence[object]],
    neighbours: Sequence[Sequence[Palette]],
    distances: np.ndarray,
    emd: np.ndarray | None,
) -> str:
    """One row per query: its swatch, then its neighbours' with their EMD and distance.

    ``distances`` and ``emd`` are ``(q, k)``, row ``i`` for query ``i``'s neighbours, nearest
    first; ``emd`` None leaves the EMD out.
    """
    rows = []
    for i, (query_id, (weights, rgb)) in enumerate(zip(query_ids, queries, strict=True)):
        tiles = [tile(swatch(weights, rgb), ["query", str(query_id)], query=True)]
        for j, (neighbour_id, (n_weights, n_rgb)) in enumerate(
            zip(neighbour_ids[i], neighbours[i], strict=True)
        ):
            caption = [str(neighbour_id)]
            if emd is not None:
                caption.append(f"EMD {emd[i, j]:.2f}")
            caption.append(f"distance {distances[i, j]:.3f}")
            tiles.append(tile(swatch(n_weights, n_rgb), caption))
        rows.append(row(tiles))
    return "".join(rows)


def palette_neighbours(run: RunEmbeddings, *, seed: int = 0) -> str:
    """The section's body for a palette run: seeded held-out palettes beside their
    :data:`~embedforge.evaluate.neighbour_rows.NEIGHBOURS` nearest training palettes."""
    if not has_colours(run.feature_names):
        return note(f"The sets' features {list(run.feature_names)} are not colours to draw.")
    queries = sample_queries(len(run.query), seed=seed)
    k = min(NEIGHBOURS, len(run.reference))
    distances, indices = knn_search(run.query[torch.from_numpy(queries)], run.reference, k)
    indices = indices.numpy()  # (q, k)
    query_sets, neighbour_sets = run.query_sets[queries], run.reference_sets[indices.ravel()]
    drawn = palette_colours(neighbour_sets, run.feature_names)
    neighbours = [drawn[i * k : (i + 1) * k] for i in range(len(queries))]
    try:
        require_pot()
    except UserError as missing:
        emd, under = None, f"the embedding distance (no EMD: {missing})"
    else:
        emd = _emd(query_sets, neighbour_sets, run.feature_names, k)
        under = "its exact EMD to the query in CIELAB (ΔE*ab units), then the embedding distance"
    text = (
        f"{len(queries)} held-out palettes (drawn by seed {seed}), each beside its {k} nearest "
        "training palettes by embedding distance, nearest first; widths are the colours' "
        f"ratios. Under each neighbour: {under}. A good embedding's neighbours look alike "
        "and have small EMDs."
    )
    body = palette_rows(
        run.query_ids[queries],
        palette_colours(query_sets, run.feature_names),
        run.reference_ids[indices],
        neighbours,
        distances.numpy(),
        emd,
    )
    return note(text) + body


def _emd(
    queries: SetBatch, neighbours: SetBatch, feature_names: tuple[str, ...], k: int
) -> np.ndarray:
    """``(q, k)`` exact EMD of query ``i`` to its neighbours, rows ``i·k .. i·k + k - 1`` of
    ``neighbours``."""
    query_lab = LabPalettes.from_sets(queries, feature_names)
    neighbour_lab = LabPalettes.from_sets(neighbours, feature_names)
    emd = np.empty((len(query_lab), k))  # (q, k)
    for i in range(len(query_lab)):
        for j in range(k):
            emd[i, j] = palette_emd(*query_lab.palette(i), *neighbour_lab.palette(i * k + j))
    return emd
