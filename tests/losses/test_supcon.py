import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from embedforge.losses.distances import pairwise_cosine_similarity
from embedforge.losses.supcon import SupConLoss

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-7, "atol": 1e-9}}


def value_and_grad(loss_fn, x: torch.Tensor, labels: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad


def batch(seed: int, size: int, dim: int, classes: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, dim, generator=g, dtype=dtype)
    return x, torch.randint(0, classes, (size,), generator=g)


def reference(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Khosla et al.'s L_out as a loop over anchors; anchors without positives are skipped."""
    sim = pairwise_cosine_similarity(x) / temperature
    losses = []
    for a in range(len(labels)):
        others = [j for j in range(len(labels)) if j != a]
        positives = [p for p in others if labels[p] == labels[a]]
        if positives:
            log_norm = torch.logsumexp(sim[a, others], dim=0)
            losses.append(-torch.stack([sim[a, p] - log_norm for p in positives]).mean())
    return torch.stack(losses).mean()


SHAPES = [(2, 2, 1), (3, 4, 2), (8, 3, 3), (33, 16, 5), (128, 64, 10), (100, 8, 60)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size,dim,classes", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_matches_pml(seed, size, dim, classes, dtype, temperature) -> None:
    x, labels = batch(seed, size, dim, classes, dtype)
    v1, g1 = value_and_grad(SupConLoss(temperature), x, labels)
    v2, g2 = value_and_grad(pml_losses.SupConLoss(temperature), x, labels)
    torch.testing.assert_close(v1, v2, **TOL[dtype])
    torch.testing.assert_close(g1, g2, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_pml_large_batch(dtype) -> None:
    x, labels = batch(9, 512, 256, 40, dtype)
    v1, g1 = value_and_grad(SupConLoss(), x, labels)
    v2, g2 = value_and_grad(pml_losses.SupConLoss(), x, labels)
    torch.testing.assert_close(v1, v2, **TOL[dtype])
    torch.testing.assert_close(g1, g2, **TOL[dtype])


def test_defaults_match_pml() -> None:
    assert SupConLoss().temperature == pml_losses.SupConLoss().temperature


def test_matches_loop_reference_with_anchors_without_positives() -> None:
    x, labels = batch(4, 10, 5, 1)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 4, 4])  # anchors 5 and 6 have no positive
    torch.testing.assert_close(SupConLoss(0.3)(x, labels), reference(x, labels, 0.3))
    v1, g1 = value_and_grad(SupConLoss(0.3), x, labels)
    v2, g2 = value_and_grad(pml_losses.SupConLoss(0.3), x, labels)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


def test_analytic_case() -> None:
    # rows 0, 1 coincide and are orthogonal to row 2: anchors 0 and 1 each score
    # -(1/t) + log(e^(1/t) + e^0); anchor 2 has no positive and is left out
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    t = 0.5
    expected = torch.log1p(torch.exp(torch.tensor(-1.0 / t, dtype=torch.float64)))
    torch.testing.assert_close(SupConLoss(t)(x, torch.tensor([0, 0, 1])), expected)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5], [7]], ids=["singles", "one", "b1"])
def test_no_positive_or_no_negative_pairs_give_zero(labels) -> None:
    x = torch.randn(len(labels), 3, requires_grad=True)
    value = SupConLoss()(x, torch.tensor(labels))
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_duplicate_embeddings_have_finite_gradients() -> None:
    x = torch.tensor([[1.0, 2.0]] * 3 + [[-1.0, 0.5]] * 2, requires_grad=True)
    value = SupConLoss(0.05)(x, torch.tensor([0, 0, 1, 1, 0]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_gradcheck() -> None:
    x, labels = batch(6, 7, 3, 3)
    assert torch.autograd.gradcheck(lambda e: SupConLoss(0.5)(e, labels), (x.requires_grad_(),))


def test_rejects_bad_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(-1.0)


def test_runs_on_device(device) -> None:
    x, labels = batch(0, 16, 8, 4, torch.float32)
    value = SupConLoss()(x.to(device), labels.to(device))
    torch.testing.assert_close(value.cpu(), pml_losses.SupConLoss()(x, labels))
