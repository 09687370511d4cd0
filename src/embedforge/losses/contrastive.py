"""Contrastive (pair) loss: pull same-label pairs together, push others past a margin.

Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant
Mapping", CVPR 2006. Matches pytorch-metric-learning's ``ContrastiveLoss``.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.losses.distances import Distance, DistanceKind, as_distance
from embedforge.losses.masks import label_masks
from embedforge.losses.reductions import mean_of_positive


def contrastive_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: Distance | DistanceKind = "euclidean",
) -> Tensor:
    """Mean hinge over positive pairs plus mean hinge over negative pairs.

    Every ordered pair ``(i, j), i != j`` takes part. A positive pair costs
    ``relu(d - pos_margin)``, a negative pair ``relu(neg_margin - d)``; for a
    similarity (cosine) the two signs flip. Each side is averaged over its
    non-zero terms only (easy pairs do not dilute it) and the two are summed.

    embeddings: (B, D) float; labels: (B,) int. Returns a scalar.
    """
    distance = as_distance(distance)
    mat = distance.matrix(embeddings)  # (B, B)
    pos_mask, neg_mask = label_masks(labels)  # (B, B) each
    sign = -1.0 if distance.is_similarity else 1.0  # closeness grows as sign * mat falls
    pos_losses = F.relu(sign * (mat - pos_margin)) * pos_mask  # (B, B), 0 off the mask
    neg_losses = F.relu(sign * (neg_margin - mat)) * neg_mask  # (B, B)
    return mean_of_positive(pos_losses) + mean_of_positive(neg_losses)


class ContrastiveLoss(nn.Module):
    """Contrastive pair loss over all pairs in the batch (Hadsell et al., CVPR 2006).

    Why: the simplest metric-learning loss; a baseline the others must beat.
    Defaults are pytorch-metric-learning's, so its users get the same numbers.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int -> scalar.

    >>> import torch
    >>> loss = ContrastiveLoss()
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> round(loss(x, torch.tensor([0, 0, 1])).item(), 4)  # pos pair at sqrt(2), neg pair at 0
    2.4142
    """

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        *,
        distance: Distance | DistanceKind = "euclidean",
    ) -> None:
        super().__init__()
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        self.distance = as_distance(distance)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return contrastive_loss(
            embeddings,
            labels,
            pos_margin=self.pos_margin,
            neg_margin=self.neg_margin,
            distance=self.distance,
        )

    def extra_repr(self) -> str:
        margins = f"pos_margin={self.pos_margin}, neg_margin={self.neg_margin}"
        return f"{margins}, distance={self.distance.kind!r}"


__all__ = ["ContrastiveLoss", "contrastive_loss"]
