"""Which pairs in a batch share a label: the masks every loss and miner starts from."""

from torch import Tensor


def label_masks(labels: Tensor, ref_labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Boolean (n, m) masks of positive pairs and negative pairs.

    With ``ref_labels=None`` the batch is compared with itself and an item is
    never its own positive (the diagonal is False in both masks).

    >>> import torch
    >>> pos, neg = label_masks(torch.tensor([0, 0, 1]))
    >>> pos.int().tolist(), neg.int().tolist()
    ([[0, 1, 0], [1, 0, 0], [0, 0, 0]], [[0, 0, 1], [0, 0, 1], [1, 1, 0]])
    """
    ref = labels if ref_labels is None else ref_labels
    same = labels.unsqueeze(1) == ref.unsqueeze(0)  # (n, m)
    positive = same.clone()
    if ref_labels is None:
        positive.fill_diagonal_(False)
    return positive, ~same
