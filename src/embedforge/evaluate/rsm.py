"""Representational similarity matrices: how an encoder arranges held-out items by one factor.

Why: to compare encoders side by side, practitioners sort the items by a label
(or a latent such as a shape's scale) and look at their cosine similarity
matrix. Blocks on the diagonal mean the encoder groups items by that factor; a
smooth gradient means it orders them by a continuous one. The histogram of the
matrix's values shows whether similarities spread over [-1, 1] or collapse to
one value (a collapsed embedding). Kriegeskorte et al., "Representational
similarity analysis", Front. Syst. Neurosci. 2008.

:func:`similarity_matrix` builds an :class:`RSM`; :func:`within_between` sums it
up in two numbers; :mod:`embedforge.evaluate.plots` draws it.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from embedforge.metrics.arrays import ArrayLike, as_embeddings


@dataclass(frozen=True)
class RSM:
    """A cosine similarity matrix of items sorted by one factor.

    Attributes:
        matrix: (m, m) float32 cosine similarities in [-1, 1], rows and columns
            in sorted order; a zero-norm item has similarity 0 with everything,
            itself included.
        sorted_values: (m,) the factor's values in matrix order, non-decreasing.
        index: (m,) int64 positions of the matrix's items among the original ones.

    >>> rsm = similarity_matrix(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]), np.array([1, 0, 1]))
    >>> rsm.index.tolist(), rsm.sorted_values.tolist()
    ([1, 0, 2], [0, 1, 1])
    >>> rsm.matrix.tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    >>> rsm.off_diagonal().tolist(), rsm.same_value_pairs().tolist()
    ([0.0, 0.0, 1.0], [False, False, True])
    """

    matrix: np.ndarray
    sorted_values: np.ndarray
    index: np.ndarray

    def off_diagonal(self) -> np.ndarray:
        """The m(m-1)/2 values above the diagonal, row by row: each pair once, no item
        with itself (whose similarity, 1, would pile up in a histogram)."""
        return self.matrix[np.triu_indices(len(self.matrix), k=1)]

    def same_value_pairs(self) -> np.ndarray:
        """(m(m-1)/2,) bool in :meth:`off_diagonal`'s order: whether the pair's two items
        share their sorted value (the same class, for integer labels)."""
        rows, columns = np.triu_indices(len(self.matrix), k=1)
        return self.sorted_values[rows] == self.sorted_values[columns]


def similarity_matrix(
    embeddings: ArrayLike, sort_by: ArrayLike, *, max_items: int = 1000, seed: int = 0
) -> RSM:
    """The cosine similarity matrix of the items, sorted by ``sort_by``.

    When there are more than ``max_items`` items, a random subset of
    ``max_items`` (depending only on ``seed``) is used: the matrix grows as m²,
    and a picture cannot show more rows than it has pixels anyway. Items are
    sorted by a stable sort, so items with equal values keep their original
    order. Similarities are computed in float64 and stored as float32.

    Args:
        embeddings: (n, d) embeddings, torch or numpy.
        sort_by: (n,) integer labels or continuous values, torch or numpy.
        max_items: the most items kept, >= 1.
        seed: chooses the subset.
    """
    x = as_embeddings(embeddings, "embeddings")
    values = np.asarray(sort_by.cpu() if isinstance(sort_by, Tensor) else sort_by)
    if values.shape != (len(x),):
        raise ValueError(f"sort_by must have shape ({len(x)},); got {values.shape}")
    if len(x) == 0:
        raise ValueError("similarity_matrix needs at least one item; got none")
    index = sample_items(len(x), max_items, seed=seed)
    index = index[np.argsort(values[index], kind="stable")]
    chosen = x[torch.from_numpy(index)].detach().cpu().double().numpy()  # (m, d), only these copied
    norms = np.linalg.norm(chosen, axis=1, keepdims=True)  # (m, 1)
    unit = np.divide(chosen, norms, out=np.zeros_like(chosen), where=norms > 0)  # (m, d)
    # float64's rounding error (~1e-16) vanishes in float32, so no similarity passes ±1
    return RSM((unit @ unit.T).astype(np.float32), values[index], index)


def within_between(rsm: RSM) -> tuple[float, float]:
    """Mean similarity of the pairs that share their sorted value (within a class) and of
    those that do not (between classes): the RSM's block structure in two numbers.

    Meant for integer labels: continuous values rarely repeat, so nearly all
    pairs count as "between". A side with no pairs (a single class, or every
    item its own class) is NaN.

    >>> x = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> within, between = within_between(similarity_matrix(x, np.array([0, 0, 1, 1])))
    >>> round(within, 3), round(between, 3)
    (0.995, 0.099)
    """
    similarities = rsm.off_diagonal().astype(np.float64)
    same = rsm.same_value_pairs()
    return _mean(similarities[same]), _mean(similarities[~same])


def sample_items(n: int, max_items: int, *, seed: int = 0) -> np.ndarray:
    """Positions of at most ``max_items`` of ``n`` items, ascending, (m,) int64: all of them
    when n <= max_items, else a random subset that depends only on ``seed``.

    >>> sample_items(5, 10).tolist()
    [0, 1, 2, 3, 4]
    >>> len(sample_items(1000, 10, seed=3))
    10
    """
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1; got {max_items}")
    if n <= max_items:
        return np.arange(n, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(n, size=max_items, replace=False)
    return np.sort(chosen).astype(np.int64)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
