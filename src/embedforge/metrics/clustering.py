"""Clustering quality of embeddings: NMI and AMI of a k-means clustering against the labels.

Why: retrieval metrics judge each item's neighbours; these judge whether the
classes form separate clumps as a whole. As in pytorch-metric-learning's
``AccuracyCalculator``, the embeddings are clustered by k-means into as many
clusters as there are distinct labels, and the cluster assignment is scored
against the labels with scikit-learn's ``normalized_mutual_info_score`` (NMI,
arithmetic normalisation) and ``adjusted_mutual_info_score`` (AMI, corrected for
chance: about 0 for a random clustering, where NMI is not).

k-means is scikit-learn's ``KMeans`` (k-means++ start, one run, at most 300
Lloyd iterations, ``random_state=seed``), so a seed gives the same clusters on
the CPU. PML runs FAISS's k-means by default (random start, 20 iterations),
whose numbers differ: the two stop in different local optima, and FAISS's
random start can merge far-apart classes that k-means++ separates (see the
tests). Given the same cluster labels (PML accepts any ``kmeans_func``), the
scores are PML's.
"""

from typing import NamedTuple

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
from torch import Tensor

from embedforge.metrics.arrays import ArrayLike, as_embeddings


class ClusteringScores(NamedTuple):
    """NMI in [0, 1] and AMI (1 at best, about 0 by chance) of a k-means clustering."""

    nmi: float
    ami: float


def kmeans_cluster_labels(embeddings: ArrayLike, num_clusters: int, *, seed: int = 0) -> np.ndarray:
    """k-means cluster index of each row: (n, d) -> (n,) int64 in [0, num_clusters).

    >>> x = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> labels = kmeans_cluster_labels(x, 2)
    >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
    True
    """
    x = _numpy(embeddings)
    if not 1 <= num_clusters <= len(x):
        raise ValueError(
            f"num_clusters must be between 1 and {len(x)} (the rows); got {num_clusters}"
        )
    kmeans = KMeans(n_clusters=num_clusters, init="k-means++", n_init=1, random_state=seed)
    return kmeans.fit_predict(x).astype(np.int64)


def clustering_metrics(
    embeddings: ArrayLike, labels: ArrayLike, *, seed: int = 0
) -> ClusteringScores:
    """NMI and AMI of k-means on ``embeddings`` (n, d), with one cluster per distinct label (n,).

    NaN for both when there are no rows.

    >>> x = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> clustering_metrics(x, np.array([3, 3, 7, 7]))
    ClusteringScores(nmi=1.0, ami=1.0)
    """
    x = _numpy(embeddings)
    y = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels)
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},); got {y.shape}")
    if len(x) == 0:
        return ClusteringScores(float("nan"), float("nan"))
    clusters = kmeans_cluster_labels(x, len(np.unique(y)), seed=seed)
    return ClusteringScores(
        float(normalized_mutual_info_score(y, clusters)),
        float(adjusted_mutual_info_score(y, clusters)),
    )


def _numpy(embeddings: ArrayLike) -> np.ndarray:
    return as_embeddings(embeddings, "embeddings").detach().cpu().numpy()
