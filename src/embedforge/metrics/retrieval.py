"""Retrieval metrics from exact nearest neighbours, plus k-means NMI/AMI.

Each query ranks the reference items by Euclidean distance (nearest first).
With R = the number of reference items that share the query's label (the query
itself not counted when it is in the reference):

* **precision_at_1** — 1 if the nearest reference item has the query's label;
* **r_precision** — the fraction of the R nearest items that have its label;
* **mean_average_precision_at_r** (MAP@R) — the mean over the first R ranks i of
  precision@i, counting only the ranks whose item has the query's label
  (0 elsewhere), so it rewards putting the right items *first*, not just in the
  top R. Musgrave et al., "A Metric Learning Reality Check", 2020,
  arXiv:2003.08505, section 3.2.

With ``k`` neighbours (see :func:`retrieval_metrics`):

* **mean_average_precision** (MAP@k) — the sum over the first k ranks i of
  precision@i at the ranks whose item has the query's label, divided by **R**
  (not by min(R, k)): PML's ``mean_average_precision``. A perfect ranking with
  k < R scores k / R.
* **mean_reciprocal_rank** — 1 / the rank of the first item with the query's
  label among the first k, 0 if there is none (PML's ``mean_reciprocal_rank``,
  which PML averages in float32: the two agree to about 1e-7).
* **recall_at_k** — 1 if at least one of the first k items has the query's
  label (the "Recall@K" of deep metric learning papers, e.g. Song et al.,
  arXiv:1511.06452; not the fraction of the R relevant items found). With
  k = 1 it is precision_at_1. PML has no counterpart.

Each of these is averaged over the queries whose label has at least one other
member in the reference ("lone" queries, R = 0, are left out, as in
pytorch-metric-learning); with no such query it is NaN.

* **NMI** / **AMI** — normalised / adjusted mutual information between the
  query labels and a k-means clustering of the query embeddings into as many
  clusters as there are distinct query labels (PML's ``NMI`` / ``AMI``; see
  :mod:`embedforge.metrics.clustering`). The reference plays no part.

The neighbour metrics equal PML's ``AccuracyCalculator`` with its default
``FaissKNN`` (``k="max_bin_count"`` for ``k=None``). Queries are searched a chunk
at a time and each chunk is reduced to sums before the next, so memory stays
bounded whatever the number of queries.
"""

import math
from collections.abc import Callable, Sequence
from functools import cached_property

import torch
from torch import Tensor

from embedforge.metrics.arrays import ArrayLike, as_embeddings, as_labels
from embedforge.metrics.clustering import clustering_metrics
from embedforge.metrics.knn import FAISS_CHUNK, default_chunk_size, knn_search_chunks, uses_faiss

METRIC_NAMES = ("precision_at_1", "r_precision", "mean_average_precision_at_r")
"""What :func:`retrieval_metrics` computes by default."""

R_METRIC_NAMES = METRIC_NAMES
"""Metrics that look at the first R neighbours of each query (R its number of relevant items)."""

K_METRIC_NAMES = ("mean_average_precision", "mean_reciprocal_rank", "recall_at_k")
"""Metrics that look at the first ``k`` neighbours."""

CLUSTERING_METRIC_NAMES = ("NMI", "AMI")
"""Metrics from a k-means clustering of the query embeddings."""

ALL_METRIC_NAMES = R_METRIC_NAMES + K_METRIC_NAMES + CLUSTERING_METRIC_NAMES

MAX_CHUNK_ELEMENTS = 2**24
"""Default bound on a chunk's (chunk, n_reference) block: besides the float32 distances,
the metrics hold a few (chunk, k) float64 arrays with k up to n_reference."""


