"""Palette swatches: widths are the ratios, colours the palette's, ids escaped, EMD exact."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from embedforge.data.palettes import LAB_SCALE, srgb_to_lab
from embedforge.data.set_batch import SetBatch
from embedforge.evaluate.neighbour_rows import NEIGHBOURS, QUERIES, sample_queries
from embedforge.evaluate.palette_swatches import (
    palette_colours,
    palette_neighbours,
    palette_rows,
    swatch,
)
from embedforge.metrics.emd import LAB_FEATURES, RGB_FEATURES, LabPalettes, palette_emd
from embedforge.metrics.knn import knn_search
from embedforge.run_items import load_run_embeddings

SPAN = re.compile(r"<span style='width:([0-9.]+)%;background:#([0-9a-f]{6})'></span>")


def spans(text: str) -> list[tuple[float, str]]:
    return [(float(width), colour) for width, colour in SPAN.findall(text)]


def test_swatch_widths_are_the_shares_of_the_weights() -> None:
    weights = np.array([5.0, 3.0, 1.5, 0.5])
    rgb = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.4, 0.6]])
    drawn = spans(swatch(weights, rgb))
    assert [colour for _, colour in drawn] == ["ff0000", "00ff00", "0000ff", "336699"]
    np.testing.assert_allclose([width for width, _ in drawn], [50.0, 30.0, 15.0, 5.0])


def test_swatch_colours_are_rounded_and_clipped_to_8_bits() -> None:
    drawn = spans(
        swatch(np.ones(3), np.array([[0.5, 1.2, -0.1], [1 / 255, 0.999, 0.0], [0.0] * 3]))
    )
    assert [colour for _, colour in drawn] == ["80ff00", "01ff00", "000000"]
    assert sum(width for width, _ in drawn) == pytest.approx(100.0, abs=1e-3)


def sets_of(palettes: list[tuple[list[float], list[list[float]]]], lab: bool) -> SetBatch:
    m = max(len(weights) for weights, _ in palettes)
    values = torch.zeros(len(palettes), m, 4, dtype=torch.float64)
    mask = torch.zeros(len(palettes), m, dtype=torch.bool)
    for i, (weights, rgb) in enumerate(palettes):
        colours = srgb_to_lab(np.array(rgb)) / LAB_SCALE if lab else np.array(rgb)
        values[i, : len(weights), 0] = torch.tensor(weights)
        values[i, : len(weights), 1:] = torch.from_numpy(colours)
        mask[i, : len(weights)] = True
    return SetBatch(values.float(), mask)


PALETTES = [([0.7, 0.3], [[0.9, 0.1, 0.2], [0.1, 0.8, 0.3]]), ([1.0], [[0.25, 0.5, 0.75]])]


@pytest.mark.parametrize("lab,names", [(False, RGB_FEATURES), (True, LAB_FEATURES)])
def test_palette_colours_are_the_palettes_srgb_without_padding(lab: bool, names: tuple) -> None:
    drawn = palette_colours(sets_of(PALETTES, lab), names)
    for (weights, rgb), (want_weights, want_rgb) in zip(drawn, PALETTES, strict=True):
        np.testing.assert_allclose(weights, want_weights, rtol=1e-6)
        np.testing.assert_allclose(rgb, want_rgb, atol=1e-5)  # LAB: float32 features


def test_palette_colours_refuse_sets_that_are_not_colours() -> None:
    with pytest.raises(ValueError, match="not palette colours"):
        palette_colours(sets_of(PALETTES, False), ("weight", "x", "y", "z"))


def test_palette_rows_draw_every_swatch_and_escape_every_id() -> None:
    palette = (np.array([1.0]), np.array([[0.5, 0.5, 0.5]]))
    ids = ["<b>&query", "q2"]
    neighbour_ids = [["n<1>", "n&2"], ["n3", "</div>"]]
    distances = np.array([[0.1, 0.2], [0.3, 0.4]])
    emd = np.array([[1.0, 2.0], [3.0, 4.5]])
    text = palette_rows(ids, [palette] * 2, neighbour_ids, [[palette] * 2] * 2, distances, emd)
    assert text.count("class='swatch'") == 6 and text.count("class='row'") == 2
    for raw in ["<b>", "n<1>", "&query", "n&2"]:
        assert raw not in text
    assert "&lt;b&gt;&amp;query" in text and "n&lt;1&gt;" in text and "&lt;/div&gt;" in text
    assert re.findall(r"EMD ([0-9.]+)", text) == ["1.00", "2.00", "3.00", "4.50"]
    assert re.findall(r"distance ([0-9.]+)", text) == ["0.100", "0.200", "0.300", "0.400"]
    without = palette_rows(ids, [palette] * 2, neighbour_ids, [[palette] * 2] * 2, distances, None)
    assert "EMD" not in without and without.count("distance") == 4


def test_a_palette_run_shows_its_nearest_palettes_with_their_exact_emd(run_dir: Path) -> None:
    run = load_run_embeddings(run_dir)
    text = palette_neighbours(run, seed=4)
    queries = sample_queries(len(run.query), seed=4)
    assert len(queries) == QUERIES
    _, indices = knn_search(run.query[torch.from_numpy(queries)], run.reference, NEIGHBOURS)
    assert text.count("class='row'") == QUERIES
    assert text.count("class='swatch'") == QUERIES * (1 + NEIGHBOURS)
    query_lab = LabPalettes.from_sets(run.query_sets[queries], run.feature_names)
    reference_lab = LabPalettes.from_sets(run.reference_sets, run.feature_names)
    want = [
        f"{palette_emd(*query_lab.palette(i), *reference_lab.palette(j)):.2f}"
        for i, row in enumerate(indices.tolist())
        for j in row
    ]
    assert re.findall(r"EMD ([0-9.]+)<", text) == want
    shown = re.findall(r"<div>([^<]*)</div><div>EMD", text)
    assert shown == [str(run.reference_ids[j]) for row in indices.tolist() for j in row]


def test_without_pot_the_swatches_are_drawn_and_the_note_names_the_extra(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = load_run_embeddings(run_dir)
    monkeypatch.setitem(sys.modules, "ot", None)
    text = palette_neighbours(run)
    assert text.count("class='swatch'") == QUERIES * (1 + NEIGHBOURS)
    assert "pip install embedforge[emd]" in text and "EMD 0" not in text


def test_sets_that_are_not_colours_get_a_note(run_dir: Path) -> None:
    from dataclasses import replace

    run = replace(load_run_embeddings(run_dir), feature_names=("weight", "x", "y", "z"))
    text = palette_neighbours(run)
    assert "swatch" not in text and "are not colours to draw" in text
