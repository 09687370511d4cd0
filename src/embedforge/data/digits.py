"""scikit-learn's handwritten digits (bundled, 1,797 real 8×8 images): the default image data."""

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor

from embedforge.data.lazy_images import LazyImages


@dataclass(frozen=True)
class ImageSplit:
    """A train/test split of labelled images: images (n, c, h, w) float32 in [0, 1], labels (n,).

    Images are a tensor, or :class:`LazyImages` read from disk per batch when an image folder
    is too large for memory (``data.storage``); both are indexed by index tensors and
    ``split`` into chunks, which is all training and embedding ask of them.
    """

    train_images: Tensor | LazyImages
    train_labels: Tensor
    test_images: Tensor | LazyImages
    test_labels: Tensor


def digits_split(*, test_fraction: float = 0.3, seed: int = 0) -> ImageSplit:
    """Stratified split of the digits, scaled to [0, 1], as (n, 1, 8, 8) tensors.

    >>> split = digits_split(test_fraction=0.3, seed=0)
    >>> tuple(split.train_images.shape), tuple(split.test_images.shape)
    ((1257, 1, 8, 8), (540, 1, 8, 8))
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return ImageSplit(
        torch.from_numpy(train_x),
        torch.from_numpy(train_y),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y),
    )
