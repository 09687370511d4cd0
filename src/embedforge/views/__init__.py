"""Augmentations that make views of sets and images, batched on tensors, and their presets."""

from embedforge.views.image_pipeline import ImageViews
from embedforge.views.presets import BYOLViews, SimCLRViews, TutorialAffineViews
from embedforge.views.set_views import SetViews

__all__ = ["BYOLViews", "ImageViews", "SetViews", "SimCLRViews", "TutorialAffineViews"]
