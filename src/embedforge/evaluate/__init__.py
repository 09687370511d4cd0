"""Evaluation: probes, few-shot curves, Kaggle MAP@k, open-set thresholds, RSM, the report.

Retrieval metrics and exact search are in :mod:`embedforge.metrics` (validation uses them too).
"""

from embedforge.evaluate.map_at_k import map_at_k
from embedforge.evaluate.open_set import calibrate_threshold, predict_with_threshold
from embedforge.evaluate.probes import few_shot_curve, knn_accuracy, linear_probe

__all__ = [
    "calibrate_threshold",
    "few_shot_curve",
    "knn_accuracy",
    "linear_probe",
    "map_at_k",
    "predict_with_threshold",
]
