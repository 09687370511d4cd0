"""An image folder with a CSV of labels as a data source: the re-identification layout.

The folder is split by image, seeded (or as a run recorded it, by file name); held-out images
of an individual with no training image count as new individuals and are left out of the
retrieval metrics. Images are resized to ``image_size``.

``storage``: ``memory`` decodes every image once, up front; ``disk`` reads each batch's
images from disk when it is needed (in parallel, the next batch while the model computes this
one), for folders whose decoded images do not fit in memory (50,000 RGB images at 224 take 30
GB in float32); ``auto`` keeps them in memory when they take at most 2 GiB (n × channels ×
image_size² × 4 bytes), else reads from disk.
"""

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from embedforge.data.image_folder import ImageFolder
from embedforge.data.lazy_images import LazyImages
from embedforge.data.source import ImageDataConfig, ImageSource
from embedforge.data.split import HeldOut, ImageSplit, unique_index
from embedforge.registry import DATA_SOURCES

IN_MEMORY_LIMIT = 2 * 1024**3
"""``storage: auto`` keeps a folder's decoded images in memory up to this many bytes."""


class ImageFolderConfig(ImageDataConfig):
    """A folder of images + an ``image,label`` CSV (re-identification), split by image."""

    path_keys: ClassVar[tuple[str, ...]] = ("root", "csv")
    file_keys: ClassVar[tuple[str, ...]] = ("csv",)
    source: Literal["image_folder"] = "image_folder"
    root: str = Field(description="the image folder")
    csv: str = Field(description="CSV with image,label columns, names relative to root")
    image_size: int = Field(64, gt=0, description="images are resized to this")
    channels: Literal[1, 3] = 3
    storage: Literal["auto", "memory", "disk"] = Field(
        "auto", description="decoded images kept in memory or read per batch"
    )
    allow_outside_root: bool = Field(
        False, description="read CSV-listed images whose resolved path leaves root"
    )

    def reader(
        self, root: str | Path, csv: str | Path | None, *, labelled: bool = True
    ) -> ImageFolder:
        """Images under ``root`` (listed in ``csv``, or every image file when it is None),
        read the way this section reads its own: the run's size, channels and root rule."""
        return ImageFolder(
            root,
            csv,
            image_size=self.image_size,
            channels=self.channels,
            label_column="label" if labelled else None,
            allow_outside_root=self.allow_outside_root,
        )


def folder_split(
    config: ImageFolderConfig, held_out: HeldOut | None = None, allow_missing: bool = False
) -> ImageSplit:
    """The folder split by image, seeded; its images decoded into memory or read per batch."""
    folder = config.reader(config.root, config.csv)
    ids = np.array(folder.image_names, dtype=object)
    if held_out is None:
        unique_index(ids, str(config.csv))
        order = torch.randperm(len(folder), generator=torch.Generator().manual_seed(config.seed))
        test_count = max(1, round(config.test_fraction * len(folder)))
        test_idx, train_idx = order[:test_count], order[test_count:]
    else:
        train_idx, test_idx = held_out.positions(
            ids, source=str(config.csv), allow_missing=allow_missing
        )
    train: torch.Tensor | LazyImages = LazyImages(folder, train_idx)
    test: torch.Tensor | LazyImages = LazyImages(folder, test_idx)
    decoded_bytes = len(folder) * folder.channels * folder.image_size**2 * 4  # float32
    if config.storage == "memory" or (
        config.storage == "auto" and decoded_bytes <= IN_MEMORY_LIMIT
    ):
        train, test = train[:], test[:]  # decoded once, in parallel
    labels = folder.labels
    return ImageSplit(
        train,
        labels[train_idx],
        test,
        labels[test_idx],
        ids[train_idx],
        ids[test_idx],
        classes=tuple(folder.classes),
    )


DATA_SOURCES.register(ImageFolderConfig)(ImageSource(folder_split, label_name="individual"))
