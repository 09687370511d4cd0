"""Losses, miners and the distances they share.

Every loss is a ``torch.nn.Module`` whose defaults equal pytorch-metric-learning's,
and a plain function beside it (tests check the function against PML or a loop).
"""

from embedforge.losses.arcface import ArcFaceLoss
from embedforge.losses.contrastive import ContrastiveLoss
from embedforge.losses.cosine_triplet import CosineTripletLoss
from embedforge.losses.distances import Distance
from embedforge.losses.miners import BatchHardMiner, MinedTriplets, TripletMiner
from embedforge.losses.ntxent import NTXentLoss
from embedforge.losses.supcon import SupConLoss
from embedforge.losses.triplet import TripletMarginLoss

__all__ = [
    "ArcFaceLoss",
    "BatchHardMiner",
    "ContrastiveLoss",
    "CosineTripletLoss",
    "Distance",
    "MinedTriplets",
    "NTXentLoss",
    "SupConLoss",
    "TripletMarginLoss",
    "TripletMiner",
]
