"""Trunks (small CNN, set encoders) and heads (projection, embedder, classifier)."""
