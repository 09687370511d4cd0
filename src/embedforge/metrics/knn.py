"""Exact k-nearest-neighbour search, chunked over queries: FAISS when installed, torch otherwise.

FAISS's flat L2 search (what PML's ``AccuracyCalculator`` uses) selects the top k
far faster than ``torch.topk`` for the large k of R-precision, so float32 data on
the CPU goes through it when ``faiss`` can be imported; float64 data, GPU
tensors, or a machine without FAISS use the torch path. Both are exact and give
the same neighbours (up to the order of exact ties).

Why not one big distance matrix: for n queries against m references it is an
(n, m) block, which for 100k x 100k is 40 GB in float32. Here queries are taken a
chunk at a time so that each chunk's (chunk, m) block stays under
:data:`MAX_BLOCK_ELEMENTS`; only the (chunk, k) neighbours survive a chunk.

The distance is the Euclidean (L2) distance on the raw embeddings, as
pytorch-metric-learning's default ``FaissKNN`` (``faiss.IndexFlatL2``) uses, so the
neighbours are the same. FAISS returns *squared* distances; these functions
return the distances themselves (the square root), which keeps the order.
Like FAISS, they come from ||q||² + ||r||² - 2 q·r, so a squared distance
carries a rounding error of about 1e-7 · ||q||² in float32 (a point's distance
to itself may read 1e-3 rather than 0); the neighbours are what is exact.

Leaving a query out of its own neighbours (``exclude_self=True``, the reference
is the query set) follows PML's ``return_results(..., ref_includes_query=True)``:
PML searches k + 1 neighbours, removes the query's own index from each row, and
drops the last column of a row that did not contain it. Here the query's own
distance is set to +inf before the top-k, which gives the same k neighbours (up
to the order of exact ties) and never returns the query itself, even among
duplicates.

Ties (equal distances) are ordered as ``torch.topk`` leaves them, which is not
specified; FAISS may order them differently.
"""

from collections.abc import Iterator
from importlib import import_module
from types import ModuleType
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from embedforge.losses.distances import pairwise_squared_euclidean

FAISS_CHUNK = 4096
"""Queries per FAISS search call: it never builds the full block, only (chunk, k) results."""

Backend = Literal["auto", "faiss", "torch"]

MAX_BLOCK_ELEMENTS = 2**26
"""Largest (chunk, n_reference) distance block computed at once by default (256 MB in float32)."""


