import numpy as np
import pytest

from embedforge.data.row_order import heaviest_first


def _assert_lexsort_order(codes: np.ndarray, weights: np.ndarray, counts: np.ndarray) -> None:
    expected = np.lexsort((np.arange(len(codes)), -weights, codes))
    np.testing.assert_array_equal(heaviest_first(codes, weights, counts), expected)


def _case(rng: np.random.Generator, objects: int, widest: int, ties: bool) -> tuple:
    counts = rng.integers(1, widest + 1, objects)
    codes = np.repeat(np.arange(objects), counts)
    weights = rng.integers(0, 3, len(codes)) / 2 if ties else rng.random(len(codes))
    return codes, weights, counts


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("widest", [1, 3, 16])
def test_objects_rows_together_give_the_lexsort_order(widest: int, ties: bool) -> None:
    codes, weights, counts = _case(np.random.default_rng(widest), 500, widest, ties)
    _assert_lexsort_order(codes, weights, counts)


def test_rows_scattered_over_the_table_give_the_lexsort_order() -> None:
    rng = np.random.default_rng(0)
    codes, weights, counts = _case(rng, 300, 8, ties=True)
    shuffled = rng.permutation(len(codes))
    codes, weights = codes[shuffled], weights[shuffled]
    _assert_lexsort_order(codes, weights, counts)


def test_one_object_far_wider_than_the_rest_gives_the_lexsort_order() -> None:
    counts = np.array([1] * 50 + [400])
    codes = np.repeat(np.arange(len(counts)), counts)
    weights = np.random.default_rng(1).random(len(codes))
    _assert_lexsort_order(codes, weights, counts)


def test_one_row_and_equal_weights_keep_table_order() -> None:
    np.testing.assert_array_equal(heaviest_first(np.array([0]), np.ones(1), np.array([1])), [0])
    codes, counts = np.array([0, 0, 0, 1, 1]), np.array([3, 2])
    np.testing.assert_array_equal(heaviest_first(codes, np.zeros(5), counts), [0, 1, 2, 3, 4])
