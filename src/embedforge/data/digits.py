"""scikit-learn's handwritten digits (bundled, 1,797 real 8×8 images): the default image data."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import Tensor

from embedforge.data.split import ImageSplit, stratified_split


def digits_images() -> tuple[Tensor, Tensor]:
    """All the digits, scaled to [0, 1]: images (1797, 1, 8, 8) float32, labels (1797,) int64.

    >>> images, labels = digits_images()
    >>> tuple(images.shape), labels[:3].tolist()
    ((1797, 1, 8, 8), [0, 1, 2])
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8)
    return torch.from_numpy(images), torch.from_numpy(digits.target.astype(np.int64))


def digits_split(*, test_fraction: float = 0.3, seed: int = 0) -> ImageSplit:
    """Stratified split of the digits (ids: their positions in scikit-learn's order).

    >>> split = digits_split(test_fraction=0.3, seed=0)
    >>> tuple(split.train_images.shape), tuple(split.test_images.shape)
    ((1257, 1, 8, 8), (540, 1, 8, 8))
    """
    images, labels = digits_images()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    return ImageSplit.select(images, labels, np.arange(len(labels)), train_idx, test_idx)
