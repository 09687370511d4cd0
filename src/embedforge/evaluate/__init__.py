"""Evaluation: retrieval metrics, probes, thresholds and the report."""

from embedforge.evaluate.knn import knn_search
from embedforge.evaluate.retrieval import retrieval_metrics

__all__ = ["knn_search", "retrieval_metrics"]
