"""The negative cosine similarity, and the two symmetrised losses built on it.

SimSiam (Chen & He, 2020, arXiv:2011.10566): ``L = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2``.
BYOL (Grill et al., 2020, arXiv:2006.07733): ``2 − 2 cos(q(z1), sg(t2))`` symmetrised, t the
momentum target's projections (``2 − 2 cos`` is the squared distance of unit vectors).
:func:`negative_cosine_similarity` does not detach; the two losses do (the stop-gradient).
It equals lightly 1.6's ``NegativeCosineSimilarity``.
"""

import torch.nn.functional as F
from torch import Tensor


def negative_cosine_similarity(p: Tensor, z: Tensor, eps: float = 1e-8) -> Tensor:
    """−mean_i cos(p_i, z_i) over (B, D) rows; −1 when every pair is aligned.

    >>> import torch
    >>> round(negative_cosine_similarity(torch.ones(3, 2), 2 * torch.ones(3, 2)).item(), 6)
    -1.0
    """
    return -F.cosine_similarity(p, z, dim=1, eps=eps).mean()


def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """SimSiam's symmetrised loss: predictions ``p`` against the other view's projections
    ``z``, which take no gradient. In [−1, 1]."""
    return (
        negative_cosine_similarity(p1, z2.detach()) + negative_cosine_similarity(p2, z1.detach())
    ) / 2


def byol_loss(p1: Tensor, p2: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
    """BYOL's symmetrised loss: mean of ``2 − 2 cos(p1, t2)`` and ``2 − 2 cos(p2, t1)``, the
    targets ``t`` without gradient. In [0, 4]."""
    cross = negative_cosine_similarity(p1, t2.detach()) + negative_cosine_similarity(
        p2, t1.detach()
    )
    return 2 + cross


__all__ = ["byol_loss", "negative_cosine_similarity", "simsiam_loss"]
