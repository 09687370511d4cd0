import math

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from embedforge.losses.arcface import ArcFaceLoss, arcface_logits

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-7, "atol": 1e-9}}


def pair(classes: int, dim: int, dtype: torch.dtype, **options):
    """Our loss and PML's, sharing PML's weight matrix."""
    theirs = pml_losses.ArcFaceLoss(classes, dim, **options).to(dtype)
    ours = ArcFaceLoss(classes, dim, **options).to(dtype)
    with torch.no_grad():
        ours.W.copy_(theirs.W)
    return ours, theirs


def value_and_grads(loss_fn, x: torch.Tensor, labels: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    loss_fn.zero_grad()
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad, loss_fn.W.grad


def assert_same(ours, theirs, x, labels, dtype) -> None:
    """Same value and gradients w.r.t. the embeddings and the class weights."""
    mine, reference = value_and_grads(ours, x, labels), value_and_grads(theirs, x, labels)
    for a, b in zip(mine, reference, strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])


def batch(seed: int, size: int, dim: int, classes: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, dim, generator=g, dtype=dtype)
    return x, torch.randint(0, classes, (size,), generator=g)


SHAPES = [(2, 2, 2), (5, 3, 4), (16, 8, 3), (64, 32, 10), (100, 128, 100)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size,dim,classes", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", [{}, {"margin": 10.0, "scale": 16.0}], ids=["default", "m10"])
def test_matches_pml(seed, size, dim, classes, dtype, options) -> None:
    torch.manual_seed(seed)
    ours, theirs = pair(classes, dim, dtype, **options)
    x, labels = batch(seed, size, dim, classes, dtype)
    assert_same(ours, theirs, x, labels, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_pml_large_batch(dtype) -> None:
    torch.manual_seed(0)
    ours, theirs = pair(50, 256, dtype)
    x, labels = batch(0, 512, 256, 50, dtype)
    assert_same(ours, theirs, x, labels, dtype)


def test_matches_pml_past_pi_minus_margin() -> None:
    # embeddings opposite their class centre take the "c - m sin m" branch
    torch.manual_seed(0)
    ours, theirs = pair(3, 4, torch.float64)
    labels = torch.tensor([0, 1, 2, 0])
    x = -ours.W.detach().T[labels] + 0.05 * torch.randn(4, 4, dtype=torch.float64)
    assert_same(ours, theirs, x, labels, torch.float64)


def test_defaults_and_init_match_pml() -> None:
    torch.manual_seed(0)
    loss, theirs = ArcFaceLoss(200, 300), pml_losses.ArcFaceLoss(200, 300)
    assert loss.margin == 28.6 and loss.scale == 64.0
    assert math.isclose(math.radians(loss.margin), theirs.margin) and loss.scale == theirs.scale
    assert loss.W.shape == theirs.W.shape == (300, 200)
    assert abs(loss.W.mean().item()) < 0.01 and abs(loss.W.std().item() - 1.0) < 0.01  # N(0, 1)


def test_weights_are_a_trained_parameter() -> None:
    loss = ArcFaceLoss(3, 4)
    assert [name for name, _ in loss.named_parameters()] == ["W"]
    before = loss.W.detach().clone()
    optimizer = torch.optim.SGD(loss.parameters(), lr=0.1)
    loss(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    optimizer.step()
    assert not torch.equal(before, loss.W.detach())


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["same", "opposite"])
def test_gradient_is_finite_at_embedding_on_its_class_direction(sign) -> None:
    torch.manual_seed(0)
    loss = ArcFaceLoss(4, 8).double()
    labels = torch.tensor([0, 1, 2, 3])
    x = (sign * 2.0 * loss.W.detach().T[labels]).requires_grad_(True)  # cosine +-1 (rounded)
    loss(x, labels).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(loss.W.grad).all()


@pytest.mark.parametrize("c", [1.0, -1.0, 0.5])
def test_margin_logit_gradient_is_finite_at_exact_cosine(c) -> None:
    cosine = torch.tensor([[c, 0.1]], dtype=torch.float64, requires_grad=True)
    logits = arcface_logits(cosine, torch.tensor([0]), margin=0.5, scale=1.0)
    logits.sum().backward()
    assert torch.isfinite(cosine.grad).all()
    theta = math.acos(c)
    expected = math.cos(theta + 0.5) if theta <= math.pi - 0.5 else c - 0.5 * math.sin(0.5)
    assert math.isclose(logits[0, 0].item(), expected, abs_tol=1e-12)
    assert logits[0, 1].item() == 0.1


def test_gradcheck() -> None:
    torch.manual_seed(1)
    loss = ArcFaceLoss(3, 4, scale=8.0).double()
    x, labels = batch(1, 5, 4, 3)
    weight = loss.W.detach().clone().requires_grad_(True)

    def fn(e: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(loss, {"W": w}, (e, labels))

    assert torch.autograd.gradcheck(fn, (x.requires_grad_(True), weight))


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        ArcFaceLoss(0, 4)


def test_runs_on_device(device) -> None:
    torch.manual_seed(0)
    ours, theirs = pair(5, 8, torch.float32)
    x, labels = batch(0, 16, 8, 5, torch.float32)
    value = ours.to(device)(x.to(device), labels.to(device))
    torch.testing.assert_close(value.cpu(), theirs(x, labels), **TOL[torch.float32])
