"""Cross-batch memory: a FIFO of past embeddings that a metric-learning loss also compares with.

Wang, Zhang, Huang & Scott, "Cross-Batch Memory for Embedding Learning", CVPR 2020,
arXiv:1912.06798. Embeddings drift slowly once training settles, so those of the last few
thousand items are still good references: each anchor of a batch meets memory-size
positives and negatives instead of batch-size ones, for the price of a (B, M) matrix.

Same semantics as pytorch-metric-learning's ``CrossBatchMemory`` (whose numbers the tests
check): the batch is enqueued first, the anchors are the batch and the references are
everything in the memory, each anchor's own copy excluded; the memory holds detached
embeddings, so the gradient flows through the anchors only. Unlike PML's, the queue's
position and fill are buffers, so a checkpoint resumes the memory exactly, and only a
module in training mode enqueues (validation batches never enter the memory).

Distributed: :func:`~embedforge.train.distributed.global_batch_loss` gathers the batch
before the loss, so every rank enqueues the same global batch in the same order and the
memories stay identical (PML's gathered memory order differs per rank).
"""

import torch
from torch import Tensor, nn

from embedforge.losses.references import References


class CrossBatchMemory(nn.Module):
    """``loss`` over the batch against a FIFO of the last ``memory_size`` embeddings (XBM).

    Why: a batch of 128 holds few hard negatives and, for re-identification with many
    identities, often one positive per anchor; a memory of thousands holds many of both
    (arXiv:1912.06798). Wraps any loss whose labelled call takes ``references=``: triplet
    margin (every mining mode), contrastive, SupCon, NT-Xent with labels, multi-similarity.

    Shapes: ``embeddings`` (B, D) with D = ``embedding_size``, ``labels`` (B,) int ->
    scalar; B must not exceed ``memory_size``. In training mode the batch is enqueued
    first (oldest entries overwritten); in eval mode the memory is only read.

    >>> from embedforge.losses.contrastive import ContrastiveLoss
    >>> loss = CrossBatchMemory(ContrastiveLoss(), embedding_size=2, memory_size=4)
    >>> x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    >>> loss(x, y).item()  # two negatives at distance sqrt(2) > 1: nothing to push
    0.0
    >>> round(loss(torch.tensor([[1.0, 0.1], [0.6, 0.8]]), y).item(), 4)  # vs 4 stored rows
    0.5318
    >>> int(loss.num_filled)
    4
    """

    embedding_memory: Tensor
    label_memory: Tensor
    next_slot: Tensor
    num_filled: Tensor

    def __init__(self, loss: nn.Module, embedding_size: int, memory_size: int = 1024) -> None:
        super().__init__()
        if embedding_size <= 0 or memory_size <= 0:
            raise ValueError(
                f"embedding_size and memory_size must be > 0, got {embedding_size}, {memory_size}"
            )
        self.loss = loss
        self.embedding_size = embedding_size
        self.memory_size = memory_size
        self.register_buffer("embedding_memory", torch.zeros(memory_size, embedding_size))
        self.register_buffer("label_memory", torch.zeros(memory_size, dtype=torch.int64))
        self.register_buffer("next_slot", torch.zeros((), dtype=torch.int64))
        self.register_buffer("num_filled", torch.zeros((), dtype=torch.int64))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must be (B, {self.embedding_size}), got {tuple(embeddings.shape)}"
            )
        if len(embeddings) > self.memory_size:
            raise ValueError(
                f"a batch of {len(embeddings)} does not fit a memory of {self.memory_size}"
            )
        labels = labels.to(embeddings.device)
        if self.embedding_memory.dtype != embeddings.dtype:  # e.g. float64 for gradcheck
            self.embedding_memory = self.embedding_memory.to(embeddings.dtype)
        if self.training:
            own_column = self._enqueue(embeddings.detach(), labels)  # (B,)
        else:
            own_column = torch.full_like(labels, -1, dtype=torch.int64)  # (B,)
        filled = int(self.num_filled)
        references = References(
            self.embedding_memory[:filled], self.label_memory[:filled], own_column
        )
        return self.loss(embeddings, labels, references=references)

    @torch.no_grad()
    def _enqueue(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Write the batch over the oldest slots; returns the (B,) slots it went to. Slots
        fill from 0 upwards, so the first ``num_filled`` are exactly the stored entries."""
        size = len(embeddings)
        start = int(self.next_slot)
        slots = torch.arange(start, start + size, device=embeddings.device) % self.memory_size
        self.embedding_memory[slots] = embeddings
        self.label_memory[slots] = labels.to(torch.int64)
        self.next_slot.fill_((start + size) % self.memory_size)
        self.num_filled.fill_(min(int(self.num_filled) + size, self.memory_size))
        return slots

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, memory_size={self.memory_size}"


__all__ = ["CrossBatchMemory"]
