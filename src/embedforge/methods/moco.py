"""MoCo v2 and v3: a query encoder against the keys of a momentum encoder.

* v2 (Chen et al., 2020, arXiv:2003.04297; MoCo, He et al., 2019, arXiv:1911.05722): the
  key of the other view is the positive and a FIFO queue of past keys the negatives
  (InfoNCE, temperature 0.2); the queue is filled with the keys of the gathered global batch,
  so it is identical on every rank (lightly's memory bank is reported not to be gathered).
  The paper's queue holds 65,536 keys and its momentum is a constant 0.999 for ImageNet's
  200 epochs; the defaults here (4,096 keys, 0.99) suit data sets of thousands of items.
  The queue starts empty and negatives are its filled part (no random initial keys).
  Not done: MoCo's shuffled batch norm (a multi-GPU trick against BN leaking the positive).
* v3 (Chen, Xie & He, 2021, arXiv:2104.02057): no queue — the other view's keys in the batch
  are the negatives — a predictor on the query branch, the loss scaled by 2τ and symmetrised,
  and the momentum raised from 0.99 to 1 on a cosine.
"""

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.loss_config import Call
from embedforge.losses.queue_infonce import enqueue, moco_v3_loss, queue_infonce_loss
from embedforge.methods.heads import MLPHead
from embedforge.methods.method import MethodConfig, MomentumMethod
from embedforge.registry import METHODS


class MoCo(MomentumMethod):
    """``forward(z1, z2, t1, t2)``; ``version`` "v2" (queue) or "v3" (in-batch keys).

    >>> moco = MoCo(nn.Linear(4, 8), 8, hidden_dim=16, projection_dim=8, queue_size=10)
    >>> z, t = torch.randn(6, 8), torch.randn(6, 8)
    >>> loss = moco(z, z, t, t)
    >>> int(moco.queue_filled)  # the keys of the batch went into the queue
    6
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        version: Literal["v2", "v3"] = "v2",
        hidden_dim: int = 256,
        projection_dim: int = 64,
        queue_size: int = 4096,
        temperature: float = 0.2,
        momentum: float = 0.99,
        final_momentum: float | None = None,
        symmetric: bool = False,
    ) -> None:
        if final_momentum is None:  # v2's rate is constant, v3's cosine-raised to 1
            final_momentum = momentum if version == "v2" else 1.0
        projector = MLPHead(embedding_dim, hidden_dim, projection_dim)
        super().__init__(encoder, projector, momentum=momentum, final_momentum=final_momentum)
        self.version, self.temperature, self.symmetric = version, temperature, symmetric
        self.predictor = (
            MLPHead(projection_dim, hidden_dim, projection_dim) if version == "v3" else None
        )
        size = queue_size if version == "v2" else 0
        self.register_buffer("queue", torch.zeros(size, projection_dim))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.int64))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.int64))

    def forward(self, z1: Tensor, z2: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
        n = len(z1)
        queries = self.head(torch.cat([z1, z2]))  # (2B, dim)
        if self.predictor is not None:
            queries = self.predictor(queries)
        keys = F.normalize(self.target(torch.cat([t1, t2])), dim=1)  # (2B, dim)
        q1, q2, k1, k2 = queries[:n], queries[n:], keys[:n], keys[n:]
        if self.version == "v3":  # symmetrised, as in the paper
            return moco_v3_loss(q1, k2, temperature=self.temperature) + moco_v3_loss(
                q2, k1, temperature=self.temperature
            )
        negatives = self.queue[: int(self.queue_filled)]  # (filled, dim)
        loss = queue_infonce_loss(q1, k2, negatives, temperature=self.temperature)
        if self.symmetric:
            loss = (loss + queue_infonce_loss(q2, k1, negatives, temperature=self.temperature)) / 2
        if self.training:  # validation leaves the queue as training left it
            self._enqueue(torch.cat([k2, k1]) if self.symmetric else k2)
        return loss

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        queue, pointer = enqueue(self.queue, self.queue_pointer, keys.to(self.queue.dtype))
        self.queue.copy_(queue)
        self.queue_pointer.copy_(pointer)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + len(keys), max=len(self.queue)))


class MoCoConfig(MethodConfig):
    """MoCo v2 (a queue of momentum keys as negatives) or v3 (in-batch keys, a predictor)."""

    calls: ClassVar[frozenset[Call]] = frozenset({"momentum_views"})

    name: Literal["moco"] = "moco"
    version: Literal["v2", "v3"] = "v2"
    hidden_dim: int = Field(256, gt=0)
    projection_dim: int = Field(64, gt=0)
    queue_size: int = Field(4096, gt=0, description="v2's queue of negative keys")
    temperature: float = Field(0.2, gt=0)
    momentum: float = Field(0.99, ge=0, le=1, description="key encoder EMA rate")
    final_momentum: float | None = Field(
        None, ge=0, le=1, description="cosine-raised to this (default: v2 constant, v3 1.0)"
    )
    symmetric: bool = Field(False, description="v2: both views as queries (v3 always is)")


@METHODS.register(MoCoConfig)
def build(config: MoCoConfig, shapes: Shapes, encoder: nn.Module) -> MoCo:
    return MoCo(encoder, shapes.embedding_dim, **config.options())


__all__ = ["MoCo"]
