"""Figures: each is a PNG of about the intended size, edge cases draw, write_png is atomic.
Pictures are not compared pixel by pixel (fonts and matplotlib versions move pixels)."""

import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embedforge.errors import UserError
from embedforge.evaluate import plots
from embedforge.evaluate.plots import (
    curves_figure,
    few_shot_figure,
    rsm_figure,
    rsm_grid_figure,
    threshold_figure,
    umap_figure,
    write_png,
)
from embedforge.evaluate.projection import Projection
from embedforge.evaluate.rsm import similarity_matrix

NAMES = ["square", "ellipse", "heart"]
RSM_INCHES = (2 * plots.PANEL[0], plots.PANEL[1])


def _size(png: bytes) -> tuple[int, int]:
    """The decoded image's (width, height), after checking it is a whole PNG."""
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated file raises here
    return image.size


def _about(size: tuple[int, int], inches: tuple[float, float]) -> bool:
    expected = np.array(inches) * plots.DPI
    return bool(np.all(np.abs(np.array(size) - expected) <= 0.1 * expected))


def _labelled_rsm(seed: int = 0, n: int = 60, num_classes: int = 3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    x = rng.standard_normal((num_classes, 8))[labels] + 0.5 * rng.standard_normal((n, 8))
    return similarity_matrix(x, labels)


@pytest.mark.parametrize("label_names", [None, NAMES])
def test_rsm_figure_labels(label_names) -> None:
    size = _size(rsm_figure(_labelled_rsm(), title="by shape", label_names=label_names))
    assert _about(size, RSM_INCHES)


@pytest.mark.parametrize(
    "x, sort_by",
    [
        (np.random.default_rng(1).standard_normal((40, 5)), np.linspace(0, 1, 40)),  # continuous
        (
            np.random.default_rng(2).standard_normal((30, 5)),
            np.zeros(30, dtype=np.int64),
        ),  # 1 class
        (np.random.default_rng(3).standard_normal((30, 5)), np.arange(30)),  # every item alone
        (np.random.default_rng(4).standard_normal((90, 5)), np.arange(90) // 2),  # many classes
        (np.zeros((10, 5)), np.arange(10) % 2),  # all similarities 0
        (np.ones((1, 5)), np.array([0])),  # one item, no pair
        (np.eye(6, 5), np.arange(6) % 2 == 0),  # boolean labels
        (np.ones((2, 5)), np.array([0.5, 0.25])),  # continuous, two items
    ],
)
def test_rsm_figure_edge_cases(x, sort_by) -> None:
    assert _about(_size(rsm_figure(similarity_matrix(x, sort_by), title="edge")), RSM_INCHES)


def test_rsm_figure_bad_label_names() -> None:
    with pytest.raises(ValueError, match="label 2 has no name"):
        rsm_figure(_labelled_rsm(), title="t", label_names=NAMES[:2])
    continuous = similarity_matrix(np.eye(3), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="label_names"):
        rsm_figure(continuous, title="t", label_names=NAMES)


@pytest.mark.parametrize("columns", [1, 3])
def test_rsm_grid_figure(columns) -> None:
    rsms = {f"encoder {i}": _labelled_rsm(seed=i) for i in range(columns)}
    width, height = _size(rsm_grid_figure(rsms, label_names=NAMES))
    assert _about((width, height), (3.5 * columns + 1, 7))


def test_rsm_grid_figure_needs_an_rsm() -> None:
    with pytest.raises(ValueError, match="at least one RSM"):
        rsm_grid_figure({})


def _projection(n: int = 50, m: int = 30) -> Projection:
    rng = np.random.default_rng(5)
    index = np.sort(rng.choice(n, m, replace=False)).astype(np.int64)
    return Projection(rng.standard_normal((m, 2)).astype(np.float32), index)


@pytest.mark.parametrize(
    "values, categorical, label_names",
    [
        (np.arange(50) % 3, True, NAMES),
        (np.arange(50) % 3, True, None),
        (np.array(list("abcde") * 10), True, None),  # string labels
        (np.arange(50), True, None),  # more classes than a legend holds
        (np.linspace(0.5, 1.0, 50), False, None),
    ],
)
def test_umap_figure(values, categorical, label_names) -> None:
    png = umap_figure(
        _projection(),
        values,
        title="map",
        categorical=categorical,
        value_name="shape",
        label_names=label_names,
    )
    assert _about(_size(png), plots.PANEL)


def test_umap_figure_bad_values() -> None:
    projection = _projection()
    with pytest.raises(ValueError, match="one per original item"):
        umap_figure(projection, np.arange(10), title="t", categorical=True, value_name="v")
    with pytest.raises(ValueError, match="categorical=True"):
        umap_figure(
            projection,
            np.arange(50.0),
            title="t",
            categorical=False,
            value_name="v",
            label_names=NAMES,
        )


def test_curves_figure_skips_missing_values() -> None:
    records = [
        {"epoch": 0, "loss": 2.0, "seconds": 1.0},
        {"epoch": 1, "loss": 1.0, "precision_at_1": 0.5, "seconds": 1.1},
        {"epoch": 2, "loss": math.nan, "precision_at_1": None, "seconds": 0.9},
        {"epoch": 3, "loss": 0.5, "precision_at_1": 0.7, "seconds": 1.0},
    ]
    keys = ["loss", "precision_at_1", "seconds", "never_logged"]
    assert _about(_size(curves_figure(records, keys=keys, title="training")), (12, 6))
    assert _about(_size(curves_figure(records[:1], keys=["loss"], title="one epoch")), (4, 3))
    assert _about(_size(curves_figure([], keys=["loss"], title="no epochs")), (4, 3))


def test_curves_figure_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        curves_figure([{"epoch": 0, "loss": 1.0}], keys=[], title="t")


@pytest.mark.parametrize("baseline", [None, 0.4])
def test_threshold_figure(baseline) -> None:
    thresholds = np.linspace(0.1, 2.0, 30)
    scores = 0.5 + 0.3 * np.exp(-4 * (thresholds - 1) ** 2)
    png = threshold_figure(
        thresholds, scores, best_threshold=1.0, baseline=baseline, title="open set"
    )
    assert _about(_size(png), plots.PANEL)
    single = threshold_figure(
        np.array([0.5]), np.array([0.7]), best_threshold=0.5, baseline=None, title="t"
    )
    assert _about(_size(single), plots.PANEL)


def test_threshold_figure_bad_shapes() -> None:
    with pytest.raises(ValueError, match="same non-zero length"):
        threshold_figure(np.arange(3.0), np.arange(4.0), best_threshold=1, baseline=None, title="t")


@pytest.mark.parametrize("chance", [None, 0.25])
def test_few_shot_figure(chance) -> None:
    fractions = (0.01, 0.02, 0.05, 0.1, 0.5, 1.0)
    curves = {
        "deep_sets": [(f, 0.5 + 0.4 * f**0.3) for f in fractions],
        "raster_cnn": [(f, 0.3 + 0.5 * f**0.5) for f in fractions[2:]],
        "one point": [(1.0, 0.9)],
    }
    png = few_shot_figure(curves, title="few-shot", chance=chance)
    assert _about(_size(png), plots.LEGEND_PANEL)


def test_few_shot_figure_needs_a_curve() -> None:
    with pytest.raises(ValueError, match="at least one curve"):
        few_shot_figure({}, title="t")


def test_write_png_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    png = few_shot_figure({"a": [(0.1, 0.5), (1.0, 0.8)]}, title="t")
    target = tmp_path / "figures" / "few_shot.png"
    write_png(png, target)  # creates the folder
    assert target.read_bytes() == png
    assert [p.name for p in target.parent.iterdir()] == ["few_shot.png"]

    def write_half_then_fail(self: Path, data: bytes) -> int:
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError("disk full")

    newer = threshold_figure(np.arange(3.0), np.ones(3), best_threshold=1, baseline=None, title="")
    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_png(newer, target)
    assert target.read_bytes() == png  # the old picture, whole
    assert [p.name for p in target.parent.iterdir()] == ["few_shot.png"]


def test_write_png_refuses_other_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PNG"):
        write_png(b"<svg/>", tmp_path / "figure.png")
    assert not (tmp_path / "figure.png").exists()


FIGURES = {
    "rsm": lambda: rsm_figure(similarity_matrix(np.eye(3), np.arange(3)), title="t"),
    "map": lambda: umap_figure(
        Projection(np.zeros((2, 2), np.float32), np.arange(2)),
        np.arange(2),
        title="t",
        categorical=True,
        value_name="label",
    ),
    "curves": lambda: curves_figure([{"epoch": 0, "loss": 1.0}], keys=["loss"], title="t"),
}


@pytest.mark.parametrize("figure", FIGURES)
def test_without_matplotlib_a_figure_names_the_extra(
    figure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """matplotlib's submodules loaded by earlier tests must not hide its absence."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ModuleNotFoundError
    with pytest.raises(UserError, match=r"matplotlib, which is not installed: .*\[report\]$"):
        FIGURES[figure]()
