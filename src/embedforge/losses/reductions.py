"""How per-pair / per-triplet losses become one number."""

from torch import Tensor


def mean_of_positive(losses: Tensor) -> Tensor:
    """Mean over the entries > 0; 0 (still attached to the graph) when there are none.

    This is pytorch-metric-learning's ``AvgNonZeroReducer``: easy pairs and
    triplets that already satisfy the margin do not dilute the average. Entries
    that are masked out can simply be 0, so callers pass dense (B, B) tensors
    instead of gathering; there is no data-dependent branch (and so no host
    sync on a GPU).
    """
    positive = losses > 0
    return (losses * positive).sum() / positive.sum().clamp_min(1)
