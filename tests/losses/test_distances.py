import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance

from embedforge.losses.distances import (
    Distance,
    pairwise_euclidean,
    pairwise_squared_euclidean,
    safe_sqrt,
)


@pytest.mark.parametrize("n,m,d", [(1, 1, 2), (5, 7, 3), (40, 30, 64)])
def test_euclidean_matches_cdist(n: int, m: int, d: int) -> None:
    g = torch.Generator().manual_seed(n * m * d)
    x, y = torch.randn(n, d, generator=g), torch.randn(m, d, generator=g)
    expected = torch.cdist(x.double(), y.double())
    assert torch.allclose(pairwise_euclidean(x, y).double(), expected, atol=1e-5)
    assert torch.allclose(pairwise_squared_euclidean(x, y).double(), expected**2, atol=1e-4)


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (Distance("euclidean"), LpDistance()),
        (Distance("euclidean", normalize=False), LpDistance(normalize_embeddings=False)),
        (Distance("squared_euclidean"), LpDistance(power=2)),
        (Distance("cosine"), CosineSimilarity()),
    ],
)
def test_distance_matches_pml(ours: Distance, theirs) -> None:
    x = torch.randn(33, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ours.matrix(x), theirs(x), atol=1e-5)
    assert ours.is_similarity == theirs.is_inverted


def test_identical_embeddings_have_finite_zero_gradient() -> None:
    x = torch.ones(4, 3, requires_grad=True)
    pairwise_euclidean(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_safe_sqrt_gradcheck_away_from_zero_and_zero_at_zero() -> None:
    x = torch.tensor([0.0, 0.25, 4.0], dtype=torch.float64, requires_grad=True)
    safe_sqrt(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.25]
    y = torch.rand(6, dtype=torch.float64).add(0.1).requires_grad_()
    assert torch.autograd.gradcheck(safe_sqrt, (y,))


def test_unknown_distance_is_rejected() -> None:
    with pytest.raises(ValueError, match="manhattan"):
        Distance("manhattan")  # type: ignore[arg-type]
