"""The rows a batch's anchors are compared with when those are not the batch itself.

Cross-batch memory (Wang, Zhang, Huang & Scott, "Cross-Batch Memory for Embedding
Learning", CVPR 2020, arXiv:1912.06798) compares every anchor of the batch with the
embeddings kept from earlier batches, which pytorch-metric-learning hands its losses as
``ref_emb, ref_labels``. A pair-based loss needs three things to do the same: the reference
rows, their labels and, since the memory holds the current batch too, which reference is
each anchor's own copy, so that an item is never its own positive.
"""

from dataclasses import dataclass

from torch import Tensor

from embedforge.losses.masks import label_masks


@dataclass(frozen=True)
class References:
    """Reference rows for a batch of B anchors: ``embeddings`` (M, D) without gradient,
    ``labels`` (M,) int, ``own_column`` (B,) int64, the column holding anchor i's own copy
    (-1 where the references hold none)."""

    embeddings: Tensor
    labels: Tensor
    own_column: Tensor


def reference_rows(references: References | None) -> Tensor | None:
    """What a distance matrix compares the batch with: the references, or None (the batch)."""
    return None if references is None else references.embeddings


def pair_masks(labels: Tensor, references: References | None = None) -> tuple[Tensor, Tensor]:
    """Boolean (B, M) masks of positive and negative pairs, anchors against references
    (the batch against itself when ``references`` is None); an anchor's own copy is in
    neither mask.

    >>> import torch
    >>> refs = References(torch.zeros(3, 2), torch.tensor([0, 0, 1]), torch.tensor([1, -1]))
    >>> pos, neg = pair_masks(torch.tensor([0, 1]), refs)
    >>> pos.int().tolist(), neg.int().tolist()
    ([[1, 0, 0], [0, 0, 1]], [[0, 0, 1], [1, 1, 0]])
    """
    if references is None:
        return label_masks(labels)
    positive, negative = label_masks(labels, references.labels.to(labels.device))  # (B, M)
    own = references.own_column.to(labels.device)  # (B,)
    anchors = (own >= 0).nonzero().squeeze(1)  # (A,)
    positive[anchors, own[anchors]] = False
    return positive, negative


__all__ = ["References", "pair_masks", "reference_rows"]
