"""Known or new: re-identification when some queries show individuals never seen before.

The recipe of the Kaggle re-identification competitions (humpback whales, happywhale):
take each query's nearest reference neighbours, nearest first; walk them and put
``"new_individual"`` just before the first neighbour farther than a distance
threshold; keep each label's first occurrence; answer the first 5. The threshold
is the one with the best MAP@5 on a validation split whose queries include
individuals absent from the reference.

Why vectorised: a sweep over ~100 thresholds and ~10^4–10^5 queries as a Python
loop per query per threshold takes minutes. Here the labels are turned into integer
codes and the deduplication is done once per query: for every prefix of the
neighbour row we know how many distinct labels it holds, and where the true label
first appears. A threshold only decides how long the prefix before "new" is (a
search of the threshold in the sorted distance row), so the rank of the true label
for all queries and all thresholds follows from a few array operations.

Conventions: ``distances`` are ascending along each row (a distance, not a
similarity: pass Euclidean distances, or 1 - cosine similarity). A neighbour whose
label *is* ``new_label`` (a reference image marked as a new individual) puts
"new" at its position if that comes before the threshold's. Predictions are object
arrays of the labels, padded with None when fewer than ``top`` distinct labels exist.
"""

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedforge.errors import UserError
from embedforge.evaluate.map_at_k import map_at_k

NEW_LABEL = "new_individual"
TOP = 5
NUM_QUANTILES = 100
"""Default number of candidate thresholds: quantiles of the neighbour distances."""


@dataclass(frozen=True)
class ThresholdCalibration:
    """The threshold sweep: the best threshold, and the whole MAP@5 curve to plot.

    Attributes:
        threshold: the chosen threshold (the middle of the first best plateau,
            less sensitive to noise than its edge).
        map_at_5: MAP@5 at ``threshold``.
        thresholds: (T,) candidate thresholds, ascending.
        scores: (T,) MAP@5 at each candidate.
        map_at_5_without_threshold: MAP@5 with threshold +inf ("new" only after
            all neighbours, so it shows when fewer than 5 distinct labels precede it).
    """

    threshold: float
    map_at_5: float
    thresholds: np.ndarray
    scores: np.ndarray
    map_at_5_without_threshold: float


@dataclass(frozen=True)
class _Neighbourhood:
    """Label codes of the neighbour rows, deduplicated once for every threshold."""

    vocabulary: np.ndarray  # (V + 1,) object: label of each code; the last entry, None, is code -1
    new_code: int
    distinct: np.ndarray  # (nq, W) codes of distinct known labels, first-occurrence order, -1 pad
    distinct_before: np.ndarray  # (nq, K + 1) distinct known labels among the first j neighbours
    first_new: np.ndarray  # (nq,) position of the first neighbour labelled new (K if none)
    extra_codes: np.ndarray  # codes of the extra labels passed to _encode (the truth)


def predict_with_threshold(
    distances: Any,
    neighbour_labels: Any,
    threshold: float,
    *,
    new_label: Any = NEW_LABEL,
    top: int = TOP,
) -> np.ndarray:
    """The top labels of each query, with ``new_label`` before the first neighbour beyond threshold.

    Args:
        distances: (nq, K) neighbour distances, ascending along each row.
        neighbour_labels: (nq, K) the neighbours' labels (strings or integers).
        threshold: neighbours at a distance <= threshold come before "new".
        new_label: the label that means "an individual not in the reference".
        top: labels per query.

    Returns:
        (nq, top) object array of labels, each at most once, padded with None.

    >>> distances = [[0.1, 0.2, 0.9, 1.5], [0.7, 0.8, 0.9, 1.0]]
    >>> labels = [["a", "a", "b", "c"], ["b", "c", "d", "e"]]
    >>> predict_with_threshold(distances, labels, 0.5, new_label="new").tolist()
    [['a', 'new', 'b', 'c', None], ['new', 'b', 'c', 'd', 'e']]
    """
    distances = _as_distances(distances)
    hood = _encode(neighbour_labels, distances.shape, new_label, top=top)
    within = _neighbours_within(distances, np.array([threshold], dtype=np.float64))[:, 0]  # (nq,)
    new_rank = _new_rank(hood, within[:, None])[:, 0]  # (nq,)
    slots = np.arange(top)[None, :]  # (1, top)
    shifted = slots - (slots > new_rank[:, None])  # labels after "new" move down one
    codes = np.take_along_axis(hood.distinct, shifted, axis=1)  # (nq, top)
    codes = np.where(slots == new_rank[:, None], hood.new_code, codes)
    return hood.vocabulary[codes]


