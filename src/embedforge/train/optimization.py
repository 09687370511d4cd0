"""The optimizer's side of a step: scaled backward, accumulation, clipping, the schedule.

Mixed precision (on a GPU only) scales the loss with a ``GradScaler``; gradients accumulate
over ``accumulation_steps`` batches (the loss divided by it, so the step sees their mean) and
are clipped to ``clip_grad_norm`` before the optimizer and the per-step schedule step.
"""

from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn


class Optimization:
    """One optimizer, its schedule and scaler, stepped as the loop's batches come."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: torch.optim.lr_scheduler.LRScheduler,
        *,
        device: torch.device,
        amp: bool,
        accumulation_steps: int = 1,
        clip_grad_norm: float | None = None,
    ) -> None:
        self.optimizer, self.schedule = optimizer, schedule
        self.device, self.amp = device, amp
        self.accumulation_steps, self.clip_grad_norm = accumulation_steps, clip_grad_norm
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp)

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward's precision: float16 autocast under mixed precision, else as is."""
        return torch.autocast(self.device.type, enabled=self.amp)

    def backward(self, loss: Tensor, *, step: int, last_step: int) -> bool:
        """Backward ``loss``; step the optimizer when the accumulation is due (or the epoch
        ends). Returns whether it stepped."""
        self.scaler.scale(loss / self.accumulation_steps).backward()
        if (step + 1) % self.accumulation_steps and step != last_step:
            return False
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(parameters, self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
