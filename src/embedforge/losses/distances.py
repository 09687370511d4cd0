"""Pairwise distance and similarity matrices shared by every loss and metric.

The Euclidean distance's gradient is 0 (not NaN) where the distance is 0, so
identical embeddings in a batch are harmless; :func:`safe_sqrt` gives other
square roots (ArcFace's sine) the same property.
Defaults follow pytorch-metric-learning: embeddings are L2-normalised first.
"""

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

DistanceKind = Literal["euclidean", "squared_euclidean", "cosine"]


def safe_sqrt(x: Tensor) -> Tensor:
    """sqrt(x) for x >= 0 with value 0 and gradient 0 (instead of inf/NaN) at x == 0."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)


def pairwise_squared_euclidean(x: Tensor, y: Tensor | None = None) -> Tensor:
    """(n, d), (m, d) -> (n, m) squared Euclidean distances, clamped at 0 against rounding."""
    y = x if y is None else y
    x_sq = x.pow(2).sum(dim=1, keepdim=True)  # (n, 1)
    y_sq = y.pow(2).sum(dim=1).unsqueeze(0)  # (1, m)
    return (x_sq + y_sq - 2.0 * (x @ y.T)).clamp_min(0.0)


def pairwise_euclidean(x: Tensor, y: Tensor | None = None) -> Tensor:
    """(n, d), (m, d) -> (n, m) Euclidean distances with a finite gradient at 0.

    ``torch.cdist`` is one fused kernel (PML uses it too, so the numbers agree to
    the last bit), and its backward gives 0, not NaN, where a distance is 0.
    """
    return torch.cdist(x, x if y is None else y)


def pairwise_cosine_similarity(x: Tensor, y: Tensor | None = None) -> Tensor:
    """(n, d), (m, d) -> (n, m) cosine similarities."""
    x = F.normalize(x, dim=1)
    y = x if y is None else F.normalize(y, dim=1)
    return x @ y.T


@dataclass(frozen=True)
class Distance:
    """How a loss compares embeddings.

    ``kind="cosine"`` is a similarity (larger = closer); the other kinds are
    distances (smaller = closer). ``normalize`` L2-normalises embeddings first,
    as pytorch-metric-learning's ``LpDistance`` does by default.

    >>> Distance("cosine").is_similarity
    True
    """

    kind: DistanceKind = "euclidean"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("euclidean", "squared_euclidean", "cosine"):
            raise ValueError(
                f"distance must be 'euclidean', 'squared_euclidean' or 'cosine', not {self.kind!r}"
            )

    @property
    def is_similarity(self) -> bool:
        return self.kind == "cosine"

    def matrix(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """(n, d), (m, d) -> (n, m); ``y=None`` compares ``x`` with itself."""
        if self.kind == "cosine":
            return pairwise_cosine_similarity(x, y)
        if self.normalize:
            x = F.normalize(x, dim=1)
            y = None if y is None else F.normalize(y, dim=1)
        if self.kind == "squared_euclidean":
            return pairwise_squared_euclidean(x, y)
        return pairwise_euclidean(x, y)


def as_distance(distance: "Distance | DistanceKind") -> Distance:
    """Accept either a :class:`Distance` or its kind's name (as recipes give it)."""
    return distance if isinstance(distance, Distance) else Distance(distance)
