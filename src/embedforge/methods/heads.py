"""The small MLPs the self-supervised methods put after the encoder (projector, predictor).

Each method's paper fixes its own head; they differ in depth, width and where batch norm
sits, so one builder with those three choices serves them all:

* SimCLR (arXiv:2002.05709), BYOL (arXiv:2006.07733), MoCo v2 (arXiv:2003.04297): two
  layers, ``Linear -> BN -> ReLU -> Linear``;
* SimSiam (arXiv:2011.10566): a three-layer projector with BN on its output too;
* Barlow Twins (arXiv:2103.03230), VICReg (arXiv:2105.04906): three layers, wide.
"""

from torch import Tensor, nn


class MLPHead(nn.Module):
    """(B, in_dim) -> (B, out_dim): ``layers - 1`` blocks of Linear -> BatchNorm1d -> ReLU,
    then a Linear (followed by an affine-free BatchNorm1d when ``output_batch_norm``).

    Linear layers followed by a batch norm have no bias: the norm would cancel it.

    >>> import torch
    >>> MLPHead(16, 32, 8, layers=3)(torch.randn(5, 16)).shape
    torch.Size([5, 8])
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        *,
        layers: int = 2,
        output_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        blocks: list[nn.Module] = []
        width = in_dim
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim)]
            blocks.append(nn.ReLU())
            width = hidden_dim
        blocks.append(nn.Linear(width, out_dim, bias=not output_batch_norm))
        if output_batch_norm:
            blocks.append(nn.BatchNorm1d(out_dim, affine=False))
        self.layers = nn.Sequential(*blocks)

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.layers(embeddings)


__all__ = ["MLPHead"]
