"""VICReg's loss: invariance, variance and covariance terms on two views.

Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning", 2021, arXiv:2105.04906: ``25 · MSE(z1, z2) + 25 · v + 1 · c``,
where v = mean over dimensions of relu(1 − sqrt(var + 1e-4)) per view, averaged over the two,
keeps every dimension's spread up (no collapse), and c = Σ off-diagonal covariance² / D per
view, summed over the two, decorrelates the dimensions. Variance and covariance are unbiased
(n − 1), as in the paper and lightly 1.6's ``VICRegLoss``, whose numbers this equals. Under
``torchrun`` the trainer calls it on the gathered global batch, so v and c are the global
batch's (lightly gathers them too, with ``gather_distributed``).
"""

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.loss_config import Call, LossConfig
from embedforge.registry import LOSSES


def variance_term(z: Tensor, eps: float = 1e-4) -> Tensor:
    """mean over dimensions of relu(1 − std), the (B, D) batch's unbiased std."""
    return F.relu(1.0 - torch.sqrt(z.var(dim=0) + eps)).mean()


def covariance_term(z: Tensor) -> Tensor:
    """Σ of the squared off-diagonal entries of the (D, D) unbiased covariance, over D."""
    n, dim = z.shape
    centred = z - z.mean(dim=0)
    covariance = centred.T @ centred / (n - 1)  # (D, D)
    return (covariance.pow(2).sum() - covariance.diagonal().pow(2).sum()) / dim


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    """VICReg on two (B, D) views of the same B items (B ≥ 2); a scalar.

    >>> z = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]) * 2
    >>> round(vicreg_loss(z, z).item(), 6)  # identical views, std > 1, uncorrelated
    0.0
    """
    if z1.shape != z2.shape or z1.ndim != 2 or len(z1) < 2:
        raise ValueError(
            f"expected two (B, D) views with B >= 2, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    invariance = F.mse_loss(z1, z2)
    variance = (variance_term(z1, eps) + variance_term(z2, eps)) / 2
    covariance = covariance_term(z1) + covariance_term(z2)
    return (
        invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    )


class VICRegLoss(nn.Module):
    """:func:`vicreg_loss` with its weights (the paper's 25 / 25 / 1): ``loss(z1, z2)``.

    >>> VICRegLoss()(torch.randn(8, 4), torch.randn(8, 4)).shape
    torch.Size([])
    """

    def __init__(
        self,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        self.weights = {
            "invariance_weight": invariance_weight,
            "variance_weight": variance_weight,
            "covariance_weight": covariance_weight,
            "eps": eps,
        }

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return vicreg_loss(z1, z2, **self.weights)


class VICRegConfig(LossConfig):
    """VICReg: invariance, variance and covariance terms on two views."""

    calls: ClassVar[frozenset[Call]] = frozenset({"two_views"})
    name: Literal["vicreg"] = "vicreg"
    invariance_weight: float = Field(25.0, ge=0)
    variance_weight: float = Field(25.0, ge=0)
    covariance_weight: float = Field(1.0, ge=0)
    eps: float = Field(1e-4, gt=0)


@LOSSES.register(VICRegConfig)
def build(config: VICRegConfig, shapes: Shapes) -> VICRegLoss:
    return VICRegLoss(**config.options())


__all__ = ["VICRegLoss", "covariance_term", "variance_term", "vicreg_loss"]
