"""Triplet miners: pick the informative (anchor, positive, negative) triplets of a batch.

A miner only chooses indices (under ``no_grad``); a loss such as
:class:`~embedforge.losses.triplet.TripletMarginLoss` then takes them through
its ``indices_tuple`` argument. Triplet selection by margin comes from FaceNet
(arXiv:1503.03832), batch-hard from "In Defense of the Triplet Loss"
(arXiv:1703.07737). Both match pytorch-metric-learning's miners of the same names.
"""

from typing import NamedTuple

import torch
from torch import Tensor, nn

from embedforge.losses.distances import Distance, DistanceKind, as_distance
from embedforge.losses.masks import label_masks
from embedforge.losses.triplet_kernel import TripletType, hardest_triplets, mine_triplets

TRIPLET_TYPES: tuple[str, ...] = ("all", "hard", "semihard", "easy")


class MinedTriplets(NamedTuple):
    """Batch indices, each (T,) int64: triplet t is (anchor[t], positive[t], negative[t])."""

    anchor: Tensor
    positive: Tensor
    negative: Tensor


class TripletMiner(nn.Module):
    """Triplets selected by how they sit against the margin (FaceNet, arXiv:1503.03832).

    Why: most triplets of a trained model are already easy; training on the
    ones that violate the margin spends the gradient where it matters. With
    ``m = d(a, n) - d(a, p)`` (similarities: ``s(a, p) - s(a, n)``):
    "all" keeps ``m <= margin``, "hard" also ``m <= 0``, "semihard" also
    ``m > 0``, "easy" keeps ``m > margin``. Same triplets, in the same order, as
    PML's ``TripletMarginMiner``, found in O(B^2) working memory.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int -> :class:`MinedTriplets` of (T,).

    >>> import torch
    >>> miner = TripletMiner(margin=0.3, type_of_triplets="semihard")
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    >>> [t.tolist() for t in miner(x, torch.tensor([0, 0, 1, 1]))]
    [[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1]]
    >>> miner.num_triplets
    4
    """

    def __init__(
        self,
        margin: float = 0.2,
        *,
        type_of_triplets: TripletType = "all",
        distance: Distance | DistanceKind = "euclidean",
    ) -> None:
        super().__init__()
        if type_of_triplets not in TRIPLET_TYPES:
            raise ValueError(
                f"type_of_triplets must be one of {TRIPLET_TYPES}, not {type_of_triplets!r}"
            )
        self.margin = margin
        self.type_of_triplets = type_of_triplets
        self.distance = as_distance(distance)
        self.num_triplets = 0

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> MinedTriplets:
        matrix = self.distance.matrix(embeddings)  # (B, B)
        positive_mask, negative_mask = label_masks(labels.to(embeddings.device))  # (B, B) each
        mined = MinedTriplets(
            *mine_triplets(
                matrix,
                positive_mask,
                negative_mask,
                margin=self.margin,
                kind=self.type_of_triplets,
                is_similarity=self.distance.is_similarity,
            )
        )
        self.num_triplets = mined.anchor.numel()
        return mined

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, type_of_triplets={self.type_of_triplets!r}, "
            f"distance={self.distance.kind!r}"
        )


class BatchHardMiner(nn.Module):
    """One triplet per anchor: its farthest positive and closest negative (arXiv:1703.07737).

    Why: Hermans et al. show that the hardest triplets of a P x K batch train
    re-identification models better and faster than all triplets. Anchors
    without a positive or a negative in the batch are skipped. Same triplets as
    PML's ``BatchHardMiner``.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int -> :class:`MinedTriplets` of (A,).

    >>> import torch
    >>> miner = BatchHardMiner()
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    >>> [t.tolist() for t in miner(x, torch.tensor([0, 0, 1, 1, 2]))]
    [[0, 1, 2, 3], [1, 0, 3, 2], [2, 2, 1, 1]]
    """

    def __init__(self, *, distance: Distance | DistanceKind = "euclidean") -> None:
        super().__init__()
        self.distance = as_distance(distance)
        self.num_triplets = 0

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> MinedTriplets:
        matrix = self.distance.matrix(embeddings)  # (B, B)
        positive_mask, negative_mask = label_masks(labels.to(embeddings.device))  # (B, B) each
        mined = MinedTriplets(
            *hardest_triplets(
                matrix, positive_mask, negative_mask, is_similarity=self.distance.is_similarity
            )
        )
        self.num_triplets = mined.anchor.numel()
        return mined

    def extra_repr(self) -> str:
        return f"distance={self.distance.kind!r}"


__all__ = ["BatchHardMiner", "MinedTriplets", "TripletMiner"]
