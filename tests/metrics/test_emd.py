"""Exact EMD between palettes: analytic cases, symmetry, a brute-force LP, the colour spaces."""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linprog

from embedforge.data.palettes import LAB_SCALE, read_palettes, srgb_to_lab
from embedforge.data.set_batch import SetBatch
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.errors import UserError
from embedforge.metrics import emd
from embedforge.metrics.emd import (
    LAB_FEATURES,
    RGB_FEATURES,
    LabPalettes,
    emd_to_collection,
    palette_emd,
)


def lab_palettes(*palettes: tuple[list[float], list[list[float]]]) -> LabPalettes:
    """LabPalettes from ``(weights, L*a*b* colours)`` pairs, through a scaled-LAB set batch."""
    m = max(len(weights) for weights, _ in palettes)
    values = torch.zeros(len(palettes), m, 4, dtype=torch.float64)
    mask = torch.zeros(len(palettes), m, dtype=torch.bool)
    for i, (weights, colours) in enumerate(palettes):
        values[i, : len(weights), 0] = torch.tensor(weights)
        values[i, : len(weights), 1:] = torch.tensor(colours) / torch.from_numpy(LAB_SCALE)
        mask[i, : len(weights)] = True
    return LabPalettes.from_sets(SetBatch(values, mask), LAB_FEATURES)


def random_palettes(n: int, seed: int, max_colours: int = 6) -> LabPalettes:
    rng = np.random.default_rng(seed)
    palettes = []
    for _ in range(n):
        k = int(rng.integers(1, max_colours + 1))
        weights = rng.dirichlet(np.ones(k)).tolist()
        colours = (rng.uniform([0, -80, -80], [100, 80, 80], (k, 3))).tolist()
        palettes.append((weights, colours))
    return lab_palettes(*palettes)


def linear_programme_emd(
    weights_a: np.ndarray, colours_a: np.ndarray, weights_b: np.ndarray, colours_b: np.ndarray
) -> float:
    """The transport problem written out for scipy's LP solver: flows f_ij >= 0 with row sums
    a_i and column sums b_j, minimising sum f_ij |c_i - c_j|."""
    k, m = len(weights_a), len(weights_b)
    cost = [
        [float(np.linalg.norm(colours_a[i] - colours_b[j])) for j in range(m)] for i in range(k)
    ]
    rows = np.zeros((k + m, k * m))
    for i in range(k):
        for j in range(m):
            rows[i, i * m + j] = 1.0  # mass leaving a's colour i
            rows[k + j, i * m + j] = 1.0  # mass reaching b's colour j
    solved = linprog(
        np.array(cost).ravel(),
        A_eq=rows,
        b_eq=np.concatenate([weights_a, weights_b]),
        bounds=(0, None),
        method="highs",
    )
    assert solved.success
    return float(solved.fun)


def test_identical_palettes_are_zero_apart() -> None:
    palettes = random_palettes(5, seed=0)
    assert np.allclose(np.diag(emd_to_collection(palettes, palettes)), 0.0, atol=1e-9)


def test_two_single_colours_are_their_cielab_distance() -> None:
    rgb = np.array([[0.9, 0.2, 0.1], [0.1, 0.3, 0.8]])
    values = torch.tensor([[[1.0, *rgb[0]]], [[1.0, *rgb[1]]]])
    palettes = LabPalettes.from_sets(
        SetBatch(values, torch.ones(2, 1, dtype=torch.bool)), RGB_FEATURES
    )
    lab = srgb_to_lab(values[:, 0, 1:].double().numpy())
    assert emd_to_collection(palettes, palettes)[0, 1] == pytest.approx(
        np.linalg.norm(lab[0] - lab[1]), rel=1e-9
    )


