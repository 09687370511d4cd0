"""Kaggle MAP@k on hand-made prediction lists, and against a plain Python loop."""

import numpy as np
import pytest
import torch

from embedforge.evaluate.map_at_k import map_at_k, map_at_k_per_query


def _loop(predictions, truth, k):
    """Reference: Kaggle's sum of P(i) rel(i) over the first k positions, the truth scored once."""
    scores = []
    for row, label in zip(predictions, truth, strict=True):
        score, found = 0.0, False
        for i, predicted in enumerate(row[:k]):
            if predicted == label and not found:
                score, found = 1.0 / (i + 1), True  # P(i) = 1/i at the one relevant position
        scores.append(score)
    return scores


@pytest.mark.parametrize(
    "row, score",
    [
        ([7, 1, 2, 3, 4], 1.0),  # hit at rank 1
        ([1, 2, 7, 3, 4], 1 / 3),  # hit at rank 3
        ([1, 2, 3, 4, 5], 0.0),  # absent
        ([1, 2, 3, 4, 5, 7], 0.0),  # sixth position: beyond k = 5
        ([1, 1, 2, 2, 7], 0.2),  # a repeated wrong label takes its own rank, as on Kaggle
        ([1, 1, 1, 1, 7, 2, 3, 4], 0.2),  # fifth position
        ([7, 7, 7, 7, 7], 1.0),  # the true label repeated counts once
    ],
)
def test_hand_made_cases(row, score) -> None:
    assert map_at_k(np.array([row]), np.array([7])) == pytest.approx(score, abs=1e-15)


def test_mean_over_queries_and_strings() -> None:
    predictions = np.array([["w1", "new", "w2"], ["new", "new", "w3"], ["w2", "w3", "w4"]])
    truth = np.array(["w1", "w3", "new"])
    assert map_at_k(predictions, truth) == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_k_cuts_the_list() -> None:
    predictions, truth = np.array([[1, 2, 2, 3]]), np.array([3])
    assert [map_at_k(predictions, truth, k) for k in (1, 3, 4)] == [0.0, 0.0, 0.25]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_on_random_lists_with_leading_dims(seed) -> None:
    rng = np.random.default_rng(seed)
    predictions = rng.integers(0, 6, size=(3, 40, 8))  # (thresholds, queries, p): many repeats
    truth = rng.integers(0, 6, size=(3, 40))
    per_query = map_at_k_per_query(predictions, truth)
    assert per_query.shape == (3, 40)
    expected = [_loop(p.tolist(), t.tolist(), 5) for p, t in zip(predictions, truth, strict=True)]
    np.testing.assert_allclose(per_query, expected, rtol=0, atol=1e-15)


def test_torch_input_and_empty() -> None:
    assert map_at_k(torch.tensor([[2, 1]]), torch.tensor([1])) == 0.5
    assert np.isnan(map_at_k(np.zeros((0, 5), dtype=np.int64), np.zeros(0, dtype=np.int64)))


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="same leading shape"):
        map_at_k(np.zeros((3, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        map_at_k(np.zeros((3, 5)), np.zeros(3), k=0)
