"""Retrieval metrics: precision@1, R-precision and MAP@R, from exact nearest neighbours.

Each query ranks the reference items by Euclidean distance (nearest first).
With R = the number of reference items that share the query's label (the query
itself not counted when it is in the reference):

* **precision@1** — 1 if the nearest reference item has the query's label;
* **R-precision** — the fraction of the R nearest items that have its label;
* **MAP@R** — mean average precision at R: the mean over the first R ranks i of
  precision@i, counting only the ranks whose item has the query's label
  (0 elsewhere), so it rewards putting the right items *first*, not just in the
  top R. Musgrave et al., "A Metric Learning Reality Check", 2020,
  arXiv:2003.08505, section 3.2.

Each metric is averaged over the queries whose label has at least one other
member in the reference ("lone" queries, R = 0, are left out, as in
pytorch-metric-learning); with no such query every metric is NaN.

The numbers equal PML's ``AccuracyCalculator(k="max_bin_count")`` (and
``k=None``) with its default ``FaissKNN``. Only the largest R neighbours are
searched, a chunk of queries at a time, and each chunk is reduced to sums before
the next, so memory stays bounded whatever the number of queries.
"""

import math

import numpy as np
import torch
from torch import Tensor

from embedforge.evaluate.knn import default_chunk_size, knn_search_chunks

METRIC_NAMES = ("precision_at_1", "r_precision", "mean_average_precision_at_r")

MAX_CHUNK_ELEMENTS = 2**24
"""Default bound on a chunk's (chunk, n_reference) block: besides the float32 distances,
the metrics hold a few (chunk, k) float64 arrays with k up to n_reference."""

ArrayLike = Tensor | np.ndarray


def retrieval_metrics(
    query: ArrayLike,
    query_labels: ArrayLike,
    reference: ArrayLike | None = None,
    reference_labels: ArrayLike | None = None,
    *,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """precision@1, R-precision and MAP@R of ``query`` against ``reference``.

    Args:
        query: (n, d) embeddings (torch or numpy; float32 or float64 is kept).
        query_labels: (n,) integer labels.
        reference: (m, d) embeddings to search; ``None`` means leave-one-out:
            every query against all the *other* queries.
        reference_labels: (m,) labels, given exactly when ``reference`` is.
        chunk_size: queries per chunk; by default (chunk, m) <= :data:`MAX_CHUNK_ELEMENTS`.

    Returns:
        ``{"precision_at_1": ..., "r_precision": ..., "mean_average_precision_at_r": ...}``.

    The last point's nearest other is the wrong class, its second the right one
    (of R = 2): precision@1 0, R-precision 1/2, MAP@R (0 + 1/2) / 2 = 1/4; the
    other four queries score 1.

    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.2], [2.52]])
    >>> retrieval_metrics(x, torch.tensor([0, 0, 1, 1, 1]))
    {'precision_at_1': 0.8, 'r_precision': 0.9, 'mean_average_precision_at_r': 0.85}
    """
    if (reference is None) != (reference_labels is None):
        raise ValueError("give reference and reference_labels together, or neither")
    leave_one_out = reference is None
    query_t = _embeddings(query, "query")
    query_labels_t = _labels(query_labels, len(query_t), "query_labels").to(query_t.device)
    if leave_one_out:
        reference_t, reference_labels_t = query_t, query_labels_t
    else:
        reference_t = _embeddings(reference, "reference").to(query_t.device)
        reference_labels_t = _labels(reference_labels, len(reference_t), "reference_labels")
        reference_labels_t = reference_labels_t.to(query_t.device)
        if reference_t.shape[1] != query_t.shape[1]:
            raise ValueError(
                f"query has dimension {query_t.shape[1]} but reference has {reference_t.shape[1]}"
            )

    num_relevant = _count_relevant(query_labels_t, reference_labels_t, leave_one_out)  # (n,)
    num_scored = int((num_relevant > 0).sum())
    if num_scored == 0:
        return dict.fromkeys(METRIC_NAMES, math.nan)

    k = int(num_relevant.max())  # the largest R: no query needs more neighbours
    if chunk_size is None:
        chunk_size = default_chunk_size(len(reference_t), MAX_CHUNK_ELEMENTS)
    totals = torch.zeros(3, dtype=torch.float64, device=query_t.device)
    for start, _, indices in knn_search_chunks(
        query_t, reference_t, k, exclude_self=leave_one_out, chunk_size=chunk_size
    ):
        stop = start + len(indices)
        totals += _chunk_sums(
            reference_labels_t[indices],
            query_labels_t[start:stop],
            num_relevant[start:stop],
        )
    means = (totals / num_scored).tolist()
    return dict(zip(METRIC_NAMES, means, strict=True))


def _chunk_sums(neighbour_labels: Tensor, labels: Tensor, num_relevant: Tensor) -> Tensor:
    """Sums over a chunk's scored queries of (precision@1, R-precision, MAP@R): (3,) float64.

    neighbour_labels (c, k) nearest first; labels (c,); num_relevant (c,) = R, 0 for lone queries.
    """
    k = neighbour_labels.shape[1]
    ranks = torch.arange(1, k + 1, device=labels.device)  # (k,)
    same = neighbour_labels == labels[:, None]  # (c, k)
    hits = same & (ranks[None, :] <= num_relevant[:, None])  # (c, k) right label within top R
    scored = num_relevant > 0  # (c,)
    r = num_relevant.clamp_min(1).to(torch.float64)  # (c,) avoids 0/0 on lone rows
    hits_f = hits.to(torch.float64)
    precision_at_rank = hits_f.cumsum(dim=1) / ranks  # (c, k)
    per_query = torch.stack(
        [
            same[:, 0].to(torch.float64),
            hits_f.sum(dim=1) / r,
            (precision_at_rank * hits_f).sum(dim=1) / r,
        ]
    )  # (3, c)
    return (per_query * scored).sum(dim=1)


def _count_relevant(query_labels: Tensor, reference_labels: Tensor, leave_one_out: bool) -> Tensor:
    """R per query: reference items with its label, itself excluded when leaving one out. (n,)"""
    classes, counts = torch.unique(reference_labels, return_counts=True)
    if len(classes) == 0:  # empty reference: every query is lone
        return torch.zeros_like(query_labels)
    position = torch.searchsorted(classes, query_labels).clamp_max(len(classes) - 1)
    found = classes[position] == query_labels
    return torch.where(found, counts[position], 0) - int(leave_one_out)


def _embeddings(x: ArrayLike, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array; got shape {tuple(t.shape)}")
    return t if t.is_floating_point() else t.float()


def _labels(x: ArrayLike, n: int, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"{name} must have shape ({n},); got {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name} must hold integers; got {t.dtype}")
    return t.long()
