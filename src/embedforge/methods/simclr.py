"""SimCLR (Chen et al., 2020, arXiv:2002.05709): NT-Xent on a projection of both views.

The same loss as a recipe's ``loss: ntxent`` with a ``projection`` section, as a method, so
that the comparison names every method the same way (``method: {name: simclr}``).
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.ntxent import NTXentLoss
from embedforge.methods.heads import MLPHead
from embedforge.methods.method import Method, MethodConfig
from embedforge.registry import METHODS


class SimCLR(Method):
    """NT-Xent over ``head(z1)``, ``head(z2)`` (projected together: the head's batch norm
    sees all 2B views); every other view of the batch is a negative.

    >>> simclr = SimCLR(nn.Identity(), 8, hidden_dim=16, projection_dim=4, temperature=0.5)
    >>> simclr(torch.randn(6, 8), torch.randn(6, 8)).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        hidden_dim: int = 256,
        projection_dim: int = 64,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        self.head = MLPHead(embedding_dim, hidden_dim, projection_dim)
        self.loss = NTXentLoss(temperature)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        both = self.head(torch.cat([z1, z2]))  # (2B, projection_dim)
        return self.loss(both[: len(z1)], both[len(z1) :])


class SimCLRConfig(MethodConfig):
    """SimCLR: NT-Xent on a projection of two views, the other views as negatives."""

    name: Literal["simclr"] = "simclr"
    hidden_dim: int = Field(256, gt=0)
    projection_dim: int = Field(64, gt=0)
    temperature: float = Field(0.5, gt=0)


@METHODS.register(SimCLRConfig)
def build(config: SimCLRConfig, shapes: Shapes, encoder: nn.Module) -> SimCLR:
    return SimCLR(encoder, shapes.embedding_dim, **config.options())


__all__ = ["SimCLR"]
