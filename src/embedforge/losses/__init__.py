"""Losses, miners and the distances they share."""

from embedforge.losses.distances import Distance

__all__ = ["Distance"]
