"""MAP@k over predicted label lists: the Kaggle re-identification score (MAP@5).

Why a second MAP: in re-identification competitions (Kaggle's "Humpback Whale
Identification", "Happywhale") each query has exactly one true label, and a
submission gives, per query, a ranked list of up to 5 *labels* (an individual's
id, or ``new_whale``), not of neighbours. Kaggle's evaluation page defines

    MAP@5 = 1/U sum_u sum_{i=1}^{min(n, 5)} P(i) rel(i),

and once the correct label has been scored, later repeats of it are skipped;
with one true label this is 1 / (rank of the true label), 0 when it is not in
the first 5. The list is scored as given: a repeated *wrong* label takes a rank
of its own, as on Kaggle. Lists built from neighbour labels should be
deduplicated first (:func:`embedforge.evaluate.open_set.predict_with_threshold`
does), as a submission would be.

For PML's ``mean_average_precision`` (at k neighbours, several relevant items
per query) see :func:`embedforge.metrics.retrieval.retrieval_metrics`.
"""

import numpy as np
from torch import Tensor

from embedforge.metrics.arrays import ArrayLike


def map_at_k_per_query(predictions: ArrayLike, truth: ArrayLike, k: int = 5) -> np.ndarray:
    """Each query's score: 1 / rank of the first ``truth`` among the first ``k`` predictions, or 0.

    Args:
        predictions: (..., p) predicted labels, best first (any dtype numpy can
            compare: integers, strings, objects with None as padding).
        truth: (...) the one true label of each query, same leading shape.
        k: how many ranks count (5 on Kaggle).

    Returns:
        (...) float64 scores in {0} ∪ {1/1, ..., 1/k}. Leading dimensions are kept,
        so e.g. (thresholds, queries, p) predictions score every threshold at once.

    >>> map_at_k_per_query(np.array([[3, 3, 2, 1], [4, 5, 6, 7]]), np.array([2, 4])).tolist()
    [0.3333333333333333, 1.0]
    """
    predictions = _numpy(predictions)
    truth = _numpy(truth)
    if predictions.ndim < 1 or predictions.shape[:-1] != truth.shape:
        raise ValueError(
            f"predictions must be (..., p) and truth (...) with the same leading shape; "
            f"got {predictions.shape} and {truth.shape}"
        )
    if k < 1:
        raise ValueError(f"k must be a positive integer; got {k}")
    hit = predictions[..., :k] == truth[..., None]  # (..., min(p, k))
    first = hit.argmax(axis=-1)  # (...) first hit, 0 when none
    return np.where(hit.any(axis=-1), 1.0 / (first + 1), 0.0)


def map_at_k(predictions: ArrayLike, truth: ArrayLike, k: int = 5) -> float:
    """Mean over queries of :func:`map_at_k_per_query`: Kaggle's MAP@k, NaN with no query.

    Args:
        predictions: (n, p) predicted labels, best first.
        truth: (n,) the true label of each query.
        k: how many ranks count.

    Hit at rank 1, at rank 3 (the repeated wrong 7 takes rank 2), and absent:

    >>> map_at_k(np.array([[1, 2, 3, 4], [7, 7, 1, 8], [4, 5, 6, 4]]), np.array([1, 1, 9]))
    0.4444444444444444
    """
    scores = map_at_k_per_query(predictions, truth, k)
    return float(scores.mean()) if scores.size else float("nan")


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
