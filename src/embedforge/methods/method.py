"""What a self-supervised method is to the trainer: a loss module over two views that may
carry heads and a momentum target of the encoder, and keeps all of its state in its own
``state_dict``.

A method is the trainer's ``loss_fn``: it is optimised with the encoder (its projector and
predictor are loss parameters, as SimCLR's head is in :mod:`embedforge.losses.projected`),
checkpointed with the run and reloaded by ``evaluate``; ``model(x)`` stays the embedding that
is exported and probed. Two call shapes (``calls``, read by the tasks through
:func:`embedforge.losses.loss_config.views_loss`):

* ``two_views``: ``method(z1, z2)`` with the encoder's (B, D) embeddings of two views of the
  same B items (SimCLR, SimSiam, Barlow Twins, VICReg);
* ``momentum_views``: ``method(z1, z2, t1, t2)``, plus the same views through
  ``method.target_encoder`` (no gradient) — BYOL, MoCo, DINO. After every optimizer step the
  trainer calls :meth:`Method.after_optimizer_step`, which moves the target towards the
  online encoder and heads.

Distributed: the tasks gather every embedding of the global batch before calling the
method (:mod:`embedforge.train.distributed`), so its heads, its statistics (Barlow Twins'
cross-correlation, VICReg's covariance, DINO's centre), its queue and its target update see
the same global batch on every rank, and stay identical across ranks without any
communication of their own.

A buffer ``step`` counts optimizer steps (for the momentum schedule), so a resumed run
continues the schedule exactly; ``total_steps`` is set by the trainer once it knows the
schedule's length.
"""

from typing import ClassVar

import torch
from torch import Tensor, nn

from embedforge.config import Section
from embedforge.losses.loss_config import Call
from embedforge.methods.momentum import cosine_momentum, ema_update, frozen_copy


class MethodConfig(Section):
    """What every method's recipe section shares: ``name`` plus its settings."""

    calls: ClassVar[frozenset[Call]] = frozenset({"two_views"})

    def options(self) -> dict[str, object]:
        """The keyword arguments of the method's class (everything but ``name``)."""
        return self.model_dump(exclude={"name"})


class Method(nn.Module):
    """A method without a target network: ``forward(z1, z2)`` is the loss."""

    calls: ClassVar[frozenset[Call]] = frozenset({"two_views"})

    def __init__(self) -> None:
        super().__init__()
        self.target_encoder: nn.Module | None = None  # a MomentumMethod's copy of the encoder
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.total_steps = 0

    def after_optimizer_step(self) -> None:
        """Count the step (a method with a target moves it here too)."""
        self.step += 1


class MomentumMethod(Method):
    """A method whose target is a momentum copy of the encoder and of one online head.

    ``momentum`` is the EMA rate at the first step, raised to ``final_momentum`` over
    training on the cosine of :func:`~embedforge.methods.momentum.cosine_momentum` (set
    ``final_momentum`` equal to ``momentum`` for a constant rate, as MoCo v2 has).
    """

    calls: ClassVar[frozenset[Call]] = frozenset({"momentum_views"})

    def __init__(
        self, encoder: nn.Module, head: nn.Module, *, momentum: float, final_momentum: float
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum <= final_momentum <= 1.0:
            raise ValueError(
                f"need 0 <= momentum <= final_momentum <= 1, got {momentum}, {final_momentum}"
            )
        self.head = head
        self.target_encoder = frozen_copy(encoder)
        self.target_head = frozen_copy(head)
        self._online_encoder = (encoder,)  # a tuple: the encoder is not this module's part
        self.base_momentum, self.final_momentum = momentum, final_momentum

    def momentum(self) -> float:
        """The EMA rate of the next update."""
        step = int(self.step)
        return cosine_momentum(step, self.total_steps, self.base_momentum, self.final_momentum)

    def after_optimizer_step(self) -> None:
        rate = self.momentum()
        ema_update(self.target_encoder, self._online_encoder[0], rate)
        ema_update(self.target_head, self.head, rate)
        super().after_optimizer_step()

    def target(self, t: Tensor) -> Tensor:
        """The target head on target-encoder embeddings, with no gradient."""
        with torch.no_grad():
            return self.target_head(t)


__all__ = ["Method", "MethodConfig", "MomentumMethod"]
