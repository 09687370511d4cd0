"""Barlow Twins (Zbontar et al., 2021, arXiv:2103.03230): the views' cross-correlation
pushed to the identity, through a wide three-layer projector.

The loss and its normalisation are :func:`embedforge.losses.barlow_twins.barlow_twins_loss`;
under ``torchrun`` it is computed on the gathered global batch, so the cross-correlation is
the global batch's (lightly's ``gather_distributed`` gradient is reported off by the world
size; here every rank computes the one-process loss).
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.barlow_twins import barlow_twins_loss
from embedforge.methods.heads import MLPHead
from embedforge.methods.method import Method, MethodConfig
from embedforge.registry import METHODS


class BarlowTwins(Method):
    """``forward(z1, z2)``: Barlow Twins' loss on the projected views.

    >>> barlow = BarlowTwins(nn.Identity(), 8, hidden_dim=16, projection_dim=16)
    >>> barlow(torch.randn(6, 8), torch.randn(6, 8)).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        hidden_dim: int = 512,
        projection_dim: int = 512,
        lambda_offdiag: float = 5e-3,
    ) -> None:
        super().__init__()
        self.projector = MLPHead(embedding_dim, hidden_dim, projection_dim, layers=3)
        self.lambda_offdiag = lambda_offdiag

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        projected = self.projector(torch.cat([z1, z2]))  # (2B, dim)
        n = len(z1)
        return barlow_twins_loss(projected[:n], projected[n:], lambda_offdiag=self.lambda_offdiag)


class BarlowTwinsConfig(MethodConfig):
    """Barlow Twins: the two views' cross-correlation driven to the identity."""

    name: Literal["barlow_twins"] = "barlow_twins"
    hidden_dim: int = Field(512, gt=0)
    projection_dim: int = Field(512, gt=0)
    lambda_offdiag: float = Field(5e-3, ge=0, description="weight of the off-diagonal terms")


@METHODS.register(BarlowTwinsConfig)
def build(config: BarlowTwinsConfig, shapes: Shapes, encoder: nn.Module) -> BarlowTwins:
    return BarlowTwins(encoder, shapes.embedding_dim, **config.options())


__all__ = ["BarlowTwins"]
