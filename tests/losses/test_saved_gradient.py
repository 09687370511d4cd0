"""Tests for embedforge.losses.saved_gradient: the fused losses refuse a double backward.

Their backward returns a gradient saved in forward, a constant to autograd, so a second
derivative through it would silently miss the gradient's own dependence on the input
(before ``once_differentiable`` it came out 0.0241 where plain autograd gives 0.0214). The
cosine distance is used because its matrix product is twice differentiable, so the fused
function is the only part that cannot be.
"""

import pytest
import torch

from embedforge.losses.contrastive import ContrastiveLoss
from embedforge.losses.triplet import TripletMarginLoss

FUSED = {
    "contrastive": lambda: ContrastiveLoss(0.1, 0.9, distance="cosine"),
    "triplet_all": lambda: TripletMarginLoss(margin=0.5, distance="cosine", mining="all"),
    "triplet_semihard": lambda: TripletMarginLoss(margin=0.5, distance="cosine", mining="semihard"),
}


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    return x, torch.arange(12) % 3


@pytest.mark.parametrize("name", sorted(FUSED))
def test_create_graph_raises_instead_of_a_wrong_second_derivative(name: str) -> None:
    x, labels = _batch()
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(FUSED[name]()(x, labels), x, create_graph=True)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_a_plain_backward_still_works(name: str) -> None:
    x, labels = _batch()
    FUSED[name]()(x, labels).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
