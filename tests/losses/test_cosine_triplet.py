import pytest
import torch

from embedforge.losses.cosine_triplet import CosineTripletLoss


def reference(anchor, positive, negative) -> torch.Tensor:
    """The loss row by row, with cosines written out."""
    pos, neg = [], []
    for a, p, n in zip(anchor, positive, negative, strict=True):
        pos.append(1.0 - (a @ p) / (a.norm() * p.norm()))
        neg.append((a @ n) / (a.norm() * n.norm()))
    return torch.stack(pos).mean() + torch.stack(neg).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size,dim", [(1, 2), (2, 2), (9, 5), (64, 32), (512, 256)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop(seed, size, dim, dtype) -> None:
    g = torch.Generator().manual_seed(seed)
    a, p, n = (torch.randn(size, dim, generator=g, dtype=dtype) for _ in range(3))
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    torch.testing.assert_close(CosineTripletLoss()(a, p, n), reference(a, p, n), **tol)


def test_analytic_cases() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    loss = CosineTripletLoss()
    assert loss(a, 3 * a, a.flip(1)).item() == 0.0  # aligned positives, orthogonal negatives
    assert loss(a, -a, a).item() == 3.0  # the worst case
    assert loss(a, a, -a).item() == -1.0  # the best case


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    inputs = tuple(
        torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)
    )
    assert torch.autograd.gradcheck(CosineTripletLoss(), inputs)


def test_duplicate_and_zero_rows_have_finite_gradients() -> None:
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    value = CosineTripletLoss()(a, a, a)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("shapes", [[(4, 3), (4, 3), (5, 3)], [(4, 3), (4, 2), (4, 3)], [(4,)] * 3])
def test_rejects_mismatched_shapes(shapes) -> None:
    with pytest.raises(ValueError, match="anchor, positive and negative"):
        CosineTripletLoss()(*(torch.zeros(s) for s in shapes))


def test_runs_on_device(device) -> None:
    a, p, n = (torch.randn(8, 4, device=device) for _ in range(3))
    assert CosineTripletLoss()(a, p, n).device.type == device.type