def default_chunk_size(num_reference: int, max_block: int = MAX_BLOCK_ELEMENTS) -> int:
    """Queries per chunk so that a (chunk, num_reference) block has at most ``max_block`` elements.

    >>> default_chunk_size(1000, max_block=10_000)
    10
    """
    return max(1, max_block // max(1, num_reference))


def knn_search_chunks(
    query: Tensor,
    reference: Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int | None = None,
    backend: Backend = "auto",
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """Yield ``(start, distances, indices)`` for consecutive chunks of queries.

    Use this to reduce neighbours chunk by chunk (as the retrieval metrics do)
    without ever holding all (n, k) of them.

    Args:
        query: (n, d) embeddings.
        reference: (m, d) embeddings, on any device (moved to the query's).
        k: neighbours per query, 0 <= k <= m (m - 1 with ``exclude_self``).
        exclude_self: query row i is reference row i (the reference is the query
            set, possibly followed by more rows); leave it out of row i's neighbours.
        chunk_size: queries per chunk; default keeps each (chunk, m) distance
            block under :data:`MAX_BLOCK_ELEMENTS` elements (torch), or
            :data:`FAISS_CHUNK` (FAISS).
        backend: "auto" (FAISS for float32 CPU data when it can be imported),
            "faiss" or "torch".

    Yields:
        ``start`` (the first query row of the chunk), ``distances`` (c, k)
        Euclidean, ascending, and ``indices`` (c, k) int64 rows of ``reference``.

    >>> q = torch.tensor([[0.0], [1.0], [3.0]])
    >>> [(s, i.tolist()) for s, _, i in knn_search_chunks(q, q, 1, exclude_self=True, chunk_size=2)]
    [(0, [[1], [0]]), (2, [[1]])]
    """
    n, m = len(query), len(reference)
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise ValueError(
            f"query and reference must be (n, d) and (m, d) with the same d; "
            f"got {tuple(query.shape)} and {tuple(reference.shape)}"
        )
    if exclude_self and n > m:
        raise ValueError(
            f"exclude_self needs query row i to be reference row i, but there are {n} queries "
            f"and only {m} reference rows"
        )
    max_k = m - int(exclude_self)
    if not 0 <= k <= max_k:
        raise ValueError(f"k must be between 0 and {max_k} for {m} reference rows; got {k}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1; got {chunk_size}")

    query = query.detach()
    reference = reference.detach().to(device=query.device, dtype=query.dtype)
    faiss = _faiss_for(query, backend)
    if faiss is not None:
        yield from _faiss_chunks(
            faiss, query, reference, k, exclude_self, chunk_size or FAISS_CHUNK
        )
        return
    chunk_size = default_chunk_size(m) if chunk_size is None else chunk_size
    for start in range(0, n, chunk_size):
        block = pairwise_squared_euclidean(query[start : start + chunk_size], reference)  # (c, m)
        if exclude_self:
            rows = torch.arange(len(block), device=block.device)
            block[rows, rows + start] = torch.inf
        squared, indices = torch.topk(block, k, dim=1, largest=False)  # (c, k)
        yield start, squared.sqrt(), indices


def uses_faiss(query: Tensor, backend: Backend = "auto") -> bool:
    """Whether a search of ``query`` with ``backend`` goes through FAISS."""
    return _faiss_for(query, backend) is not None


def _faiss_for(query: Tensor, backend: Backend) -> ModuleType | None:
    """The faiss module when this search should use it, else None (the torch path)."""
    if backend == "torch":
        return None
    suitable = query.dtype == torch.float32 and query.device.type == "cpu"
    try:
        faiss = import_module("faiss") if suitable or backend == "faiss" else None
    except ImportError:
        faiss = None
    if backend == "faiss" and (faiss is None or not suitable):
        raise ValueError("the FAISS backend needs faiss installed and float32 CPU tensors")
    return faiss


def _faiss_chunks(
    faiss: ModuleType, query: Tensor, reference: Tensor, k: int, exclude_self: bool, chunk: int
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """FAISS flat L2 search, chunk by chunk; self-exclusion as PML's ``return_results``."""
    index = faiss.IndexFlatL2(reference.shape[1])
    index.add(np.ascontiguousarray(reference.numpy()))
    wanted = k + int(exclude_self)
    for start in range(0, len(query), chunk):
        rows = len(query[start : start + chunk])
        if k == 0:
            yield start, torch.empty((rows, 0)), torch.empty((rows, 0), dtype=torch.int64)
            continue
        block = np.ascontiguousarray(query[start : start + chunk].numpy())
        squared, indices = (torch.from_numpy(a) for a in index.search(block, wanted))  # (c, w)
        if exclude_self:
            own = indices == torch.arange(start, start + rows).unsqueeze(1)  # (c, k + 1)
            own[~own.any(dim=1), -1] = True  # a row without itself drops its last neighbour
            squared, indices = squared[~own].reshape(rows, k), indices[~own].reshape(rows, k)
        yield start, squared.clamp_min(0).sqrt(), indices


def knn_search(
    query: Tensor,
    reference: Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int | None = None,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor]:
    """Exact k nearest references of each query: ``(distances, indices)``, both (n, k).

    Distances are Euclidean and ascending along each row; indices are int64 rows
    of ``reference``. Arguments as in :func:`knn_search_chunks`.

    >>> ref = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    >>> distances, indices = knn_search(torch.tensor([[0.0, 0.0]]), ref, 2)
    >>> distances.tolist(), indices.tolist()
    ([[0.0, 1.0]], [[0, 2]])
    >>> knn_search(ref, ref, 1, exclude_self=True)[1].tolist()
    [[2], [2], [0]]
    """
    chunks = list(
        knn_search_chunks(
            query, reference, k, exclude_self=exclude_self, chunk_size=chunk_size, backend=backend
        )
    )
    if not chunks:  # no queries
        empty = query.new_empty((0, k))
        return empty, torch.empty((0, k), dtype=torch.int64, device=query.device)
    return torch.cat([d for _, d, _ in chunks]), torch.cat([i for _, _, i in chunks])