def retrieval_metrics(
    query: ArrayLike,
    query_labels: ArrayLike,
    reference: ArrayLike | None = None,
    reference_labels: ArrayLike | None = None,
    *,
    include: Sequence[str] = METRIC_NAMES,
    k: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Retrieval metrics of ``query`` against ``reference``, by name (see the module docstring).

    Args:
        query: (n, d) embeddings (torch or numpy; float32 or float64 is kept).
        query_labels: (n,) integer labels.
        reference: (m, d) embeddings to search; ``None`` means leave-one-out:
            every query against all the *other* queries.
        reference_labels: (m,) labels, given exactly when ``reference`` is.
        include: which metrics, any of :data:`ALL_METRIC_NAMES`; the result keeps this order.
        k: neighbours looked at by :data:`K_METRIC_NAMES`. ``None`` is the largest
            R over the queries (PML's ``k="max_bin_count"``); a k beyond the number
            of reference items (m, or m - 1 leaving one out) means all of them (PML's
            ``k=None``). R-precision and MAP@R always look at R neighbours,
            whatever k (PML's are wrong when its k is below the largest R).
        seed: k-means seed, for NMI and AMI.
        chunk_size: queries per chunk; by default (chunk, m) <= :data:`MAX_CHUNK_ELEMENTS`.

    Returns:
        ``{name: value}`` for each name in ``include``, as Python floats.

    The last point's nearest other is the wrong class, its second the right one
    (of R = 2): precision@1 0, R-precision 1/2, MAP@R (0 + 1/2) / 2 = 1/4,
    reciprocal rank 1/2; the other four queries score 1.

    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.2], [2.52]])
    >>> labels = torch.tensor([0, 0, 1, 1, 1])
    >>> retrieval_metrics(x, labels)
    {'precision_at_1': 0.8, 'r_precision': 0.9, 'mean_average_precision_at_r': 0.85}
    >>> retrieval_metrics(x, labels, include=("mean_reciprocal_rank", "recall_at_k"), k=1)
    {'mean_reciprocal_rank': 0.8, 'recall_at_k': 0.8}
    """
    unknown = [name for name in include if name not in ALL_METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown} in include; choose from {ALL_METRIC_NAMES}")
    if k is not None and k < 1:
        raise ValueError(f"k must be a positive integer or None; got {k}")
    if (reference is None) != (reference_labels is None):
        raise ValueError("give reference and reference_labels together, or neither")
    leave_one_out = reference is None
    query_t = as_embeddings(query, "query")
    query_labels_t = as_labels(query_labels, len(query_t), "query_labels").to(query_t.device)
    if leave_one_out:
        reference_t, reference_labels_t = query_t, query_labels_t
    else:
        reference_t = as_embeddings(reference, "reference").to(query_t.device)
        reference_labels_t = as_labels(reference_labels, len(reference_t), "reference_labels")
        reference_labels_t = reference_labels_t.to(query_t.device)
        if reference_t.shape[1] != query_t.shape[1]:
            raise ValueError(
                f"query has dimension {query_t.shape[1]} but reference has {reference_t.shape[1]}"
            )

    results: dict[str, float] = {}
    knn_names = [name for name in include if name not in CLUSTERING_METRIC_NAMES]
    if knn_names:
        results |= _neighbour_metrics(
            query_t,
            query_labels_t,
            reference_t,
            reference_labels_t,
            names=knn_names,
            k=k,
            leave_one_out=leave_one_out,
            chunk_size=chunk_size,
        )
    if any(name in CLUSTERING_METRIC_NAMES for name in include):
        scores = clustering_metrics(query_t, query_labels_t, seed=seed)
        results |= {"NMI": scores.nmi, "AMI": scores.ami}
    return {name: results[name] for name in include}


def _neighbour_metrics(
    query: Tensor,
    query_labels: Tensor,
    reference: Tensor,
    reference_labels: Tensor,
    *,
    names: Sequence[str],
    k: int | None,
    leave_one_out: bool,
    chunk_size: int | None,
) -> dict[str, float]:
    """The kNN metrics in ``names``, searched and summed a chunk of queries at a time."""
    num_relevant = _count_relevant(query_labels, reference_labels, leave_one_out)  # (n,)
    num_scored = int((num_relevant > 0).sum())
    if num_scored == 0:
        return dict.fromkeys(names, math.nan)

    max_r = int(num_relevant.max())
    k = min(max_r if k is None else k, len(reference) - int(leave_one_out))
    # the neighbours needed: 1 for precision@1, R for R-precision and MAP@R (no query has more
    # than max_r), k for the k metrics
    num_neighbours = max(
        1,
        max_r if {"r_precision", "mean_average_precision_at_r"} & set(names) else 0,
        k if any(name in K_METRIC_NAMES for name in names) else 0,
    )
    if chunk_size is None:  # FAISS holds only (chunk, k) results; torch a (chunk, m) block
        if uses_faiss(query):
            chunk_size = min(FAISS_CHUNK, default_chunk_size(num_neighbours, MAX_CHUNK_ELEMENTS))
        else:
            chunk_size = default_chunk_size(len(reference), MAX_CHUNK_ELEMENTS)
    totals = torch.zeros(len(names), dtype=torch.float64, device=query.device)
    for start, _, indices in knn_search_chunks(
        query, reference, num_neighbours, exclude_self=leave_one_out, chunk_size=chunk_size
    ):
        stop = start + len(indices)
        same = reference_labels[indices] == query_labels[start:stop, None]  # (c, K)
        r = num_relevant[start:stop]  # (c,)
        scored = r > 0
        r = r.clamp_min(1).to(torch.float64)  # avoids 0/0 on lone rows, which are zeroed below
        chunk = _Chunk(same, r, k)
        per_query = torch.stack([_PER_QUERY[name](chunk) for name in names])  # (names, c)
        totals += (per_query * scored).sum(dim=1)
    return dict(zip(names, (totals / num_scored).tolist(), strict=True))


class _Chunk:
    """One chunk of queries, as the per-query metrics see it.

    ``same`` (c, K) bool: whether each neighbour (nearest first) has the query's
    label; ``r`` (c,) float64 >= 1: R (lone rows, clamped to 1, are zeroed later);
    ``k``. K >= R for every query when an R metric is asked for, and K >= k when
    a k metric is.
    """

    def __init__(self, same: Tensor, r: Tensor, k: int) -> None:
        self.same, self.r, self.k = same, r, k

    @cached_property
    def ranks(self) -> Tensor:
        return torch.arange(1, self.same.shape[1] + 1, device=self.same.device)  # (K,)

    @cached_property
    def hits_within_r(self) -> Tensor:
        """(c, K) float64: 1 where the item has the query's label and its rank is <= R."""
        return (self.same & (self.ranks[None, :] <= self.r[:, None])).to(torch.float64)

    @cached_property
    def top_k(self) -> Tensor:
        return self.same[:, : self.k]  # (c, k)

    def average_precision(self, hits: Tensor) -> Tensor:
        """Sum of precision@i over the ranks i with a hit, divided by R. hits (c, K') float64."""
        ranks = self.ranks[: hits.shape[1]]
        return (hits.cumsum(dim=1) / ranks * hits).sum(dim=1) / self.r


