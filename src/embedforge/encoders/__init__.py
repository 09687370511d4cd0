"""Trunks (small CNN, timm), set encoders (DeepSets, Set Transformer, raster CNN) and heads."""

from embedforge.encoders.deep_sets import DeepSets
from embedforge.encoders.embedder import Embedder
from embedforge.encoders.projection_head import ProjectionHead
from embedforge.encoders.raster_cnn import RasterCNN
from embedforge.encoders.set_transformer import SetTransformer
from embedforge.encoders.small_cnn import SmallCNN
from embedforge.encoders.timm_trunk import TimmTrunk

__all__ = [
    "DeepSets",
    "Embedder",
    "ProjectionHead",
    "RasterCNN",
    "SetTransformer",
    "SmallCNN",
    "TimmTrunk",
]
