"""Tests for embedforge.losses.multi_similarity, with pytorch-metric-learning as the oracle."""

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from embedforge.losses.multi_similarity import MultiSimilarityLoss, multi_similarity_loss

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-9, "atol": 1e-11}}
SHAPES = [(2, 2, 1), (2, 3, 2), (8, 3, 3), (33, 16, 5), (128, 64, 10)]


def _value_and_grad(loss_fn, x: torch.Tensor, labels: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("size", "dim", "classes"), SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("alpha", "beta", "base"), [(2.0, 50.0, 0.5), (1.0, 10.0, 0.2)])
def test_matches_pml(seed, size, dim, classes, dtype, alpha, beta, base) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(size, dim, generator=generator, dtype=dtype)
    labels = torch.randint(0, classes, (size,), generator=generator)
    ours = _value_and_grad(MultiSimilarityLoss(alpha, beta, base), x, labels)
    theirs = _value_and_grad(pml_losses.MultiSimilarityLoss(alpha, beta, base), x, labels)
    torch.testing.assert_close(ours[0], theirs[0], **TOL[dtype])
    torch.testing.assert_close(ours[1], theirs[1], **TOL[dtype])


@pytest.mark.parametrize(
    "labels",
    [torch.arange(6), torch.zeros(6, dtype=torch.int64)],
    ids=["no_positives", "one_class"],
)
def test_edge_cases_match_pml(labels: torch.Tensor) -> None:
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = _value_and_grad(MultiSimilarityLoss(), x, labels)
    theirs = _value_and_grad(pml_losses.MultiSimilarityLoss(), x, labels)
    torch.testing.assert_close(ours, theirs)


def test_analytic_case_and_identical_embeddings() -> None:
    same = torch.ones(4, 3)  # every similarity 1: positives pull with log(1 + k e^{-alpha/2})
    labels = torch.tensor([0, 0, 1, 1])
    one_positive = math.log(1 + math.exp(-2.0 * 0.5)) / 2.0
    two_negatives = math.log(1 + 2 * math.exp(50.0 * 0.5)) / 50.0
    expected = one_positive + two_negatives
    assert multi_similarity_loss(same, labels).item() == pytest.approx(expected, rel=1e-6)


def test_gradcheck_float64() -> None:
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    assert torch.autograd.gradcheck(
        lambda e: multi_similarity_loss(e, labels, beta=5.0), (x.requires_grad_(),)
    )
