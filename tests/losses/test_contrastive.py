import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses

from embedforge.losses.contrastive import ContrastiveLoss

PML_DISTANCES = {
    "euclidean": pml_distances.LpDistance,
    "squared_euclidean": lambda: pml_distances.LpDistance(power=2),
    "cosine": pml_distances.CosineSimilarity,
}
TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-7, "atol": 1e-9}}


def value_and_grad(loss_fn, x: torch.Tensor, labels: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad


def batch(seed: int, size: int, dim: int, classes: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, dim, generator=g, dtype=dtype)
    return x, torch.randint(0, classes, (size,), generator=g)


SHAPES = [(2, 2, 1), (2, 3, 2), (8, 3, 3), (33, 16, 5), (128, 64, 10)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size,dim,classes", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
@pytest.mark.parametrize("margins", [(0.0, 1.0), (0.25, 0.75)])
def test_matches_pml(seed, size, dim, classes, dtype, distance, margins) -> None:
    x, labels = batch(seed, size, dim, classes, dtype)
    ours = ContrastiveLoss(*margins, distance=distance)
    theirs = pml_losses.ContrastiveLoss(*margins, distance=PML_DISTANCES[distance]())
    v1, g1 = value_and_grad(ours, x, labels)
    v2, g2 = value_and_grad(theirs, x, labels)
    torch.testing.assert_close(v1, v2, **TOL[dtype])
    torch.testing.assert_close(g1, g2, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_pml_large_batch(dtype) -> None:
    x, labels = batch(7, 512, 256, 50, dtype)
    v1, g1 = value_and_grad(ContrastiveLoss(), x, labels)
    v2, g2 = value_and_grad(pml_losses.ContrastiveLoss(), x, labels)
    torch.testing.assert_close(v1, v2, **TOL[dtype])
    torch.testing.assert_close(g1, g2, **TOL[dtype])


def test_defaults_match_pml() -> None:
    loss, theirs = ContrastiveLoss(), pml_losses.ContrastiveLoss()
    assert (loss.pos_margin, loss.neg_margin) == (theirs.pos_margin, theirs.neg_margin)
    assert loss.distance.kind == "euclidean" and loss.distance.normalize


def test_analytic_case() -> None:
    # normalised: rows 0 and 1 are orthogonal (d = sqrt 2), rows 0 and 2 coincide (d = 0)
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    value = ContrastiveLoss()(x, torch.tensor([0, 0, 1]))
    # positives: d = sqrt2 twice; negatives: relu(1 - d) = 1 (twice, 0-2), 1 - sqrt2 < 0 (1-2)
    torch.testing.assert_close(value, torch.tensor(2.0**0.5 + 1.0))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4], [3, 3, 3, 3, 3]], ids=["singletons", "one"])
def test_one_sided_batches_match_pml(labels) -> None:
    x, _ = batch(3, 5, 4, 1, torch.float64)
    labels = torch.tensor(labels)
    v1, g1 = value_and_grad(ContrastiveLoss(), x, labels)
    v2, g2 = value_and_grad(pml_losses.ContrastiveLoss(), x, labels)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


def test_no_pairs_is_zero_on_graph() -> None:
    x = torch.randn(1, 3, requires_grad=True)
    value = ContrastiveLoss()(x, torch.tensor([0]))
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_duplicate_embeddings_have_finite_gradients(distance) -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    value = ContrastiveLoss(distance=distance)(x, torch.tensor([0, 0, 1, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_gradcheck(distance) -> None:
    x, labels = batch(5, 6, 3, 2, torch.float64)
    loss = ContrastiveLoss(0.1, 0.9, distance=distance)
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (x.requires_grad_(True),))


def test_runs_on_device(device) -> None:
    x, labels = batch(0, 16, 8, 4, torch.float32)
    value = ContrastiveLoss()(x.to(device), labels.to(device))
    expected = pml_losses.ContrastiveLoss()(x, labels)
    torch.testing.assert_close(value.cpu(), expected, rtol=1e-4, atol=1e-5)
