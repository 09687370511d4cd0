"""Batch-norm statistics for a model that was never trained.

An untrained encoder still has the initial running statistics (mean 0, variance 1), so in
eval mode its batch norms do not normalise at all and every feature vector points the same
way (all cosine similarities near 1). A "random encoder" baseline is meant to show what the
architecture alone gives; its statistics are therefore estimated on the images it will embed,
which changes no weight.
"""

import torch
from torch import Tensor, nn


@torch.no_grad()
def estimate_batch_norm_statistics(model: nn.Module, images: Tensor, batch: int = 1000) -> None:
    """Set every batch norm's running mean and variance to their averages over ``images``.

    >>> model = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4, affine=False))
    >>> estimate_batch_norm_statistics(model, torch.full((10, 4), 3.0))
    >>> model[1].running_mean.tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    model.train()
    for chunk in images.split(batch):
        model(chunk)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()
