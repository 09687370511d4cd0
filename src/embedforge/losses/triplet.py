"""Triplet margin loss with online mining inside the batch.

An anchor should be closer to a positive (same label) than to a negative
(other label) by a margin: Schroff, Kalenichenko & Philbin, "FaceNet",
arXiv:1503.03832. Batch-hard mining follows Hermans, Beyer & Leibe, "In
Defense of the Triplet Loss for Person Re-Identification", arXiv:1703.07737.
Matches pytorch-metric-learning's ``TripletMarginLoss`` (with its miners) in
value and gradient, without its (B, B, B) tensors.
"""

from typing import ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import Distance, DistanceKind, as_distance
from embedforge.losses.loss_config import LossConfig
from embedforge.losses.reductions import mean_of_positive
from embedforge.losses.references import References, pair_masks, reference_rows
from embedforge.losses.triplet_kernel import (
    closeness_sign,
    hardest_triplets,
    triplet_margin_from_matrix,
)
from embedforge.registry import LOSSES

Mining = Literal["all", "hard", "semihard", "easy", "batch_hard"]
MINING_MODES: tuple[str, ...] = ("all", "hard", "semihard", "easy", "batch_hard")
"""PML's ``TripletMarginMiner`` types under their PML names, and batch-hard under its own:
a PML user's ``"hard"`` means the triplets whose negative is at least as close as the
positive, not Hermans et al.'s one hardest triplet per anchor."""


class TripletLossOutput(NamedTuple):
    """The loss and what it was computed over (int64 scalars, for logging)."""

    loss: Tensor
    num_triplets: Tensor
    num_positive: Tensor


def _loss_from_indices(
    matrix: Tensor,
    indices: tuple[Tensor, Tensor, Tensor],
    *,
    margin: float,
    is_similarity: bool,
    smooth: bool,
) -> TripletLossOutput:
    """Mean non-zero triplet loss over given (anchor, positive, negative) indices; O(T)."""
    anchor, positive, negative = (i.to(matrix.device, torch.int64) for i in indices)
    sign = closeness_sign(is_similarity)
    current = (matrix[anchor, positive] - matrix[anchor, negative]) * sign  # (T,)
    violation = current + margin  # (T,)
    losses = F.softplus(violation) if smooth else F.relu(violation)  # (T,)
    num_positive = (losses > 0).sum()
    num_triplets = torch.tensor(anchor.numel(), device=matrix.device)
    return TripletLossOutput(mean_of_positive(losses), num_triplets, num_positive)


def triplet_margin_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: float = 0.05,
    distance: Distance | DistanceKind = "euclidean",
    mining: Mining = "all",
    smooth: bool = False,
    indices_tuple: tuple[Tensor, Tensor, Tensor] | None = None,
    references: References | None = None,
) -> TripletLossOutput:
    """Triplet margin loss over the batch's triplets, averaged over the non-zero ones.

    Per triplet ``relu(d(a, p) - d(a, n) + margin)`` (``softplus`` of the same
    when ``smooth``; for a similarity the two terms swap). ``mining`` picks the
    triplets: "all" every valid one; "hard", "semihard", "easy" those PML's
    TripletMarginMiner of that type keeps with the same margin; "batch_hard" one per
    anchor (farthest positive, closest negative). ``indices_tuple`` overrides mining.
    With ``references`` (a cross-batch memory) positives and negatives are reference rows
    and ``indices_tuple``'s second and third entries index them.

    embeddings: (B, D) float; labels: (B,) int. Memory O(B·M) for M references (M = B
    without them), plus O(T) for given indices, never O(B^3).
    """
    if mining not in MINING_MODES:
        raise ValueError(f"mining must be one of {MINING_MODES}, not {mining!r}")
    distance = as_distance(distance)
    matrix = distance.matrix(embeddings, reference_rows(references))  # (B, M)
    options = {"margin": margin, "is_similarity": distance.is_similarity, "smooth": smooth}
    if indices_tuple is not None:
        return _loss_from_indices(matrix, tuple(indices_tuple), **options)
    positive_mask, negative_mask = pair_masks(labels.to(embeddings.device), references)
    if mining == "batch_hard":
        indices = hardest_triplets(
            matrix.detach(), positive_mask, negative_mask, is_similarity=distance.is_similarity
        )
        return _loss_from_indices(matrix, indices, **options)
    loss, counts = triplet_margin_from_matrix(
        matrix,
        positive_mask,
        negative_mask,
        kind=None if mining == "all" else mining,
        **options,
    )
    return TripletLossOutput(loss, counts[0], counts[1])