def map_at_5(predictions: Any, truth: Any) -> float:
    """Kaggle's MAP@5: mean over queries of 1 / rank of the true label among 5 (0 if absent).

    Only the first occurrence of a label counts; None never matches. The same
    function as :func:`embedforge.evaluate.map_at_k.map_at_k` with k = 5.

    >>> map_at_5([["a", "b", "c", "d", "e"], ["x", "y", "a", None, None]], ["a", "a"])
    0.6666666666666666
    """
    width = np.shape(predictions)[-1] if np.ndim(predictions) == 2 else None
    if width is None or width > TOP:
        raise ValueError(f"predictions must be (n, <= {TOP}); got shape {np.shape(predictions)}")
    return map_at_k(np.asarray(predictions, dtype=object), np.asarray(truth, dtype=object), k=TOP)


def calibrate_threshold(
    distances: Any,
    neighbour_labels: Any,
    truth: Any,
    *,
    candidates: Any = None,
    new_label: Any = NEW_LABEL,
) -> ThresholdCalibration:
    """Sweep thresholds and keep the one with the best MAP@5, for all thresholds at once.

    Args:
        distances: (nq, K) validation queries' neighbour distances, ascending per row.
        neighbour_labels: (nq, K) the neighbours' labels.
        truth: (nq,) true labels, ``new_label`` for individuals absent from the
            reference (see :func:`mark_unseen_as_new`).
        candidates: thresholds to try; default :data:`NUM_QUANTILES` quantiles
            of the finite neighbour distances (duplicates dropped).
        new_label: the label that means "new individual".

    >>> distances = [[0.1, 1.2], [1.1, 1.3], [0.2, 1.4]]
    >>> labels = [["a", "b"], ["a", "b"], ["b", "a"]]
    >>> calibration = calibrate_threshold(distances, labels, ["a", "new", "b"], new_label="new")
    >>> round(calibration.map_at_5, 3), round(calibration.map_at_5_without_threshold, 3)
    (1.0, 0.778)
    >>> 0.2 <= calibration.threshold < 1.1
    True
    """
    distances = _as_distances(distances)
    truth = np.asarray(truth, dtype=object)
    if truth.shape != distances.shape[:1]:
        raise ValueError(f"truth must be ({len(distances)},); got {truth.shape}")
    if len(truth) == 0:
        raise ValueError("cannot calibrate a threshold on no queries")
    hood = _encode(neighbour_labels, distances.shape, new_label, top=TOP, extra=truth)
    if candidates is None:
        finite = distances[np.isfinite(distances)]
        if finite.size == 0:
            raise ValueError("no finite neighbour distance to take candidate thresholds from")
        candidates = np.quantile(finite, np.linspace(0.0, 1.0, NUM_QUANTILES))
    thresholds = np.unique(np.asarray(candidates, dtype=np.float64).ravel())  # sorted
    if thresholds.size == 0:
        raise ValueError("candidates is empty")

    swept = np.concatenate([thresholds, [np.inf]])
    scores = _map_at_5_per_threshold(hood, _neighbours_within(distances, swept))  # (T + 1,)
    scores, without = scores[:-1], float(scores[-1])
    best = scores.max()
    plateau = np.flatnonzero(np.isclose(scores, best, rtol=0.0, atol=1e-12))
    breaks = np.flatnonzero(np.diff(plateau) > 1)
    first_run = plateau[: breaks[0] + 1] if breaks.size else plateau
    chosen = int(first_run[len(first_run) // 2])
    return ThresholdCalibration(
        threshold=float(thresholds[chosen]),
        map_at_5=float(scores[chosen]),
        thresholds=thresholds,
        scores=scores,
        map_at_5_without_threshold=without,
    )


def mark_unseen_as_new(labels: Any, reference_labels: Any, *, new_label: Any = NEW_LABEL) -> Any:
    """Replace each label absent from ``reference_labels`` by ``new_label``: the truth to calibrate.

    >>> mark_unseen_as_new(["a", "z", "b"], ["a", "b", "b"], new_label="new").tolist()
    ['a', 'new', 'b']
    """
    labels = np.asarray(labels, dtype=object)
    seen = pd.Series(labels).isin(pd.Series(np.asarray(reference_labels, dtype=object))).to_numpy()
    result = labels.copy()
    result[~seen] = new_label
    return result


def write_submission(
    path: str | os.PathLike[str], image_ids: Sequence[Any], predictions: Any
) -> Path:
    """Write the Kaggle CSV ``image,predictions`` (labels space-separated), atomically.

    A label or image id that would break the format (a comma, a newline, or a
    space in a label) raises UserError and leaves ``path`` as it was.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "submission.csv"
    >>> print(write_submission(path, ["1.jpg"], [["a", "new", "b", None, None]]).read_text())
    image,predictions
    1.jpg,a new b
    <BLANKLINE>
    """
    path = Path(path)
    predictions = np.asarray(predictions, dtype=object)
    if predictions.ndim != 2 or len(predictions) != len(image_ids):
        raise ValueError(
            f"predictions must be (n, k) with n = {len(image_ids)} image ids; "
            f"got shape {predictions.shape}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", newline="") as handle:
            handle.write("image,predictions\n")
            for row, (image, labels) in enumerate(zip(image_ids, predictions, strict=True)):
                image = _csv_field(path, row, "image id", image, forbidden=",\n\r")
                words = [
                    _csv_field(path, row, "label", label, forbidden=", \n\r")
                    for label in labels
                    if label is not None
                ]
                handle.write(f"{image},{' '.join(words)}\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _csv_field(path: Path, row: int, what: str, value: Any, *, forbidden: str) -> str:
    text = str(value)
    if any(character in text for character in forbidden) or not text:
        raise UserError(
            f"cannot write {path}: {what} {text!r} (row {row}) is empty or contains one of "
            f"{forbidden!r}, which the submission format uses as separators"
        )
    return text


def _as_distances(distances: Any) -> np.ndarray:
    """(nq, K) float64 distances, checked ascending along each row (+inf allowed, NaN not)."""
    if hasattr(distances, "detach"):  # a torch tensor
        distances = distances.detach().cpu().numpy()
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2:
        raise ValueError(f"distances must be (nq, K); got shape {distances.shape}")
    if np.isnan(distances).any():
        raise ValueError("distances contain NaN")
    if (np.diff(distances, axis=1) < 0).any():
        raise ValueError(
            "distances must be ascending along each row (a distance, not a similarity)"
        )
    return distances


def _encode(
    neighbour_labels: Any,
    shape: tuple[int, ...],
    new_label: Any,
    *,
    top: int,
    extra: np.ndarray | None = None,
) -> _Neighbourhood:
    """Integer codes for the labels (new_label is code 0), deduplicated per row."""
    if hasattr(neighbour_labels, "detach"):
        neighbour_labels = neighbour_labels.detach().cpu().numpy()
    labels = np.asarray(neighbour_labels, dtype=object)
    if labels.shape != shape:
        raise ValueError(
            f"neighbour_labels must have the distances' shape {shape}; got {labels.shape}"
        )
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}")
    nq, k = shape
    extra = np.empty(0, dtype=object) if extra is None else extra
    new = np.empty(1, dtype=object)
    new[0] = new_label
    codes, uniques = pd.factorize(np.concatenate([new, labels.ravel(), extra]))
    vocabulary = np.append(np.asarray(uniques, dtype=object), None)  # code -1 -> None
    new_code = int(codes[0])
    neighbour_codes = codes[1 : 1 + nq * k].reshape(nq, k).astype(np.int64)  # (nq, K)

    # First occurrence of each label in its row: sort the codes stably, mark run starts.
    order = np.argsort(neighbour_codes, axis=1, kind="stable")  # (nq, K)
    in_order = np.take_along_axis(neighbour_codes, order, axis=1)
    starts = np.ones_like(in_order, dtype=bool)
    starts[:, 1:] = in_order[:, 1:] != in_order[:, :-1]
    first = np.empty_like(starts)
    np.put_along_axis(first, order, starts, axis=1)
    is_new = neighbour_codes == new_code
    first &= ~is_new & (neighbour_codes >= 0)  # new and missing (None/NaN) labels never count

    distinct_before = np.zeros((nq, k + 1), dtype=np.int64)
    np.cumsum(first, axis=1, out=distinct_before[:, 1:])
    width = max(k, top) + 1  # room for every shift, always ending in padding
    compact = np.argsort(~first, axis=1, kind="stable")  # first occurrences first, in order
    distinct = np.full((nq, width), -1, dtype=np.int64)
    distinct[:, :k] = np.where(
        np.arange(k)[None, :] < distinct_before[:, -1:],
        np.take_along_axis(neighbour_codes, compact, axis=1),
        -1,
    )
    first_new = np.where(is_new.any(axis=1), is_new.argmax(axis=1), k)
    return _Neighbourhood(
        vocabulary=vocabulary,
        new_code=new_code,
        distinct=distinct,
        distinct_before=distinct_before,
        first_new=first_new,
        extra_codes=codes[1 + nq * k :].astype(np.int64),
    )


def _neighbours_within(distances: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(nq, T): how many neighbours of each row lie at distance <= each (ascending) threshold.

    One searchsorted places every distance among the thresholds; a per-row
    histogram of those places, summed cumulatively, counts them for all thresholds.
    """
    nq = len(distances)
    t = len(thresholds)
    place = np.searchsorted(thresholds, distances, side="left")  # (nq, K): d <= t_i iff i >= place
    flat = (np.arange(nq)[:, None] * (t + 1) + place).ravel()
    histogram = np.bincount(flat, minlength=nq * (t + 1)).reshape(nq, t + 1)
    return np.cumsum(histogram, axis=1)[:, :t]


def _new_rank(hood: _Neighbourhood, within: np.ndarray) -> np.ndarray:
    """(nq, T): 0-based rank of "new" in the deduplicated list, for each prefix length."""
    prefix = np.minimum(within, hood.first_new[:, None])  # a neighbour labelled new comes first
    return np.take_along_axis(hood.distinct_before, prefix, axis=1)


def _map_at_5_per_threshold(hood: _Neighbourhood, within: np.ndarray) -> np.ndarray:
    """(T,) MAP@5 for each column of ``within`` (nq, T), against the truth in ``hood``."""
    truth = hood.extra_codes  # (nq,)
    new_rank = _new_rank(hood, within)  # (nq, T)
    found = (hood.distinct == truth[:, None]) & (truth >= 0)[:, None]  # (nq, W); new never found
    known_rank = np.where(found.any(axis=1), found.argmax(axis=1), hood.distinct.shape[1] + TOP)
    known_rank = known_rank[:, None]  # (nq, 1)
    rank = np.where(
        (truth == hood.new_code)[:, None],
        new_rank,
        known_rank + (known_rank >= new_rank),
    )  # (nq, T)
    return np.where(rank < TOP, 1.0 / (rank + 1), 0.0).mean(axis=0)
