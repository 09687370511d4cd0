"""Mixed precision: the model's forward in half precision, the losses in float32.

Autocast runs every matmul in float16 (or bfloat16), a loss's own similarity matrix
too. A fresh network maps all images to nearly the same direction; in half precision
their cosine similarities round to 1 and tie, semi-hard mining finds no triplet, the
loss is 0, and the run never starts to train (seen on a GPU: the digits triplet recipe
stayed at MAP@R 0.25 with mixed precision, 0.98 without). A loss costs little next to
the model, so it runs with autocast off, on float32 inputs (the VAE's decoder, which the
loss holds, too: the price of one rule for every loss).
"""

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


def in_float32(loss_fn: Callable[..., T], *inputs: Any) -> T:
    """``loss_fn(*inputs)`` with autocast off and half-precision tensors cast to float32
    (float64, as in the gradient checks, stays float64).

    >>> half = torch.ones(2, 3, dtype=torch.float16)
    >>> in_float32(lambda x: x.sum(), half).dtype
    torch.float32
    """
    device = next((x.device.type for x in inputs if isinstance(x, Tensor)), "cpu")
    cast = [x.float() if _is_half(x) else x for x in inputs]
    with torch.autocast(device, enabled=False):
        return loss_fn(*cast)


def _is_half(value: Any) -> bool:
    return isinstance(value, Tensor) and value.is_floating_point() and value.element_size() < 4
