"""SimSiam (Chen & He, 2020, arXiv:2011.10566): a predictor and a stop-gradient, no negatives.

``L = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2`` with D the negative cosine, p = h(z) the
predictor on the projection z. The paper's projector has three layers with batch norm on its
output; the predictor is a bottleneck (hidden = dim / 4). The stop-gradient is what keeps
it from collapsing (its section 4); ``dimension_std`` in the collapse monitors shows it.
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.negative_cosine import simsiam_loss
from embedforge.methods.heads import MLPHead
from embedforge.methods.method import Method, MethodConfig
from embedforge.registry import METHODS


class SimSiam(Method):
    """Projector f, predictor h; ``forward(z1, z2)`` is the symmetrised stop-gradient loss.

    >>> simsiam = SimSiam(nn.Identity(), 8, hidden_dim=16, projection_dim=8)
    >>> simsiam(torch.randn(6, 8), torch.randn(6, 8)).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        hidden_dim: int = 256,
        projection_dim: int = 256,
        predictor_hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        bottleneck = predictor_hidden_dim or max(1, projection_dim // 4)
        self.projector = MLPHead(
            embedding_dim, hidden_dim, projection_dim, layers=3, output_batch_norm=True
        )
        self.predictor = MLPHead(projection_dim, bottleneck, projection_dim)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        projected = self.projector(torch.cat([z1, z2]))  # (2B, dim)
        predicted = self.predictor(projected)  # (2B, dim)
        n = len(z1)
        return simsiam_loss(predicted[:n], predicted[n:], projected[:n], projected[n:])


class SimSiamConfig(MethodConfig):
    """SimSiam: a predictor against a stop-gradient projection of the other view."""

    name: Literal["simsiam"] = "simsiam"
    hidden_dim: int = Field(256, gt=0)
    projection_dim: int = Field(256, gt=0)
    predictor_hidden_dim: int | None = Field(None, gt=0, description="default projection_dim/4")


@METHODS.register(SimSiamConfig)
def build(config: SimSiamConfig, shapes: Shapes, encoder: nn.Module) -> SimSiam:
    return SimSiam(encoder, shapes.embedding_dim, **config.options())


__all__ = ["SimSiam"]
