"""What the trainer needs from a kind of data: batches, the loss of a batch, validation metrics.

The loop in :mod:`embedforge.train.trainer` is the same for labelled images and
for self-supervised palettes; a task holds what differs (the data, the model,
the loss, how views are made) behind these few methods.
"""

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn

from embedforge.data.set_batch import SetBatch
from embedforge.data.split import HeldOut
from embedforge.train.distributed import rank, world_size
from embedforge.views.batch_rows import BatchRows

Batch = TypeVar("Batch", Tensor, SetBatch)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of everything random in ``epoch``, so a resumed run needs no saved RNG state."""
    return seed * 1_000_003 + epoch


def shuffled_batches(count: int, batch_size: int, *, seed: int, epoch: int) -> Iterator[Tensor]:
    """The epoch's global batches of indices into ``count`` items; a ragged last one is dropped."""
    shuffle = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    order = torch.randperm(count, generator=shuffle)
    yield from order[: (count // batch_size) * batch_size].split(batch_size)


def rank_rows(count: int) -> BatchRows:
    """This rank's contiguous rows of a global batch of ``count`` (all of them on one process).

    Split as ``Tensor.tensor_split`` does: the first ``count % world_size`` ranks get one more.

    >>> rank_rows(6)  # not distributed here
    BatchRows(start=0, stop=6, total=6)
    """
    size, extra = divmod(count, world_size())
    start = rank() * size + min(rank(), extra)
    return BatchRows(start, start + size + (rank() < extra), count)


def rank_slice(global_batch: Batch) -> Batch:
    """This rank's contiguous part of a global batch (the whole of it on one process)."""
    rows = rank_rows(len(global_batch))
    return global_batch[rows.start : rows.stop]


class TrainingTask(Protocol):
    """What the loop (:mod:`embedforge.train.loop`) asks of a kind of data; with the
    :class:`~embedforge.train.hooks.TrainingHooks` methods (no-ops unless a method adds
    steps or state of its own)."""

    model: nn.Module  # what is checkpointed and later embeds
    loss_fn: nn.Module  # may hold parameters (ArcFace's class weights)

    def num_batches(self) -> int:
        """Batches per epoch (for the schedule)."""
        ...

    def batches(self, epoch: int) -> Iterable[Any]:
        """The epoch's batches; the order depends only on (seed, epoch).

        Under torchrun, this rank's slice of each global batch (ImageTask), or the global
        batch itself where ``batch_loss`` slices it after making views (SetTask).
        """
        ...

    def batch_loss(self, batch: Any, generator: torch.Generator) -> Tensor:
        """Views, forward and loss of one batch (views drawn from ``generator``)."""
        ...

    def validate(self) -> dict[str, float]:
        """Metrics on held-out data, under their PML names where PML has them."""
        ...

    def after_optimizer_step(self) -> None: ...

    def on_epoch_end(self, epoch: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RecipeTask(TrainingTask, Protocol):
    """A task built from a recipe's data source, whose run records what it trains on."""

    held_out: HeldOut  # the split, by item id (recorded in the run folder)
    fingerprint: str  # of the split's items (see embedforge.data.split.fingerprint)
