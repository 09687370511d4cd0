"""k-means NMI / AMI: the scores are scikit-learn's on the clusters, seeded and reproducible.

Parity with PML's AccuracyCalculator (given the same k-means) is in test_retrieval.py.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from embedforge.metrics.clustering import clustering_metrics, kmeans_cluster_labels


def _blobs(seed, num_classes=4, per_class=25, spread=1.0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    x = 6.0 * rng.standard_normal((num_classes, 5))[labels] + spread * rng.standard_normal(
        (len(labels), 5)
    )
    return x.astype(np.float32), labels


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_are_sklearn_on_the_kmeans_clusters(seed) -> None:
    x, labels = _blobs(seed, spread=4.0)  # overlapping: scores strictly between 0 and 1
    clusters = kmeans_cluster_labels(x, 4, seed=seed)
    scores = clustering_metrics(torch.from_numpy(x), torch.from_numpy(labels), seed=seed)
    assert scores.nmi == normalized_mutual_info_score(labels, clusters)
    assert scores.ami == adjusted_mutual_info_score(labels, clusters)
    assert 0 < scores.ami < scores.nmi < 1


def test_separated_classes_score_one_and_random_labels_about_zero() -> None:
    x, labels = _blobs(0)
    assert clustering_metrics(x, labels) == (1.0, 1.0)
    shuffled = np.random.default_rng(0).permutation(labels)
    assert abs(clustering_metrics(x, shuffled).ami) < 0.05


def test_seeded_and_reproducible() -> None:
    x, _ = _blobs(2, spread=4.0)
    np.testing.assert_array_equal(
        kmeans_cluster_labels(x, 4, seed=5), kmeans_cluster_labels(x, 4, seed=5)
    )


def test_edge_cases() -> None:
    assert all(math.isnan(v) for v in clustering_metrics(np.zeros((0, 3)), np.zeros(0, dtype=int)))
    with pytest.raises(ValueError, match="labels must have shape"):
        clustering_metrics(np.zeros((4, 3)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="num_clusters must be between 1 and 4"):
        kmeans_cluster_labels(np.zeros((4, 3)), 5)
