"""SimCLR's projection head g: the contrastive loss sees g(h), downstream tasks use h.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
2020, arXiv:2002.05709, section 4.2: a non-linear head between the representation and
the NT-Xent loss improves the linear-probe accuracy of h by more than 10 points, because
the loss makes g(h) invariant to the augmentations and g absorbs the information lost.
"""

from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """(B, in_dim) -> (B, out_dim): Linear -> BatchNorm1d -> ReLU -> Linear.

    The first linear layer has no bias: the batch norm right after it would cancel it.

    >>> import torch
    >>> ProjectionHead(84, 128, 64)(torch.randn(5, 84)).shape
    torch.Size([5, 64])
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.layers(embeddings)


__all__ = ["ProjectionHead"]
