"""Train/held-out splits: how a run divides its items, and the same division found again.

A run measures its embedding on the items it held out, so the split must be the one it
trained against, whatever happened to the data since. The trainer draws it once (seeded:
stratified by class for generated images, by image for a folder, by object for palettes)
and records the items' ids (:class:`HeldOut`, written to the run folder by
:mod:`embedforge.files.data_pin`); every later command looks the recorded ids up in the
data instead of re-deriving the split from the seed, which would silently move items
between the sets when a row is added.

Item ids: an image folder's file names (as written in its CSV), the palettes' object ids,
and the position in the generated set for digits and dSprites. They must be unique.

:func:`fingerprint` condenses the items of a split (ids in split order, and what labels or
encodes them) into one sha256, so a later command can tell that "the same ids" still mean
the same items: for generated data that is the only check there is; for files it backs up
the file's own checksum.
"""

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from embedforge.data.lazy_images import LazyImages
from embedforge.errors import UserError

if TYPE_CHECKING:
    from embedforge.data.palettes import Palettes


def stratified_split(labels: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded (train, test) index tensors, stratified by ``labels``: generated data's split.

    >>> train, test = stratified_split(torch.tensor([0, 0, 1, 1]), 0.5, seed=0)
    >>> sorted(torch.cat([train, test]).tolist()), len(test)
    ([0, 1, 2, 3], 2)
    """
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=test_fraction,
        random_state=seed,
        stratify=labels.numpy(),
    )
    return torch.from_numpy(train_idx), torch.from_numpy(test_idx)


@dataclass(frozen=True)
class HeldOut:
    """The ids of a run's training and held-out items, in the order the run used them.

    >>> held = HeldOut(np.array(["b", "d"]), np.array(["a"]))
    >>> train, test = held.positions(np.array(["a", "b", "c", "d"]), source="t.csv")
    >>> train.tolist(), test.tolist()
    ([1, 3], [0])
    """

    train_ids: np.ndarray
    test_ids: np.ndarray

    def positions(
        self, ids: np.ndarray, *, source: str, allow_missing: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Where the recorded ids are in ``ids`` (the data as read now), as index tensors.

        A recorded id missing from the data is a UserError naming ``source``, unless
        ``allow_missing`` (re-scoring on changed data), which drops it; ids the run never
        saw are not used either way.
        """
        index = unique_index(ids, source)
        found = []
        for name, wanted in (("training", self.train_ids), ("held-out", self.test_ids)):
            where = index.get_indexer(pd.Index(wanted, dtype=object))  # (n,), -1: missing
            missing = where < 0
            if missing.any() and not allow_missing:
                raise UserError(
                    f"{source}: {int(missing.sum())} of the run's {len(wanted)} {name} items are "
                    f"gone (first: {wanted[np.argmax(missing)]!r}); expected the data the run "
                    "was trained on"
                )
            found.append(torch.from_numpy(where[~missing]))
        return found[0], found[1]


def fingerprint(ids: np.ndarray, *arrays: Tensor | np.ndarray) -> str:
    """sha256 of ``ids`` (as text, in order) and the bytes of ``arrays``.

    >>> fingerprint(np.array([1, 2]), torch.tensor([0, 1]))[:12]
    '7f673015b786'
    """
    digest = hashlib.sha256("\0".join(map(str, ids.tolist())).encode())
    for array in arrays:
        values = array.numpy() if isinstance(array, Tensor) else array
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def unique_index(ids: np.ndarray, source: str) -> pd.Index:
    """``ids`` as a lookup index, after checking that no id repeats (a UserError names it)."""
    index = pd.Index(ids, dtype=object)
    if not index.is_unique:
        repeated = index[index.duplicated()][0]
        count = int((index == repeated).sum())
        raise UserError(
            f"{source}: item {repeated!r} is listed {count} times; expected each once (a "
            "repeat could land on both sides of the train/held-out split)"
        )
    return index


@dataclass(frozen=True)
class ImageSplit:
    """A train/test split of labelled images: images (n, c, h, w) float32 in [0, 1], labels (n,).

    Images are a tensor, or :class:`LazyImages` read from disk per batch when an image folder
    is too large for memory (``data.storage``); both are indexed by index tensors and
    ``split`` into chunks, which is all training and embedding ask of them. ``train_ids`` and
    ``test_ids`` name the items (see the module docstring); a split made in code without
    them (an experiment's subset) is named by position. ``classes`` names every label code as
    the data wrote it (an image folder's CSV labels), when it has such names.
    """

    train_images: Tensor | LazyImages
    train_labels: Tensor
    test_images: Tensor | LazyImages
    test_labels: Tensor
    train_ids: np.ndarray | None = None
    test_ids: np.ndarray | None = None
    classes: tuple[str, ...] | None = None

    @classmethod
    def select(
        cls,
        images: Tensor | LazyImages,
        labels: Tensor,
        ids: np.ndarray,
        train_idx: Tensor,
        test_idx: Tensor,
    ) -> "ImageSplit":
        """The items at ``train_idx`` and ``test_idx``, with their labels and ids."""
        return cls(
            images[train_idx],
            labels[train_idx],
            images[test_idx],
            labels[test_idx],
            ids[train_idx.numpy()],
            ids[test_idx.numpy()],
        )

    def fingerprint(self) -> str:
        """The split's ids and labels, hashed (not the pixels: a folder's images are read
        lazily; its CSV's checksum is kept beside this)."""
        held = self.held_out
        ids = np.concatenate([held.train_ids.astype(object), held.test_ids.astype(object)])
        return fingerprint(ids, self.train_labels, self.test_labels)

    @property
    def held_out(self) -> HeldOut:
        """The split's ids (positions when it was made without them)."""
        if self.train_ids is None or self.test_ids is None:
            return HeldOut(np.arange(len(self.train_labels)), np.arange(len(self.test_labels)))
        return HeldOut(self.train_ids, self.test_ids)


def split_generated(
    images: Tensor,
    labels: Tensor,
    *,
    test_fraction: float,
    seed: int,
    held_out: HeldOut | None,
    allow_missing: bool,
    source: str,
) -> ImageSplit:
    """Generated images split stratified by class from ``seed``, or as a run recorded it
    (``held_out``); item ids are positions in the generated set."""
    ids = np.arange(len(labels))
    if held_out is None:
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    else:
        train_idx, test_idx = held_out.positions(ids, source=source, allow_missing=allow_missing)
    return ImageSplit.select(images, labels, ids, train_idx, test_idx)


@dataclass(frozen=True)
class SetSplit:
    """Sets divided into training and held-out ones: positions, ids and their fingerprint."""

    train_index: Tensor  # (n_train,) positions into the sets
    validation_index: Tensor  # (n_held,)
    held_out: HeldOut
    fingerprint: str


def split_sets(
    palettes: "Palettes",
    *,
    validation_objects: int,
    seed: int,
    held_out: HeldOut | None = None,
    allow_missing: bool = False,
    source: str,
) -> SetSplit:
    """A seeded held-out subset of ``validation_objects`` objects (at most a fifth of them),
    or a run's recorded split found again by object id; both sides in id order."""
    sets, n = palettes.sets, len(palettes)
    if held_out is None:
        held = min(validation_objects, n // 5)
        if held < 2:
            raise UserError(f"{n} objects are too few to train on; expected at least 10")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        validation_index, train_index = order[:held].sort().values, order[held:].sort().values
    else:
        train_index, validation_index = held_out.positions(
            palettes.ids, source=source, allow_missing=allow_missing
        )
    both = torch.cat([train_index, validation_index])
    ids = palettes.ids
    return SetSplit(
        train_index,
        validation_index,
        HeldOut(ids[train_index.numpy()], ids[validation_index.numpy()]),
        fingerprint(ids[both.numpy()], sets.values[both], sets.mask[both]),
    )
