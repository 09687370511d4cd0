"""A momentum (exponential moving average) copy of a network, and the schedule of its rate.

BYOL (Grill et al., 2020, arXiv:2006.07733, section 3.1), MoCo (He et al., 2019,
arXiv:1911.05722) and DINO (Caron et al., 2021, arXiv:2104.14294) train against a *target*
network that is not optimised but follows the online one slowly:
``target = m * target + (1 - m) * online`` after every optimizer step. BYOL and DINO raise m
from its base value to 1 over training on a cosine schedule, so the target settles at the end.
"""

import copy
import math

import torch
from torch import nn


def cosine_momentum(step: int, total_steps: int, base: float, final: float = 1.0) -> float:
    """The momentum after ``step`` of ``total_steps`` optimizer steps: ``base`` at step 0,
    ``final`` at the last, on BYOL's cosine, ``final - (final - base)(cos(pi k / K) + 1) / 2``.

    ``total_steps`` 0 (a schedule not yet known) keeps ``base``.

    >>> [cosine_momentum(step, 100, 0.99) for step in (0, 50, 100)]
    [0.99, 0.995, 1.0]
    """
    if total_steps <= 0:
        return base
    progress = min(step, total_steps) / total_steps
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters take no gradient (a target network)."""
    target = copy.deepcopy(module)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter.

    Buffers (batch-norm statistics) are left to the target's own forward passes, as in the
    authors' BYOL and lightly's ``update_momentum``.
    """
    targets, onlines = list(target.parameters()), list(online.parameters())
    if len(targets) != len(onlines):
        raise ValueError(f"the target has {len(targets)} parameters, the online {len(onlines)}")
    torch._foreach_lerp_(targets, [p.detach() for p in onlines], 1.0 - momentum)


__all__ = ["cosine_momentum", "ema_update", "frozen_copy"]
