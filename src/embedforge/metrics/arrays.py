"""What every metric, probe and map accepts: embeddings and labels, checked where they come in.

Numpy arrays and tensors alike; the errors name the argument (``query``, ``train_emb``) and
the shape expected, and non-finite embeddings are refused (see :mod:`embedforge.finite`).
"""

import numpy as np
import torch
from torch import Tensor

from embedforge.finite import require_finite

ArrayLike = Tensor | np.ndarray


def as_embeddings(x: ArrayLike, name: str) -> Tensor:
    """``x`` as a (n, d) float tensor (float64 kept), or a ValueError naming ``name``; NaN or
    infinite values are refused (:func:`~embedforge.finite.require_finite`)."""
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array; got shape {tuple(t.shape)}")
    require_finite(t, name)
    return t if t.is_floating_point() else t.float()


def as_labels(x: ArrayLike, n: int, name: str) -> Tensor:
    """``x`` as (n,) int64 labels, or a ValueError naming ``name`` and the shape expected."""
    t = torch.as_tensor(x)
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"{name} must have shape ({n},); got {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name} must hold integers; got {t.dtype}")
    return t.long()
