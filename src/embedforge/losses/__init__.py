"""Losses, miners and the distances they share.

Every loss is a ``torch.nn.Module``; one with a pytorch-metric-learning counterpart keeps
PML's defaults, beside a plain function (tests check the function against PML or a loop).
The softmax classifier and the VAE, baselines of the self-supervised comparison, have none.
"""

from embedforge.losses.arcface import ArcFaceLoss
from embedforge.losses.barlow_twins import BarlowTwinsLoss
from embedforge.losses.classifier import SoftmaxClassifierLoss
from embedforge.losses.contrastive import ContrastiveLoss
from embedforge.losses.cosine_triplet import CosineTripletLoss
from embedforge.losses.cross_batch_memory import CrossBatchMemory
from embedforge.losses.distances import Distance
from embedforge.losses.emd_distillation import EMDDistillationLoss
from embedforge.losses.miners import BatchHardMiner, MinedTriplets, TripletMiner
from embedforge.losses.multi_similarity import MultiSimilarityLoss
from embedforge.losses.ntxent import NTXentLoss
from embedforge.losses.projected import Projected
from embedforge.losses.references import References
from embedforge.losses.supcon import SupConLoss
from embedforge.losses.triplet import TripletMarginLoss
from embedforge.losses.vae import VAELoss
from embedforge.losses.vicreg import VICRegLoss

__all__ = [
    "ArcFaceLoss",
    "BarlowTwinsLoss",
    "BatchHardMiner",
    "ContrastiveLoss",
    "CosineTripletLoss",
    "CrossBatchMemory",
    "Distance",
    "EMDDistillationLoss",
    "MinedTriplets",
    "MultiSimilarityLoss",
    "NTXentLoss",
    "Projected",
    "References",
    "SoftmaxClassifierLoss",
    "SupConLoss",
    "TripletMarginLoss",
    "TripletMiner",
    "VAELoss",
    "VICRegLoss",
]
