import numpy as np
import pytest
from tests.index.ivfpq_data import clustered

from embedforge.index.nprobe_calibration import (
    ExactNeighbours,
    choose_nprobe,
    recall_without_self,
)

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("metric", ["l2", "inner_product"])
def test_exact_neighbours_over_shards_equal_brute_force(metric: str) -> None:
    vectors = clustered(3000, 8, seed=0)
    queries = vectors[[3, 100, 2999]]
    exact = ExactNeighbours(queries, k=5, metric=metric)
    for start in (0, 1000, 1700):  # uneven shards
        exact.add(vectors[start : {0: 1000, 1000: 1700, 1700: 3000}[start]], start=start)
    if metric == "l2":
        scores = ((queries[:, None, :] - vectors[None]) ** 2).sum(axis=2)
    else:
        scores = -(queries @ vectors.T)
    assert np.array_equal(exact.rows, np.argsort(scores, axis=1, kind="stable")[:, :6])


def test_recall_leaves_the_query_row_out() -> None:
    exact = np.array([[7, 1, 2, 3]])
    assert recall_without_self(np.array([[7, 1, 2, 9]]), exact, np.array([7]), 3) == 2 / 3
    assert recall_without_self(np.array([[1, 2, 3, 9]]), exact, np.array([7]), 3) == 1.0


def test_the_chosen_nprobe_is_the_smallest_power_of_two_reaching_the_target() -> None:
    vectors = clustered(5000, 8, seed=1)
    quantizer = faiss.IndexFlatL2(8)
    index = faiss.IndexIVFPQ(quantizer, 8, 64, 2, 8)
    index.train(vectors)
    index.add(vectors)
    own = np.arange(0, 5000, 25)
    exact = ExactNeighbours(vectors[own], k=10, metric="l2")
    exact.add(vectors, start=0)
    chosen = choose_nprobe(index, vectors, exact, own, nlist=64, rerank=10, target=0.95, fixed=None)
    assert chosen.recall >= 0.95 and chosen.nprobe in (1, 2, 4, 8, 16, 32, 64)
    if chosen.nprobe > 1:
        below = choose_nprobe(index, vectors, exact, own, nlist=64, rerank=10, target=0.95,
                              fixed=chosen.nprobe // 2)  # fmt: skip
        assert below.recall < 0.95
