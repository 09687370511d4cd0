"""P classes x K samples per batch, so every batch holds positives for the miners.

Metric-learning losses that mine inside the batch (triplet batch-hard, SupCon,
contrastive pairs) need several items of each class present at once; a plain
shuffle of a dataset with many classes gives batches with almost no positive
pair. Hermans et al., "In Defense of the Triplet Loss for Person
Re-Identification", 2017, arXiv:1703.07737, introduced this "PK" batch.
pytorch-metric-learning's ``MPerClassSampler`` is the same idea.

Choices made here (and why):

* Only classes with at least ``min_class_size`` items (default 2) are drawn: a
  class of one item repeated K times gives "positives" at distance 0, which
  teach nothing. Set ``min_class_size=1`` to draw every class (PML draws every
  class).
* A class with at least K items gives K distinct items; one with fewer gives
  all of its items once and fills the rest by drawing its items again at random
  (PML draws all K with replacement, which can repeat an item needlessly).
* The P classes of a batch are drawn uniformly without replacement, afresh for
  each batch; a batch is laid out class by class (K of one class, then K of the
  next).
* Randomness comes only from ``(seed, epoch)``: the same pair gives the same
  batches, on any machine. Call :meth:`PKSampler.set_epoch` before each epoch
  for a new draw.

For distributed training every rank can build the same sampler with the same
seed and take its share of :meth:`PKSampler.batches` (e.g. every
``world_size``-th batch from ``rank``); nothing here depends on the process.
"""

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch.utils.data import Sampler

from embedforge.config import Section
from embedforge.registry import SAMPLERS


class PKSampler(Sampler[int]):
    """Yields dataset indices in batches of ``p`` classes x ``k`` items each.

    Use it as a DataLoader's ``sampler`` with ``batch_size=sampler.batch_size``
    (``p * k``); ``len(sampler)`` is ``num_batches * batch_size`` indices.

    Args:
        labels: (n,) integer class of each dataset item.
        p: classes per batch.
        k: items per class per batch.
        num_batches: batches per epoch; default ``max(1, n_eligible // (p * k))``
            where ``n_eligible`` counts the items of the classes that are drawn,
            so an epoch has about as many items as the dataset.
        seed: with the epoch, the only source of randomness.
        min_class_size: smallest class that is drawn (see the module notes).

    >>> labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    >>> sampler = PKSampler(labels, p=2, k=3, num_batches=2, seed=0)
    >>> sampler.batch_size, len(sampler)
    (6, 12)
    >>> batch = next(sampler.batches())
    >>> sorted(labels[i] for i in batch).count(labels[batch[0]])
    3
    >>> from torch.utils.data import DataLoader
    >>> loader = DataLoader(torch.arange(10), sampler=sampler, batch_size=sampler.batch_size)
    >>> [tuple(b.shape) for b in loader]
    [(6,), (6,)]
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        *,
        p: int,
        k: int,
        num_batches: int | None = None,
        seed: int = 0,
        min_class_size: int = 2,
    ) -> None:
        for name, value in (("p", p), ("k", k), ("min_class_size", min_class_size)):
            if value < 1:
                raise ValueError(f"PKSampler: {name} must be at least 1; got {value}")
        labels_np = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if labels_np.ndim != 1 or (labels_np.size and labels_np.dtype.kind not in "iub"):
            raise ValueError(
                f"PKSampler: labels must be a 1-D array of integers; "
                f"got shape {labels_np.shape} and dtype {labels_np.dtype}"
            )
        self.p, self.k, self.seed, self.min_class_size = p, k, seed, min_class_size
        self.batch_size = p * k
        self.epoch = 0
        self.class_indices = _indices_per_class(labels_np, min_class_size)
        if len(self.class_indices) < p:
            num_classes = len(np.unique(labels_np))
            raise ValueError(
                f"PKSampler: p={p} classes per batch, but only {len(self.class_indices)} of the "
                f"{num_classes} classes have at least min_class_size={min_class_size} items"
            )
        if num_batches is None:
            num_eligible = sum(len(indices) for indices in self.class_indices)
            num_batches = max(1, num_eligible // self.batch_size)
        if num_batches < 1:
            raise ValueError(f"PKSampler: num_batches must be at least 1; got {num_batches}")
        self.num_batches = num_batches

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of this epoch next (the same epoch always draws the same)."""
        self.epoch = epoch

    def batches(self) -> Iterator[list[int]]:
        """The epoch's batches, each a list of ``batch_size`` dataset indices."""
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.num_batches):
            classes = rng.choice(len(self.class_indices), size=self.p, replace=False)
            batch = [_draw(self.class_indices[c], self.k, rng) for c in classes]
            yield np.concatenate(batch).tolist()

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch

    def __len__(self) -> int:
        return self.num_batches * self.batch_size


def _indices_per_class(labels: np.ndarray, min_class_size: int) -> list[np.ndarray]:
    """Dataset indices of each class with at least ``min_class_size`` items, classes sorted."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    return [indices for indices in by_class if len(indices) >= min_class_size]


def _draw(indices: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k of a class's indices: distinct when it has k, else all of them plus random repeats."""
    if len(indices) >= k:
        return rng.choice(indices, size=k, replace=False)
    repeats = rng.choice(indices, size=k - len(indices), replace=True)
    return np.concatenate([rng.permutation(indices), repeats])


class PKConfig(Section):
    """P classes × K items per batch, so in-batch miners always find positives."""

    name: Literal["pk"] = "pk"
    p: int = Field(gt=1, description="classes per batch")
    k: int = Field(gt=1, description="items per class")


@SAMPLERS.register(PKConfig)
def build(config: PKConfig, labels: "torch.Tensor", seed: int) -> PKSampler:
    return PKSampler(labels, p=config.p, k=config.k, seed=seed)
