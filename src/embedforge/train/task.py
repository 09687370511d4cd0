"""What the trainer needs from a kind of data: batches, the loss of a batch, validation metrics.

The loop in :mod:`embedforge.train.trainer` is the same for labelled images and
for self-supervised palettes; a task holds what differs (the data, the model,
the loss, how views are made) behind these few methods.
"""

from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import Tensor, nn


class TrainingTask(Protocol):
    model: nn.Module  # what is checkpointed and later embeds
    loss_fn: nn.Module  # may hold parameters (ArcFace's class weights)

    def num_batches(self) -> int:
        """Batches per epoch (for the schedule)."""
        ...

    def batches(self, epoch: int) -> Iterable[Any]:
        """The epoch's batches; the order depends only on (seed, epoch)."""
        ...

    def batch_loss(self, batch: Any, generator: torch.Generator) -> Tensor:
        """Views, forward and loss of one batch (views drawn from ``generator``)."""
        ...

    def validate(self) -> dict[str, float]:
        """Metrics on held-out data, under their PML names where PML has them."""
        ...
