"""The tutorial's biased dSprites training set, and its unbiased control.

A shortcut test: in the biased set each shape lives in its own band of x positions
(squares left, ellipses middle, hearts right), so position alone predicts the shape
there. An encoder that learned the shortcut fails on the unbiased test images; the
control, a random subset of the same size, separates the bias from the smaller size.
"""

import torch
from torch import Tensor

BANDS = ((0.0, 0.3), (0.35, 0.65), (0.7, 1.0))
"""The x-position band (inclusive) kept for each shape code: square, ellipse, heart."""


def biased_subset(shapes: Tensor, pos_x: Tensor) -> Tensor:
    """Indices of the items whose x position lies in their shape's band, ascending.

    >>> biased_subset(torch.tensor([0, 0, 1, 2]), torch.tensor([0.1, 0.5, 0.5, 0.2])).tolist()
    [0, 2]
    """
    low = torch.tensor([band[0] for band in BANDS])[shapes]
    high = torch.tensor([band[1] for band in BANDS])[shapes]
    return torch.nonzero((pos_x >= low) & (pos_x <= high)).flatten()


def control_subset(n: int, size: int, seed: int) -> Tensor:
    """``size`` indices of ``n`` items drawn at random (seeded), ascending: the control."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:size].sort().values
