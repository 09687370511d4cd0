"""VICReg (Bardes et al., 2021, arXiv:2105.04906): invariance, variance and covariance terms
on a three-layer expander, with the paper's weights 25 / 25 / 1.

The loss is :func:`embedforge.losses.vicreg.vicreg_loss`; variance and covariance are the
global batch's under ``torchrun`` (the tasks gather before calling the method).
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.vicreg import vicreg_loss
from embedforge.methods.heads import MLPHead
from embedforge.methods.method import Method, MethodConfig
from embedforge.registry import METHODS


class VICReg(Method):
    """``forward(z1, z2)``: VICReg's loss on the expanded views.

    >>> vicreg = VICReg(nn.Identity(), 8, hidden_dim=16, projection_dim=16)
    >>> vicreg(torch.randn(6, 8), torch.randn(6, 8)).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        hidden_dim: int = 512,
        projection_dim: int = 512,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.expander = MLPHead(embedding_dim, hidden_dim, projection_dim, layers=3)
        self.weights = {
            "invariance_weight": invariance_weight,
            "variance_weight": variance_weight,
            "covariance_weight": covariance_weight,
        }

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        expanded = self.expander(torch.cat([z1, z2]))  # (2B, dim)
        n = len(z1)
        return vicreg_loss(expanded[:n], expanded[n:], **self.weights)


class VICRegConfig(MethodConfig):
    """VICReg: invariance, variance and covariance terms (no negatives, no target)."""

    name: Literal["vicreg"] = "vicreg"
    hidden_dim: int = Field(512, gt=0)
    projection_dim: int = Field(512, gt=0)
    invariance_weight: float = Field(25.0, ge=0)
    variance_weight: float = Field(25.0, ge=0)
    covariance_weight: float = Field(1.0, ge=0)


@METHODS.register(VICRegConfig)
def build(config: VICRegConfig, shapes: Shapes, encoder: nn.Module) -> VICReg:
    return VICReg(encoder, shapes.embedding_dim, **config.options())


__all__ = ["VICReg"]
