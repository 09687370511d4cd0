"""scikit-learn's handwritten digits (bundled, 1,797 real 8×8 images): the default image data."""

from typing import Literal

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import Tensor

from embedforge.data.source import ImageDataConfig, ImageSource
from embedforge.data.split import HeldOut, ImageSplit, split_generated
from embedforge.registry import DATA_SOURCES


def digits_images() -> tuple[Tensor, Tensor]:
    """All the digits, scaled to [0, 1]: images (1797, 1, 8, 8) float32, labels (1797,) int64.

    >>> images, labels = digits_images()
    >>> tuple(images.shape), labels[:3].tolist()
    ((1797, 1, 8, 8), [0, 1, 2])
    >>> split = _split(DigitsConfig(test_fraction=0.3), None, False)
    >>> tuple(split.train_images.shape), tuple(split.test_images.shape)
    ((1257, 1, 8, 8), (540, 1, 8, 8))
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8)
    return torch.from_numpy(images), torch.from_numpy(digits.target.astype(np.int64))


class DigitsConfig(ImageDataConfig):
    """scikit-learn's handwritten digits: 1,797 real 8×8 images, split stratified by digit."""

    source: Literal["digits"] = "digits"


def _split(config: DigitsConfig, held_out: HeldOut | None, allow_missing: bool) -> ImageSplit:
    images, labels = digits_images()
    return split_generated(
        images,
        labels,
        test_fraction=config.test_fraction,
        seed=config.seed,
        held_out=held_out,
        allow_missing=allow_missing,
        source="data.source 'digits'",
    )


DATA_SOURCES.register(DigitsConfig)(
    ImageSource(_split, label_name="digit", label_names=tuple(str(d) for d in range(10)))
)
