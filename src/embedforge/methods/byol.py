"""BYOL (Grill et al., 2020, arXiv:2006.07733): an online encoder + projector + predictor
regresses a momentum target's projection of the other view.

``L = 2 - 2 cos(q(g(z1)), g'(t2))``, symmetrised, where g' and the target encoder are EMAs of
g and the encoder, their rate raised from ``momentum`` to 1 on the paper's cosine schedule.
The paper's base rate is 0.996 for 1,000 ImageNet epochs; a run of a few thousand steps
needs a faster target, so the default here is 0.99 (lightly's examples' choice too).
"""

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.loss_config import Call
from embedforge.losses.negative_cosine import byol_loss
from embedforge.methods.heads import MLPHead
from embedforge.methods.method import MethodConfig, MomentumMethod
from embedforge.registry import METHODS


class BYOL(MomentumMethod):
    """``forward(z1, z2, t1, t2)``: z from the online encoder, t from the target encoder.

    >>> byol = BYOL(nn.Linear(4, 8), 8, hidden_dim=16, projection_dim=8)
    >>> z, t = torch.randn(6, 8), torch.randn(6, 8)
    >>> byol(z, z, t, t).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        hidden_dim: int = 256,
        projection_dim: int = 64,
        momentum: float = 0.99,
        final_momentum: float = 1.0,
    ) -> None:
        projector = MLPHead(embedding_dim, hidden_dim, projection_dim)
        super().__init__(encoder, projector, momentum=momentum, final_momentum=final_momentum)
        self.predictor = MLPHead(projection_dim, hidden_dim, projection_dim)

    def forward(self, z1: Tensor, z2: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
        predicted = self.predictor(self.head(torch.cat([z1, z2])))  # (2B, dim)
        targets = self.target(torch.cat([t1, t2]))  # (2B, dim), no gradient
        n = len(z1)
        return byol_loss(predicted[:n], predicted[n:], targets[:n], targets[n:])


class BYOLConfig(MethodConfig):
    """BYOL: an online predictor regresses a momentum target's view (no negatives)."""

    calls: ClassVar[frozenset[Call]] = frozenset({"momentum_views"})

    name: Literal["byol"] = "byol"
    hidden_dim: int = Field(256, gt=0)
    projection_dim: int = Field(64, gt=0)
    momentum: float = Field(0.99, ge=0, le=1, description="target EMA rate at the first step")
    final_momentum: float = Field(1.0, ge=0, le=1, description="reached on a cosine schedule")


@METHODS.register(BYOLConfig)
def build(config: BYOLConfig, shapes: Shapes, encoder: nn.Module) -> BYOL:
    return BYOL(encoder, shapes.embedding_dim, **config.options())


__all__ = ["BYOL"]