def test_a_known_two_colour_transport() -> None:
    """Along L* alone EMD is the area between the cumulative distributions: half the mass at
    L* 10 and 60 against half at 20 and 80 moves 0.5·10 + 0.5·20 = 15."""
    a = ([0.5, 0.5], [[10.0, 0.0, 0.0], [60.0, 0.0, 0.0]])
    b = ([0.5, 0.5], [[20.0, 0.0, 0.0], [80.0, 0.0, 0.0]])
    assert emd_to_collection(lab_palettes(a), lab_palettes(b))[0, 0] == pytest.approx(15.0)
    # 30% of a red palette's mass sits on a colour 5 ΔE away: 0.3 · 5
    c = ([0.7, 0.3], [[50.0, 60.0, 40.0], [50.0, 63.0, 44.0]])
    d = ([1.0], [[50.0, 60.0, 40.0]])
    assert palette_emd(*map(np.array, c), *map(np.array, d)) == pytest.approx(1.5)


def test_emd_is_symmetric() -> None:
    a, b = random_palettes(6, seed=1), random_palettes(4, seed=2)
    assert np.allclose(emd_to_collection(a, b), emd_to_collection(b, a).T, atol=1e-9)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_emd_is_the_linear_programme_optimum(seed: int) -> None:
    queries, collection = random_palettes(3, seed=seed), random_palettes(7, seed=seed + 10)
    distances = emd_to_collection(queries, collection)
    for i in range(len(queries)):
        for j in range(len(collection)):
            expected = linear_programme_emd(*queries.palette(i), *collection.palette(j))
            assert distances[i, j] == pytest.approx(expected, rel=1e-7, abs=1e-9)
            assert palette_emd(*queries.palette(i), *collection.palette(j)) == pytest.approx(
                distances[i, j], rel=1e-12
            )


def test_a_problem_the_simplex_does_not_certify_is_solved_by_highs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one pivot allowed the simplex stops short; the value is still the LP optimum, and
    POT's iteration warning does not reach the caller."""
    queries, collection = random_palettes(2, seed=8), random_palettes(3, seed=9)
    monkeypatch.setattr(emd, "MAX_ITERATIONS", 1)
    highs = []
    solve = emd._highs_transport_cost
    monkeypatch.setattr(emd, "_highs_transport_cost", lambda *a: highs.append(1) or solve(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distances = emd_to_collection(queries, collection)
    assert highs  # some problems did go to HiGHS
    for i in range(len(queries)):
        for j in range(len(collection)):
            expected = linear_programme_emd(*queries.palette(i), *collection.palette(j))
            assert distances[i, j] == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_weights_are_normalised_to_one() -> None:
    weights, colours = np.array([2.0, 6.0]), np.array([[20.0, 0.0, 0.0], [40.0, 0.0, 0.0]])
    one = np.array([[20.0, 0.0, 0.0]])
    assert palette_emd(weights, colours, np.array([3.0]), one) == pytest.approx(15.0)


def test_palettes_read_in_rgb_or_in_lab_are_the_same_cielab_palettes() -> None:
    rows = synthetic_palettes(12, seed=7).rows
    rgb, lab = (
        LabPalettes.from_sets(palettes.sets, palettes.feature_names)
        for palettes in (read_palettes(rows), read_palettes(rows, colour_space="lab"))
    )
    assert np.array_equal(rgb.starts, lab.starts)
    assert np.allclose(rgb.colours, lab.colours, atol=1e-3)  # float32 storage
    assert np.allclose(rgb.weights, lab.weights)
    assert np.allclose(emd_to_collection(rgb, rgb), emd_to_collection(lab, lab), atol=1e-3)


def test_features_that_are_not_colours_are_refused() -> None:
    palettes = read_palettes(
        pd.DataFrame({"id": [1, 1], "w": [1.0, 1.0], "x": [0.0, 1.0]}),
        id_column="id",
        weight_column="w",
        feature_columns=["x"],
    )
    with pytest.raises(ValueError, match="needs palettes with features"):
        LabPalettes.from_sets(palettes.sets, palettes.feature_names)


def test_without_pot_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ot", None)
    palettes = random_palettes(2, seed=0)
    with pytest.raises(UserError, match=r"pip install embedforge\[emd\]$"):
        emd_to_collection(palettes, palettes)
