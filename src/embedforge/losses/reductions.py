"""How per-pair / per-triplet losses become one number."""

from torch import Tensor


def mean_of_positive(losses: Tensor) -> Tensor:
    """Mean over the entries > 0; 0 (still attached to the graph) when there are none.

    This is pytorch-metric-learning's ``AvgNonZeroReducer``: easy pairs and
    triplets that already satisfy the margin do not dilute the average.
    """
    positive = losses > 0
    count = positive.sum()
    if count == 0:
        return losses.sum() * 0.0
    return losses[positive].sum() / count
