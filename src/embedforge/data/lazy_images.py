"""Images of a folder read from disk when a batch asks for them, standing in for a tensor.

Decoded, a re-identification set does not fit in memory: 50,000 photos at 3 × 224 × 224 in
float32 take 30 GB. :class:`LazyImages` offers the few things the image pipeline asks of an
``(n, C, S, S)`` tensor (``len``, ``shape``, indexing by an index tensor or a slice, ``split``)
and decodes only the rows asked for, returning a real tensor.
"""

import functools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

from embedforge.data.image_folder import ImageFolder


@functools.cache
def _readers() -> ThreadPoolExecutor:
    """One thread per core, shared by every :class:`LazyImages`, started on first use.

    Threads rather than processes: Pillow releases the GIL while it decodes and resizes, so
    threads decode in parallel with nothing to pickle or start per batch. Decoding is
    CPU-bound, so more threads than cores would only contend.
    """
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="image-reader")


class LazyImages:
    """The images of ``folder`` at ``rows`` (int64 ``(n,)``) as a read-on-demand ``(n, C, S, S)``.

    ``images[index]`` (an int64 index tensor or a slice, into ``rows``) reads those images, in
    parallel, as a float32 ``(k, C, S, S)`` tensor in [0, 1], exactly what
    ``folder[row][0]`` gives for each row. A missing or broken file raises the folder's
    :class:`~embedforge.errors.UserError` naming it.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in "abc":
    ...     Image.new("RGB", (5, 3), "red").save(root / f"{name}.png")
    >>> _ = (root / "labels.csv").write_text("image,label\\na.png,1\\nb.png,1\\nc.png,2\\n")
    >>> folder = ImageFolder(root, root / "labels.csv", image_size=4)
    >>> images = LazyImages(folder, torch.tensor([2, 0]))
    >>> len(images), tuple(images.shape), tuple(images[torch.tensor([1])].shape)
    (2, (2, 3, 4, 4), (1, 3, 4, 4))
    >>> [tuple(chunk.shape) for chunk in images.split(1)]
    [(1, 3, 4, 4), (1, 3, 4, 4)]
    """

    def __init__(self, folder: ImageFolder, rows: Tensor) -> None:
        self.folder, self.rows = folder, rows

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        size = self.folder.image_size
        return torch.Size((len(self.rows), self.folder.channels, size, size))

    def __getitem__(self, index: Tensor | slice) -> Tensor:
        rows = self.rows[index].tolist()
        images = torch.empty((len(rows), *self.shape[1:]))  # (k, C, S, S)
        for i, image in enumerate(_readers().map(lambda row: self.folder[row][0], rows)):
            images[i] = image
        return images

    def split(self, size: int) -> Iterator[Tensor]:
        """Consecutive chunks of ``size`` images (the last may be smaller), each read when
        reached: what :meth:`torch.Tensor.split` gives for a tensor."""
        return (self[start : start + size] for start in range(0, len(self), size))
