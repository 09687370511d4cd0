"""The functional form of every loss, and the triplet losses of O. Moindrot's classic write-up.

Each loss module holds its plain function beside its ``nn.Module`` (the function is what the
tests check against PML or a loop; the module keeps the hyper-parameters); they are all
importable from here: ``triplet_margin_loss``, ``contrastive_loss``, ``ntxent_loss``,
``supcon_loss``, ``multi_similarity_loss``, ``arcface_loss``, ``softmax_classifier_loss``,
``cosine_triplet_loss``, ``emd_distillation_loss`` and ``negative_elbo`` (the VAE's, given
its decoder's output).

Batch-all and batch-hard triplet losses exactly as O. Moindrot's write-up:

"Triplet Loss and Online Triplet Mining in TensorFlow" (2018) is where many
people learnt online mining; these functions reproduce its numbers so code
ported from it keeps its behaviour: raw (not normalised) embeddings, distances
from dot products, a mean over triplets with loss > 1e-16 for batch-all and a
mean over all anchors for batch-hard. Sources: FaceNet (arXiv:1503.03832) and
"In Defense of the Triplet Loss" (arXiv:1703.07737).
"""

import torch.nn.functional as F
from torch import Tensor

from embedforge.losses.arcface import arcface_loss
from embedforge.losses.barlow_twins import barlow_twins_loss
from embedforge.losses.classifier import softmax_classifier_loss
from embedforge.losses.contrastive import contrastive_loss
from embedforge.losses.cosine_triplet import cosine_triplet_loss
from embedforge.losses.dino import dino_loss
from embedforge.losses.distances import safe_sqrt
from embedforge.losses.emd_distillation import emd_distillation_loss
from embedforge.losses.masks import label_masks
from embedforge.losses.multi_similarity import multi_similarity_loss
from embedforge.losses.negative_cosine import byol_loss, negative_cosine_similarity, simsiam_loss
from embedforge.losses.ntxent import ntxent_loss
from embedforge.losses.queue_infonce import moco_v3_loss, queue_infonce_loss
from embedforge.losses.supcon import supcon_loss
from embedforge.losses.triplet import triplet_margin_loss
from embedforge.losses.triplet_kernel import triplet_margin_from_matrix
from embedforge.losses.vae import negative_elbo
from embedforge.losses.vicreg import vicreg_loss

_EPS = 1e-16


def _pairwise_distances(embeddings: Tensor, *, squared: bool) -> Tensor:
    """(B, D) -> (B, B) Euclidean distances from the Gram matrix, as the write-up computes them.

    Negative rounding is clamped to 0; the square root has value 0 and gradient 0 at 0.
    """
    dot = embeddings @ embeddings.T  # (B, B)
    square_norm = dot.diagonal()  # (B,)
    d2 = (square_norm.unsqueeze(0) - 2.0 * dot + square_norm.unsqueeze(1)).clamp_min(0.0)  # (B, B)
    return d2 if squared else safe_sqrt(d2)


def batch_all_triplet_loss(
    embeddings: Tensor, labels: Tensor, margin: float, squared: bool = False
) -> tuple[Tensor, Tensor]:
    """Mean of ``relu(d(a,p) - d(a,n) + margin)`` over every triplet whose loss is > 1e-16.

    embeddings: (B, D) float, used as given; labels: (B,) int. Returns
    ``(loss, fraction_positive_triplets)``, both scalars; the fraction is
    ``num_positive / (num_valid + 1e-16)``. O(B^2) memory.

    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> loss, fraction = batch_all_triplet_loss(x, torch.tensor([0, 0, 1]), margin=1.5)
    >>> round(loss.item(), 4), round(fraction.item(), 4)  # triplets (0,1,2) and (1,0,2)
    (0.382, 1.0)
    """
    dist = _pairwise_distances(embeddings, squared=squared)  # (B, B)
    positive_mask, negative_mask = label_masks(labels.to(embeddings.device))  # (B, B) each
    loss, counts = triplet_margin_from_matrix(
        dist, positive_mask, negative_mask, margin=margin, positive_threshold=_EPS, eps=_EPS
    )
    fraction = counts[1].to(dist.dtype) / (counts[0].to(dist.dtype) + _EPS)
    return loss, fraction


def batch_hard_triplet_loss(
    embeddings: Tensor, labels: Tensor, margin: float, squared: bool = False
) -> Tensor:
    """Mean over all anchors of ``relu(hardest positive - hardest negative + margin)``.

    The hardest positive is the row max of ``mask_anchor_positive * dist``
    (0 without a positive); the hardest negative the row min of
    ``dist + row_max * (1 - mask_anchor_negative)``. Maxima and minima share
    their gradient among ties, as TensorFlow's do.

    embeddings: (B, D) float, used as given; labels: (B,) int. Returns a scalar. O(B^2).

    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> round(batch_hard_triplet_loss(x, torch.tensor([0, 0, 1]), margin=1.5).item(), 4)
    0.2546
    """
    dist = _pairwise_distances(embeddings, squared=squared)  # (B, B)
    positive_mask, negative_mask = label_masks(labels.to(embeddings.device))  # (B, B) each
    hardest_positive = (positive_mask.to(dist.dtype) * dist).amax(dim=1)  # (B,)
    row_max = dist.amax(dim=1, keepdim=True)  # (B, 1)
    not_negative = (~negative_mask).to(dist.dtype)  # (B, B)
    hardest_negative = (dist + row_max * not_negative).amin(dim=1)  # (B,)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


__all__ = [
    "arcface_loss",
    "barlow_twins_loss",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "byol_loss",
    "contrastive_loss",
    "cosine_triplet_loss",
    "dino_loss",
    "emd_distillation_loss",
    "moco_v3_loss",
    "multi_similarity_loss",
    "negative_cosine_similarity",
    "negative_elbo",
    "ntxent_loss",
    "queue_infonce_loss",
    "simsiam_loss",
    "softmax_classifier_loss",
    "supcon_loss",
    "triplet_margin_loss",
    "vicreg_loss",
]
