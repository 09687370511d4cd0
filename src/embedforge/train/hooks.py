"""What a training method may add to the one loop without forking it.

lightly's BYOL example keeps its momentum update as one call per step, and timm's
``ModelEmaV3`` is one small object with its own state dict: the same here. The trainer calls
these on its task (and :func:`~embedforge.train.fit.fit` on the hooks it is given) at fixed
points; every method is a no-op by default, so a task overrides only what it needs:

* ``after_optimizer_step()`` — after each optimizer step (a momentum target's EMA update);
* ``on_epoch_end(epoch)`` — after an epoch's validation (a temperature or momentum schedule);
* ``state_dict()`` / ``load_state_dict(state)`` — extra state (a target network, a queue of
  negatives) saved in the resume point and restored exactly on ``--resume``.
"""

from typing import Any


class TrainingHooks:
    """No-op hooks; a task or method overrides the ones it needs."""

    def after_optimizer_step(self) -> None:
        """Called after every optimizer step."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called once an epoch is trained and validated."""

    def state_dict(self) -> dict[str, Any]:
        """Extra state the resume point must hold (tensors, numbers, nests of them)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a resumed run's)."""
        if state:
            raise ValueError(f"{type(self).__name__} holds no state, got keys {sorted(state)}")
