"""Evaluation: retrieval metrics, probes, open-set thresholds."""

from embedforge.evaluate.knn import knn_search
from embedforge.evaluate.map_at_k import map_at_k
from embedforge.evaluate.open_set import calibrate_threshold, predict_with_threshold
from embedforge.evaluate.probes import few_shot_curve, knn_accuracy, linear_probe
from embedforge.evaluate.retrieval import retrieval_metrics

__all__ = [
    "calibrate_threshold",
    "few_shot_curve",
    "knn_accuracy",
    "knn_search",
    "linear_probe",
    "map_at_k",
    "predict_with_threshold",
    "retrieval_metrics",
]
