"""Evaluation: retrieval metrics, probes, thresholds and the report."""
