"""How far an embedding's distances agree with exact EMD: the two numbers search by example needs.

A palette embedding is worth searching with when its nearest neighbours are the palettes
that exact EMD (:mod:`embedforge.metrics.emd`; Rubner, Tomasi & Guibas, IJCV 2000) finds
nearest, at a small fraction of EMD's cost. Two measures, both from a ``(q, n)`` matrix of
exact EMDs between query palettes and a collection:

* **recall@k of the EMD neighbours**: the share of a query's k embedding neighbours (the
  Euclidean distance between embeddings, as :func:`~embedforge.metrics.knn.knn_search` and
  the index use) that are among its k exact-EMD neighbours, averaged over queries. What a
  user of search by example sees: how many of the 10 results are the right ones.
* **Spearman's rho** between embedding distance and EMD over sampled (query, palette) pairs:
  whether the embedding orders distances as EMD does over the whole range, not only among
  the nearest (rank correlation, so any monotone map of EMD scores 1).
"""

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor

from embedforge.metrics.knn import knn_search

DEFAULT_PAIRS = 20_000
"""Pairs :func:`emd_spearman` samples by default: rho's standard error, about
(1 - rho²) / sqrt(pairs), is then under 0.01."""


def recall_at_k_of_emd_neighbours(
    query: Tensor, reference: Tensor, emd: np.ndarray, k: int = 10
) -> float:
    """Mean over queries of the share of the ``k`` embedding neighbours that are EMD neighbours.

    Args:
        query: ``(q, d)`` embeddings of the query palettes.
        reference: ``(n, d)`` embeddings of the collection.
        emd: ``(q, n)`` exact EMD from each query to each collection palette.
        k: neighbours compared, ``1 <= k <= n``.

    Ties are counted for the embedding: a neighbour whose EMD equals the query's k-th
    smallest EMD is one of its k EMD neighbours (duplicate palettes in a collection tie), so
    the score is 1 whenever the embedding's k neighbours are k of the EMD-nearest.

    >>> emd = np.array([[0.0, 1.0, 2.0, 3.0]])
    >>> recall_at_k_of_emd_neighbours(torch.tensor([[0.0]]),
    ...                               torch.tensor([[0.0], [5.0], [1.0], [9.0]]), emd, k=2)
    0.5
    """
    emd = np.asarray(emd, dtype=np.float64)
    if emd.shape != (len(query), len(reference)):
        raise ValueError(
            f"emd must be (queries, collection) = {(len(query), len(reference))}; got {emd.shape}"
        )
    _, neighbours = knn_search(query, reference, k)  # (q, k) rows of the collection
    kth = np.partition(emd, k - 1, axis=1)[:, k - 1 : k]  # (q, 1) the k-th smallest EMD
    hits = np.take_along_axis(emd, neighbours.numpy(), axis=1) <= kth  # (q, k)
    return float(hits.mean())


def emd_spearman(
    query: Tensor,
    reference: Tensor,
    emd: np.ndarray,
    *,
    pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
) -> float:
    """Spearman's rho between embedding distance and EMD on ``pairs`` sampled (query, palette)
    pairs (all of them when there are fewer), drawn without replacement by ``seed``.

    Args:
        query, reference, emd: as for :func:`recall_at_k_of_emd_neighbours`.
        pairs: how many entries of ``emd`` to compare.
        seed: the sample's seed.

    >>> emd = np.array([[1.0, 2.0, 3.0]])
    >>> emd_spearman(torch.tensor([[0.0]]), torch.tensor([[1.0], [4.0], [9.0]]), emd)
    1.0
    """
    emd = np.asarray(emd, dtype=np.float64)
    q, n = emd.shape
    picked = np.random.default_rng(seed).choice(q * n, size=min(pairs, q * n), replace=False)
    rows, columns = np.divmod(picked, n)
    first, second = query[torch.from_numpy(rows)], reference[torch.from_numpy(columns)]
    embedded = (first.double() - second.double()).norm(dim=1)  # (pairs,)
    return float(spearmanr(embedded.numpy(), emd[rows, columns]).statistic)
