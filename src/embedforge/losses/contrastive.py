"""Contrastive (pair) loss: pull same-label pairs together, push others past a margin.

Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant
Mapping", CVPR 2006. Matches pytorch-metric-learning's ``ContrastiveLoss``.
"""

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import Distance, DistanceKind, as_distance
from embedforge.losses.loss_config import LossConfig
from embedforge.losses.references import References, pair_masks, reference_rows
from embedforge.losses.saved_gradient import SavedGradientFunction
from embedforge.registry import LOSSES


class _PairHinge(SavedGradientFunction):
    """Both averaged hinges from the (B, M) matrix in a few passes, gradient included.

    Autograd through a dense masked expression costs some sixty passes over B·M
    entries (most of them bool-to-float copies). Here positive pairs, only
    about B·K of them, are gathered by index; the negative side is one
    subtraction, one masked fill and a clamp over B·M, done in place; and the
    gradient is known in closed form (±1 / count on each active pair), so
    forward computes it and saves only that (B, M) tensor.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        matrix: Tensor,
        positive_mask: Tensor,
        negative_mask: Tensor,
        pos_margin: float,
        neg_margin: float,
        sign: float,
    ) -> Tensor:
        anchor, positive = positive_mask.nonzero(as_tuple=True)  # (P,) each
        pos_violation = (matrix[anchor, positive] - pos_margin) * sign  # (P,) > 0: too far
        pos_active = pos_violation > 0
        pos_count = pos_active.sum().clamp_min(1).to(matrix.dtype)

        neg_violation = neg_margin - matrix if sign > 0 else matrix - neg_margin  # (B, M)
        neg_violation.masked_fill_(~negative_mask, 0.0)  # only pairs of different labels
        neg_active = neg_violation > 0  # (B, M) too close
        neg_count = neg_active.sum().clamp_min(1).to(matrix.dtype)
        loss = (
            pos_violation.clamp_min(0.0).sum() / pos_count
            + neg_violation.clamp_min_(0.0).sum() / neg_count
        )
        grad = torch.where(neg_active, -sign / neg_count, matrix.new_zeros(()))  # (B, M)
        grad.index_put_((anchor[pos_active], positive[pos_active]), (sign / pos_count).expand(1))
        ctx.save_for_backward(grad)
        return loss


def contrastive_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: Distance | DistanceKind = "euclidean",
    references: References | None = None,
) -> Tensor:
    """Mean hinge over positive pairs plus mean hinge over negative pairs.

    Every ordered pair ``(i, j), i != j`` takes part. A positive pair costs
    ``relu(d - pos_margin)``, a negative pair ``relu(neg_margin - d)``; for a
    similarity (cosine) the two signs flip. Each side is averaged over its
    non-zero terms only (PML's AvgNonZeroReducer: easy pairs do not dilute it)
    and the two are summed. With ``references`` (a cross-batch memory) the pairs are
    (anchor, reference row), an anchor's own copy excluded.

    embeddings: (B, D) float; labels: (B,) int. Returns a scalar.
    """
    distance = as_distance(distance)
    sign = -1.0 if distance.is_similarity else 1.0  # sign * matrix grows as pairs separate
    matrix = distance.matrix(embeddings, reference_rows(references))  # (B, M)
    positive_mask, negative_mask = pair_masks(labels.to(embeddings.device), references)
    return _PairHinge.apply(matrix, positive_mask, negative_mask, pos_margin, neg_margin, sign)


class ContrastiveLoss(nn.Module):
    """Contrastive pair loss over all pairs in the batch (Hadsell et al., CVPR 2006).

    Why: the simplest metric-learning loss; a baseline the others must beat.
    Defaults are pytorch-metric-learning's, so its users get the same numbers.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int -> scalar; ``references``
    compares the anchors with a cross-batch memory's rows instead.

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

    def forward(
        self, embeddings: Tensor, labels: Tensor, *, references: References | None = None
    ) -> Tensor:
        return contrastive_loss(
            embeddings,
            labels,
            pos_margin=self.pos_margin,
            neg_margin=self.neg_margin,
            distance=self.distance,
            references=references,
        )

    def extra_repr(self) -> str:
        margins = f"pos_margin={self.pos_margin}, neg_margin={self.neg_margin}"
        return f"{margins}, distance={self.distance.kind!r}"


class ContrastiveConfig(LossConfig):
    """Contrastive loss on pairs: positives within pos_margin, negatives beyond neg_margin."""

    takes_references: ClassVar[bool] = True
    name: Literal["contrastive"] = "contrastive"
    pos_margin: float = 0.0
    neg_margin: float = 1.0
    distance: DistanceKind = "euclidean"


@LOSSES.register(ContrastiveConfig)
def build(config: ContrastiveConfig, shapes: Shapes) -> ContrastiveLoss:
    return ContrastiveLoss(**config.options())


__all__ = ["ContrastiveLoss", "contrastive_loss"]
