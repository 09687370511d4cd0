"""The metrics validation and evaluation share: retrieval (P@1, R-precision, MAP@R, ...),
exact k-nearest-neighbour search, clustering scores, and the checks on what they accept.

Below both ``train`` (each epoch's validation) and ``evaluate`` (a run's metrics.json), and
``index`` (exact search without FAISS), so none of those packages imports another.
"""

from embedforge.metrics.knn import knn_search
from embedforge.metrics.retrieval import retrieval_metrics

__all__ = ["knn_search", "retrieval_metrics"]
