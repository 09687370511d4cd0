import pytest
import torch

from embedforge.metrics.knn import default_chunk_size, knn_search, knn_search_chunks


def _brute_force(query, reference, k, exclude_self=False):
    distances = torch.cdist(query.double(), reference.double())  # (n, m)
    if exclude_self:
        distances[torch.arange(len(query)), torch.arange(len(query))] = torch.inf
    return torch.topk(distances, k, dim=1, largest=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "n,m,d,k", [(1, 1, 2, 1), (5, 7, 3, 4), (60, 45, 16, 10), (30, 300, 4, 300)]
)
def test_matches_brute_force(n: int, m: int, d: int, k: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(n + m + d + k)
    query, reference = (
        torch.randn(n, d, generator=g, dtype=dtype),
        torch.randn(m, d, generator=g, dtype=dtype),
    )
    distances, indices = knn_search(query, reference, k)
    expected_distances, expected_indices = _brute_force(query, reference, k)
    assert distances.shape == indices.shape == (n, k)
    assert distances.dtype == dtype and indices.dtype == torch.int64
    assert torch.equal(indices, expected_indices)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(distances.double(), expected_distances, atol=tol, rtol=tol)


@pytest.mark.parametrize("n,extra,k", [(2, 0, 1), (40, 0, 39), (50, 20, 7)])
def test_exclude_self_matches_brute_force(n: int, extra: int, k: int) -> None:
    g = torch.Generator().manual_seed(n + extra)
    reference = torch.randn(n + extra, 5, generator=g)
    query = reference[:n]
    distances, indices = knn_search(query, reference, k, exclude_self=True)
    expected_distances, expected_indices = _brute_force(query, reference, k, exclude_self=True)
    assert torch.equal(indices, expected_indices)
    assert not (indices == torch.arange(n)[:, None]).any()
    torch.testing.assert_close(distances.double(), expected_distances, atol=1e-4, rtol=1e-4)


def test_exclude_self_never_returns_self_among_duplicates() -> None:
    x = torch.zeros(6, 3)  # every distance ties at 0
    _, indices = knn_search(x, x, 5, exclude_self=True)
    assert not (indices == torch.arange(6)[:, None]).any()
    assert all(
        sorted(row) == [j for j in range(6) if j != i] for i, row in enumerate(indices.tolist())
    )


def test_exclude_self_matches_pml_return_results() -> None:
    from pytorch_metric_learning.utils.inference import FaissKNN

    x = torch.randn(80, 6, generator=torch.Generator().manual_seed(3))
    pml_distances, pml_indices = FaissKNN()(x, 9, x, ref_includes_query=True)
    distances, indices = knn_search(x, x, 9, exclude_self=True)
    assert torch.equal(indices, pml_indices.cpu())
    torch.testing.assert_close(
        distances**2, pml_distances.cpu(), atol=1e-4, rtol=1e-4
    )  # FAISS: squared


@pytest.mark.parametrize("exclude_self", [False, True])
def test_chunk_size_does_not_change_results(exclude_self: bool) -> None:
    """Bounded memory: a chunk of one query and one chunk of all give the same neighbours."""
    x = torch.randn(97, 8, generator=torch.Generator().manual_seed(1))
    tiny = knn_search(x, x, 12, exclude_self=exclude_self, chunk_size=1)
    odd = knn_search(x, x, 12, exclude_self=exclude_self, chunk_size=10)
    huge = knn_search(x, x, 12, exclude_self=exclude_self, chunk_size=10**9)
    default = knn_search(x, x, 12, exclude_self=exclude_self)
    for other in (odd, huge, default):
        assert torch.equal(tiny[1], other[1])
        # BLAS may round a (1, m) and a (97, m) product differently in the last bit; the
        # squared distance carries that rounding (a self-distance may be 1e-6, not 0)
        torch.testing.assert_close(tiny[0] ** 2, other[0] ** 2, atol=1e-5, rtol=1e-6)


def test_chunks_bound_the_block() -> None:
    x = torch.randn(50, 2)
    starts = [
        start for start, _, _ in knn_search_chunks(x, x, 3, chunk_size=default_chunk_size(50, 200))
    ]
    assert starts == list(range(0, 50, 4))
    assert default_chunk_size(10**6) * 10**6 <= 2**26
    assert default_chunk_size(10**9) == 1


def test_k_zero_and_empty_query() -> None:
    x = torch.randn(4, 3)
    distances, indices = knn_search(x, x, 0)
    assert distances.shape == indices.shape == (4, 0)
    distances, indices = knn_search(x[:0], x, 2)
    assert distances.shape == indices.shape == (0, 2)


def test_bad_arguments() -> None:
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="k must be between 0 and 3"):
        knn_search(x, x, 4, exclude_self=True)
    with pytest.raises(ValueError, match="same d"):
        knn_search(x, torch.randn(4, 2), 1)
    with pytest.raises(ValueError, match="only 2 reference rows"):
        knn_search(x, x[:2], 1, exclude_self=True)
    with pytest.raises(ValueError, match="chunk_size"):
        knn_search(x, x, 1, chunk_size=0)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_faiss_and_torch_backends_find_the_same_neighbours(exclude_self: bool) -> None:
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(11)
    points = torch.randn(300, 16, generator=g)
    results = {
        backend: knn_search(points[:120], points, 25, exclude_self=exclude_self, backend=backend)
        for backend in ("faiss", "torch")
    }
    assert torch.equal(results["faiss"][1], results["torch"][1])
    # both use ||q||² + ||r||² - 2 q·r: squared distances agree to float32 rounding (a point's
    # distance to itself may read ~2e-3 after the square root, see the knn module notes)
    assert torch.allclose(results["faiss"][0] ** 2, results["torch"][0] ** 2, atol=1e-4)
    if exclude_self:
        assert not (results["faiss"][1] == torch.arange(120).unsqueeze(1)).any()
