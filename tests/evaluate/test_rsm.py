"""Representational similarity matrices: a loop reference, sorting, subsets, and block means."""

import math

import numpy as np
import pytest
import torch

from embedforge.evaluate.rsm import RSM, sample_items, similarity_matrix, within_between


def _cosine_loop(x: np.ndarray) -> np.ndarray:
    """Reference: cosine similarity of every pair, 0 when either vector is zero."""
    n = len(x)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            norms = np.linalg.norm(x[i]) * np.linalg.norm(x[j])
            out[i, j] = 0.0 if norms == 0 else float(x[i] @ x[j]) / norms
    return out


def _data(seed: int, n: int = 30, d: int = 6, num_classes: int = 4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, num_classes, n)


@pytest.mark.parametrize("n, d", [(1, 3), (7, 2), (30, 6)])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_matches_loop(seed, n, d, kind) -> None:
    x, y = _data(seed, n, d)
    x[0] = 0.0  # a zero vector among them
    convert = torch.as_tensor if kind == "torch" else np.asarray
    rsm = similarity_matrix(convert(x), convert(y))
    assert rsm.matrix.dtype == np.float32 and rsm.index.dtype == np.int64
    assert rsm.matrix.shape == (n, n)
    reference = _cosine_loop(x)[np.ix_(rsm.index, rsm.index)]
    np.testing.assert_allclose(rsm.matrix, reference, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_accepts_float_dtypes(dtype) -> None:
    x, y = _data(2)
    rsm = similarity_matrix(torch.as_tensor(x).to(dtype), y)
    reference = _cosine_loop(torch.as_tensor(x).to(dtype).double().numpy())
    np.testing.assert_allclose(rsm.matrix, reference[np.ix_(rsm.index, rsm.index)], atol=1e-6)


def test_sorts_stably_by_labels() -> None:
    x, y = _data(3, n=40, num_classes=3)
    rsm = similarity_matrix(x, y)
    assert sorted(rsm.index.tolist()) == list(range(40))
    np.testing.assert_array_equal(rsm.sorted_values, y[rsm.index])
    assert np.all(np.diff(rsm.sorted_values) >= 0)
    for label in range(3):  # ties keep the original order
        positions = rsm.index[rsm.sorted_values == label]
        assert np.all(np.diff(positions) > 0)


def test_sorts_by_continuous_values() -> None:
    x, _ = _data(4, n=20)
    latent = np.random.default_rng(4).uniform(size=20)
    rsm = similarity_matrix(x, torch.as_tensor(latent))
    np.testing.assert_array_equal(rsm.index, np.argsort(latent))
    np.testing.assert_array_equal(rsm.sorted_values, np.sort(latent))


def test_subset_is_capped_and_seeded() -> None:
    x, y = _data(5, n=50)
    rsm = similarity_matrix(x, y, max_items=20, seed=1)
    assert rsm.matrix.shape == (20, 20) and len(rsm.sorted_values) == len(rsm.index) == 20
    assert len(set(rsm.index.tolist())) == 20 and set(rsm.index.tolist()) <= set(range(50))
    again = similarity_matrix(x, y, max_items=20, seed=1)
    np.testing.assert_array_equal(rsm.index, again.index)
    np.testing.assert_array_equal(rsm.matrix, again.matrix)
    other = similarity_matrix(x, y, max_items=20, seed=2)
    assert set(other.index.tolist()) != set(rsm.index.tolist())
    np.testing.assert_allclose(rsm.matrix, _cosine_loop(x)[np.ix_(rsm.index, rsm.index)], atol=1e-6)


def test_sample_items() -> None:
    np.testing.assert_array_equal(sample_items(5, 5), np.arange(5))
    chosen = sample_items(100, 10, seed=7)
    assert chosen.dtype == np.int64 and len(chosen) == 10 and np.all(np.diff(chosen) > 0)
    np.testing.assert_array_equal(chosen, sample_items(100, 10, seed=7))
    with pytest.raises(ValueError, match="max_items"):
        sample_items(5, 0)


def test_zero_vectors_give_zero_not_nan() -> None:
    x = np.zeros((4, 3))
    x[1] = [1.0, 2.0, 0.0]
    rsm = similarity_matrix(x, np.arange(4))
    assert np.isfinite(rsm.matrix).all()
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[1, 1] = 1.0
    np.testing.assert_array_equal(rsm.matrix, expected)


def test_values_stay_within_minus_one_and_one() -> None:
    x = np.repeat(np.random.default_rng(6).standard_normal((1, 5)) * 1e3, 10, axis=0)
    x[5:] *= -1
    rsm = similarity_matrix(x, np.zeros(10, dtype=np.int64))
    assert rsm.matrix.max() <= 1.0 and rsm.matrix.min() >= -1.0


@pytest.mark.parametrize("m", [1, 2, 9])
def test_off_diagonal(m) -> None:
    x, y = _data(7, n=m)
    rsm = similarity_matrix(x, y)
    pairs = [rsm.matrix[i, j] for i in range(m) for j in range(i + 1, m)]
    np.testing.assert_array_equal(rsm.off_diagonal(), np.array(pairs, dtype=np.float32))
    assert len(rsm.off_diagonal()) == m * (m - 1) // 2
    same = [rsm.sorted_values[i] == rsm.sorted_values[j] for i in range(m) for j in range(i + 1, m)]
    np.testing.assert_array_equal(rsm.same_value_pairs(), np.array(same, dtype=bool))


def test_within_between_known_case() -> None:
    # class 0 along +x, class 1 along +y, class 2 along -x: within 1; between 0, 0 and -1
    x = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    within, between = within_between(similarity_matrix(x, np.array([0, 1, 0, 2, 1])))
    # between pairs: 0-1: 4 pairs of 0; 0-2: 2 pairs of -1; 1-2: 2 pairs of 0
    assert within == pytest.approx(1.0)
    assert between == pytest.approx(-2 / 8)


def test_within_between_matches_loop() -> None:
    x, y = _data(8, n=25)
    rsm = similarity_matrix(x, y)
    sims = _cosine_loop(x)
    within = [sims[i, j] for i in range(25) for j in range(i + 1, 25) if y[i] == y[j]]
    between = [sims[i, j] for i in range(25) for j in range(i + 1, 25) if y[i] != y[j]]
    assert within_between(rsm) == pytest.approx((np.mean(within), np.mean(between)), abs=1e-6)


@pytest.mark.parametrize(
    "labels, nan_side", [([3, 3, 3], "between"), ([0, 1, 2], "within"), ([5], "both")]
)
def test_within_between_nan_without_pairs(labels, nan_side) -> None:
    x, _ = _data(9, n=len(labels))
    within, between = within_between(similarity_matrix(x, np.array(labels)))
    assert math.isnan(within) == (nan_side in ("within", "both"))
    assert math.isnan(between) == (nan_side in ("between", "both"))


def test_rsm_is_frozen() -> None:
    rsm = RSM(np.eye(2, dtype=np.float32), np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(AttributeError):
        rsm.matrix = np.zeros((2, 2))  # type: ignore[misc]


@pytest.mark.parametrize(
    "x, sort_by, match",
    [
        (np.ones((4, 2)), np.arange(3), r"sort_by must have shape \(4,\)"),
        (np.ones((4, 2)), np.ones((4, 1)), r"sort_by must have shape \(4,\)"),
        (np.ones(4), np.arange(4), "2-D"),
        (np.ones((0, 2)), np.arange(0), "at least one item"),
    ],
)
def test_bad_input(x, sort_by, match) -> None:
    with pytest.raises(ValueError, match=match):
        similarity_matrix(x, sort_by)
