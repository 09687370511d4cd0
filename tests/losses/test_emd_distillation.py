"""EMD distillation: the Sammon-weighted regression of embedding distances on exact EMD,
checked against a per-pair loop, an analytic case and float64 gradcheck."""

import math

import pytest
import torch

from embedforge.losses.emd_distillation import EMDDistillationLoss, emd_distillation_loss


def _loop(
    first: torch.Tensor, second: torch.Tensor, emd: torch.Tensor, scale: float, offset: float
) -> float:
    """The loss written pair by pair from its definition."""
    total = 0.0
    for a, b, e in zip(first.tolist(), second.tolist(), emd.tolist(), strict=True):
        distance = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
        target = e / scale
        total += (distance - target) ** 2 / (target + offset)
    return total / len(emd)


@pytest.mark.parametrize(
    ("pairs", "dim", "scale", "offset"),
    [(1, 2, 100.0, 0.05), (17, 8, 10.0, 0.5), (64, 64, 100.0, 0.01)],
)
def test_equals_the_pair_by_pair_loop(pairs: int, dim: int, scale: float, offset: float) -> None:
    generator = torch.Generator().manual_seed(pairs)
    first = torch.randn(pairs, dim, generator=generator, dtype=torch.float64)
    second = torch.randn(pairs, dim, generator=generator, dtype=torch.float64)
    emd = torch.rand(pairs, generator=generator, dtype=torch.float64) * 80
    value = emd_distillation_loss(first, second, emd, scale=scale, offset=offset)
    assert value.item() == pytest.approx(_loop(first, second, emd, scale, offset), rel=1e-12)


def test_analytic_case() -> None:
    """Distance 5 against a target of 100/10 = 10: (5 - 10)² / (10 + 0.05)."""
    loss = EMDDistillationLoss(scale=10.0, offset=0.05)
    value = loss(torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([100.0]))
    assert value.item() == pytest.approx(25 / 10.05)


def test_exact_distances_cost_nothing() -> None:
    first = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    second = torch.tensor([[0.6, 0.8], [1.0, 1.0]])  # distances 1 and 0
    assert EMDDistillationLoss(scale=20.0)(first, second, torch.tensor([20.0, 0.0])).item() == 0


def test_float64_gradcheck() -> None:
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(6, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    second = torch.randn(6, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    emd = torch.rand(6, generator=generator, dtype=torch.float64) * 50
    assert torch.autograd.gradcheck(
        lambda a, b: emd_distillation_loss(a, b, emd, scale=100.0, offset=0.05), (first, second)
    )


def test_a_palette_paired_with_itself_has_a_finite_gradient() -> None:
    first = torch.ones(2, 4, requires_grad=True)
    value = emd_distillation_loss(
        first, first.detach().clone(), torch.zeros(2), scale=1.0, offset=0.05
    )
    value.backward()
    assert value.item() == 0 and torch.isfinite(first.grad).all()


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(P, D\) of one shape and emd \(P,\)"):
        EMDDistillationLoss()(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(2))
