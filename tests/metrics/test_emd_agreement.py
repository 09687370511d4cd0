"""recall@k of the EMD neighbours and Spearman's rho, against explicit loops."""

import math

import numpy as np
import pytest
import torch

from embedforge.metrics.emd_agreement import emd_spearman, recall_at_k_of_emd_neighbours


def problem(q: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Embeddings and an EMD matrix that follows their distances loosely, with some ties."""
    generator = torch.Generator().manual_seed(seed)
    query, reference = (
        torch.randn(q, 4, generator=generator),
        torch.randn(n, 4, generator=generator),
    )
    rng = np.random.default_rng(seed)
    emd = torch.cdist(query.double(), reference.double()).numpy() + rng.uniform(0, 1.5, (q, n))
    emd[:, : n // 4] = emd[:, n // 4 : 2 * (n // 4)]  # duplicate palettes: tied columns
    return query, reference, np.round(emd, 1)  # rounding makes more ties


def loop_recall(query: torch.Tensor, reference: torch.Tensor, emd: np.ndarray, k: int) -> float:
    shares = []
    for i in range(len(query)):
        distances = [float(torch.dot(query[i] - r, query[i] - r)) for r in reference]
        nearest = sorted(range(len(reference)), key=lambda j: distances[j])[:k]
        kth = sorted(emd[i])[k - 1]
        shares.append(sum(emd[i, j] <= kth for j in nearest) / k)
    return sum(shares) / len(shares)


def average_ranks(values: list[float]) -> list[float]:
    ranks = [0.0] * len(values)
    order = sorted(range(len(values)), key=lambda i: values[i])
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def loop_spearman(query: torch.Tensor, reference: torch.Tensor, emd: np.ndarray) -> float:
    """Pearson's r of the average ranks, over every (query, palette) pair."""
    embedded, exact = [], []
    for i in range(len(query)):
        for j in range(len(reference)):
            embedded.append(math.dist(query[i].tolist(), reference[j].tolist()))
            exact.append(float(emd[i, j]))
    x, y = average_ranks(embedded), average_ranks(exact)
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


@pytest.mark.parametrize(("q", "n", "k"), [(5, 12, 1), (7, 20, 3), (9, 40, 10)])
def test_recall_at_k_is_the_explicit_loop(q: int, n: int, k: int) -> None:
    query, reference, emd = problem(q, n, seed=q)
    assert recall_at_k_of_emd_neighbours(query, reference, emd, k) == pytest.approx(
        loop_recall(query, reference, emd, k)
    )


def test_recall_is_one_when_the_embedding_is_the_ground_cost() -> None:
    query, reference, _ = problem(6, 30, seed=0)
    emd = torch.cdist(query.double(), reference.double()).numpy() * 3.0 + 1.0
    assert recall_at_k_of_emd_neighbours(query, reference, emd, 10) == 1.0
    assert emd_spearman(query, reference, emd) == pytest.approx(1.0)


def test_recall_refuses_a_matrix_of_the_wrong_shape() -> None:
    query, reference, emd = problem(3, 8, seed=1)
    with pytest.raises(ValueError, match="emd must be"):
        recall_at_k_of_emd_neighbours(query, reference, emd.T, 2)


@pytest.mark.parametrize(("q", "n"), [(4, 10), (8, 25)])
def test_spearman_over_every_pair_is_the_explicit_loop(q: int, n: int) -> None:
    query, reference, emd = problem(q, n, seed=n)
    assert emd_spearman(query, reference, emd, pairs=q * n) == pytest.approx(
        loop_spearman(query, reference, emd), rel=1e-9
    )


def test_spearman_samples_by_its_seed() -> None:
    query, reference, emd = problem(20, 50, seed=2)
    first = emd_spearman(query, reference, emd, pairs=300, seed=1)
    assert first == emd_spearman(query, reference, emd, pairs=300, seed=1)
    assert first != emd_spearman(query, reference, emd, pairs=300, seed=2)
    assert -1.0 <= first <= 1.0
