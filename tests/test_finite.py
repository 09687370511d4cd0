"""Every metric, probe, map and index refuses embeddings holding NaN or inf (embedforge.finite).

On NaN vectors the metrics once came out plausible (P@1 0.34): each entry point below must
raise one UserError naming its argument and the first bad row instead.
"""

from collections.abc import Callable

import numpy as np
import pytest

from embedforge.errors import UserError
from embedforge.evaluate.probes import few_shot_curve, knn_accuracy, linear_probe
from embedforge.evaluate.projection import umap_2d
from embedforge.evaluate.rsm import similarity_matrix
from embedforge.finite import require_finite
from embedforge.index.embedding_index import EmbeddingIndex
from embedforge.metrics.clustering import clustering_metrics
from embedforge.metrics.retrieval import retrieval_metrics

LABELS = np.arange(20) % 4


def _embeddings(bad: float | None = None) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    if bad is not None:
        x[7, 2] = bad
    return x


ENTRY_POINTS: dict[str, Callable[[np.ndarray], object]] = {
    "retrieval_metrics": lambda x: retrieval_metrics(x, LABELS),
    "knn_accuracy": lambda x: knn_accuracy(_embeddings(), LABELS, x, LABELS),
    "linear_probe": lambda x: linear_probe(x, LABELS, _embeddings(), LABELS),
    "few_shot_curve": lambda x: few_shot_curve(x, LABELS, _embeddings(), LABELS),
    "clustering_metrics": lambda x: clustering_metrics(x, LABELS),
    "similarity_matrix": lambda x: similarity_matrix(x, LABELS),
    "umap_2d": lambda x: umap_2d(x),
    "index build": lambda x: EmbeddingIndex.build(x, list(range(20))),
    "index search": lambda x: EmbeddingIndex.build(_embeddings(), list(range(20))).search(x, 3),
}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_non_finite_embeddings_are_refused_naming_the_row(entry: str, bad: float) -> None:
    with pytest.raises(UserError, match=r"1 of 20 rows hold NaN or infinite values \(first: row 7"):
        ENTRY_POINTS[entry](_embeddings(bad))


def test_finite_and_integer_inputs_pass() -> None:
    require_finite(_embeddings(), "x")
    require_finite(np.arange(6).reshape(3, 2), "x")
    assert retrieval_metrics(_embeddings(), LABELS)["precision_at_1"] >= 0