class TripletMarginLoss(nn.Module):
    """Triplet margin loss with in-batch mining (FaceNet, arXiv:1503.03832).

    Why: pulls each item's class mates closer than any other class by a
    margin, the workhorse loss for re-identification and retrieval. The
    defaults are pytorch-metric-learning's ``TripletMarginLoss()`` (L2-normalised
    Euclidean distance, margin 0.05, mean over non-zero triplets), so its users
    get the same numbers, at a fraction of the time and memory.

    mining: "all" (every valid triplet), "hard", "semihard" or "easy" (as PML's
    TripletMarginMiner of that type with the same margin), "batch_hard" (the hardest
    positive and negative per anchor, arXiv:1703.07737: PML's BatchHardMiner).
    ``smooth=True`` uses softplus instead of the hinge. After each call,
    ``num_triplets`` and ``fraction_positive`` say what the loss was over.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int, optional
    ``indices_tuple`` of three (T,) int tensors (e.g. a miner's output) -> scalar;
    ``references`` compares the anchors with a cross-batch memory's rows instead.

    >>> import torch
    >>> loss_fn = TripletMarginLoss(margin=0.1)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    >>> round(loss_fn(x, torch.tensor([0, 0, 1])).item(), 4)
    0.7934
    >>> loss_fn.num_triplets, loss_fn.fraction_positive
    (2, 1.0)
    """

    def __init__(
        self,
        margin: float = 0.05,
        *,
        distance: Distance | DistanceKind = "euclidean",
        mining: Mining = "all",
        smooth: bool = False,
    ) -> None:
        super().__init__()
        if mining not in MINING_MODES:
            raise ValueError(f"mining must be one of {MINING_MODES}, not {mining!r}")
        self.margin = margin
        self.distance = as_distance(distance)
        self.mining = mining
        self.smooth = smooth
        self.num_triplets = 0
        self.fraction_positive = 0.0

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        indices_tuple: tuple[Tensor, Tensor, Tensor] | None = None,
        *,
        references: References | None = None,
    ) -> Tensor:
        out = triplet_margin_loss(
            embeddings,
            labels,
            margin=self.margin,
            distance=self.distance,
            mining=self.mining,
            smooth=self.smooth,
            indices_tuple=indices_tuple,
            references=references,
        )
        self.num_triplets = int(out.num_triplets)
        num_positive = int(out.num_positive)
        self.fraction_positive = num_positive / self.num_triplets if self.num_triplets else 0.0
        return out.loss

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, distance={self.distance.kind!r}, "
            f"mining={self.mining!r}, smooth={self.smooth}"
        )


class TripletMarginConfig(LossConfig):
    """Triplet margin loss with in-batch mining (FaceNet; PML's defaults)."""

    takes_references: ClassVar[bool] = True
    name: Literal["triplet_margin"] = "triplet_margin"
    margin: float = 0.05
    distance: DistanceKind = "euclidean"
    mining: Mining = "all"
    smooth: bool = Field(False, description="softplus instead of the hinge")


@LOSSES.register(TripletMarginConfig)
def build(config: TripletMarginConfig, shapes: Shapes) -> TripletMarginLoss:
    return TripletMarginLoss(**config.options())


__all__ = ["TripletLossOutput", "TripletMarginLoss", "triplet_margin_loss"]
