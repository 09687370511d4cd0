"""Collapse monitors: is a self-supervised embedding spread out, or falling to a point or a
few directions? Computed on held-out embeddings every validated epoch and by ``evaluate``.

* ``rankme`` — RankMe (Garrido et al., 2023, arXiv:2210.02885): exp of the entropy of the
  normalised singular values of the (N, D) embedding matrix, p_k = σ_k / Σσ + ε (the paper's
  definition: the matrix is not centred). D when every direction is used, 1 at full collapse.
* ``alignment`` — Wang & Isola, 2020 (arXiv:2005.10242): mean ‖f(x) − f(y)‖² over positive
  pairs (two views of one item) of L2-normalised embeddings; 0 when the views agree.
* ``uniformity`` — the same paper: log mean exp(−2‖f(x) − f(y)‖²) over distinct pairs of
  L2-normalised embeddings; more negative is more uniform on the sphere, 0 at collapse.
  Computed on at most ``UNIFORMITY_ITEMS`` items (the first ones: the caller's order is
  already the held-out split's), so its cost stays O(cap²).
* ``dimension_std`` — SimSiam (Chen & He, 2020, arXiv:2011.10566, §4): the mean over
  dimensions of the per-dimension standard deviation of the L2-normalised embeddings, times
  √D so that an embedding spread over the sphere reads about 1 and a collapsed one 0.
"""

import math

import torch

from embedforge.metrics.arrays import ArrayLike, as_embeddings

UNIFORMITY_ITEMS = 4096
"""Items uniformity is computed on: 4096² pair distances in float64 are 128 MiB, computed in
row chunks of 1024 so the peak is a quarter of that."""


def rankme(embeddings: ArrayLike, eps: float = 1e-7) -> float:
    """RankMe of (N, D) embeddings: between 1 and min(N, D).

    >>> round(rankme(torch.eye(4)), 3)
    4.0
    """
    z = as_embeddings(embeddings, "embeddings").double()
    singular = torch.linalg.svdvals(z)  # (min(N, D),)
    p = singular / singular.sum().clamp_min(1e-300) + eps
    return math.exp(-(p * p.log()).sum().item())


def alignment(first: ArrayLike, second: ArrayLike, alpha: float = 2.0) -> float:
    """Mean ‖f(x) − f(y)‖^α of L2-normalised row pairs: 0 (identical) to 2^α (opposite).

    >>> alignment(torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]]))
    4.0
    """
    a = torch.nn.functional.normalize(as_embeddings(first, "first").double(), dim=1)
    b = torch.nn.functional.normalize(as_embeddings(second, "second").double(), dim=1)
    if a.shape != b.shape:
        raise ValueError(
            f"the two views must have one shape, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return (a - b).norm(dim=1).pow(alpha).mean().item()


def uniformity(embeddings: ArrayLike, t: float = 2.0) -> float:
    """log mean over distinct pairs of exp(−t‖zi − zj‖²), L2-normalised rows (N ≥ 2).

    >>> round(uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])), 4)  # antipodal: -2 * 4
    -8.0
    """
    z = torch.nn.functional.normalize(as_embeddings(embeddings, "embeddings").double(), dim=1)
    z = z[:UNIFORMITY_ITEMS]
    n = len(z)
    if n < 2:
        raise ValueError(f"uniformity needs 2 embeddings or more, got {n}")
    terms = []
    for start in range(0, n, 1024):
        block = z[start : start + 1024]  # (b, D)
        squared = (2 - 2 * block @ z.T).clamp_min(0)  # (b, n): |zi - zj|^2 of unit vectors
        rows = torch.arange(start, start + len(block))
        squared[torch.arange(len(block)), rows] = math.inf  # no pair of an item with itself
        terms.append(torch.logsumexp(-t * squared, dim=1))  # (b,)
    return (torch.logsumexp(torch.cat(terms), dim=0) - math.log(n * (n - 1))).item()


def dimension_std(embeddings: ArrayLike) -> float:
    """√D × mean per-dimension std of the L2-normalised (N, D) embeddings: ≈ 1 spread out, 0
    collapsed.

    >>> dimension_std(torch.ones(5, 3))
    0.0
    """
    z = torch.nn.functional.normalize(as_embeddings(embeddings, "embeddings").double(), dim=1)
    return (z.std(dim=0, unbiased=False).mean() * math.sqrt(z.shape[1])).item()


def collapse_metrics(
    embeddings: ArrayLike, second_view: ArrayLike | None = None
) -> dict[str, float]:
    """``rankme``, ``uniformity``, ``dimension_std`` of ``embeddings`` and, given a second
    view's embeddings of the same items (row for row), their ``alignment``."""
    metrics = {
        "rankme": rankme(embeddings),
        "uniformity": uniformity(embeddings),
        "dimension_std": dimension_std(embeddings),
    }
    if second_view is not None:
        metrics["alignment"] = alignment(embeddings, second_view)
    return metrics


__all__ = ["alignment", "collapse_metrics", "dimension_std", "rankme", "uniformity"]
