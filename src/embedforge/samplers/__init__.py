"""Batch samplers: how a training epoch's batches are drawn from labelled items."""

from embedforge.samplers.pk import PKSampler

__all__ = ["PKSampler"]