def _reciprocal_rank(chunk: _Chunk) -> Tensor:
    first = chunk.top_k.to(torch.int8).argmax(dim=1)  # (c,) rank - 1 of the first hit (0 if none)
    return torch.where(chunk.top_k.any(dim=1), 1.0 / (first + 1).to(torch.float64), 0.0)


_PER_QUERY: dict[str, Callable[[_Chunk], Tensor]] = {  # name -> (c,) float64
    "precision_at_1": lambda chunk: chunk.same[:, 0].to(torch.float64),
    "r_precision": lambda chunk: chunk.hits_within_r.sum(dim=1) / chunk.r,
    "mean_average_precision_at_r": lambda chunk: chunk.average_precision(chunk.hits_within_r),
    "mean_average_precision": lambda chunk: chunk.average_precision(chunk.top_k.to(torch.float64)),
    "mean_reciprocal_rank": _reciprocal_rank,
    "recall_at_k": lambda chunk: chunk.top_k.any(dim=1).to(torch.float64),
}


def _count_relevant(query_labels: Tensor, reference_labels: Tensor, leave_one_out: bool) -> Tensor:
    """R per query: reference items with its label, itself excluded when leaving one out. (n,)"""
    classes, counts = torch.unique(reference_labels, return_counts=True)
    if len(classes) == 0:  # empty reference: every query is lone
        return torch.zeros_like(query_labels)
    position = torch.searchsorted(classes, query_labels).clamp_max(len(classes) - 1)
    found = classes[position] == query_labels
    return torch.where(found, counts[position], 0) - int(leave_one_out)
