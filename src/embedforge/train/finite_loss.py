"""Training stops at the first non-finite loss, naming where, before anything is saved.

A NaN loss poisons every weight at the next optimizer step, and nothing later looks wrong
until the metrics do (or, with a NaN validation metric, no best checkpoint is ever written
and the run fails later as "not a run folder"). The guard watches each step's loss. On the
CPU reading it costs nothing, so the step that failed stops the run at once; on a GPU,
reading a value makes the host wait for the device every step, so the first bad step is
recorded on the device and read at the end of the epoch, when the loop reads the epoch's
loss anyway: at most that epoch's remaining steps run, and neither checkpoint is written.
"""

import torch
from torch import Tensor

from embedforge.errors import UserError

ADVICE = "lower optimizer.lr, or train without mixed precision (--set train.amp=false)"


class FiniteLossGuard:
    """Watches the losses of one epoch (``watch`` each step, ``check`` at its end).

    >>> guard = FiniteLossGuard(torch.device("cpu"), epoch=2)
    >>> guard.watch(torch.tensor(0.5), step=0)
    >>> guard.watch(torch.tensor(float("nan")), step=1)
    Traceback (most recent call last):
    ...
    embedforge.errors.UserError: epoch 2, step 1: the training loss is nan; training stopped \
before saving it; lower optimizer.lr, or train without mixed precision (--set train.amp=false)
    """

    def __init__(self, device: torch.device, *, epoch: int) -> None:
        self.epoch, self.at_once = epoch, device.type == "cpu"
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # step, or -1
        self.bad_value = torch.zeros((), device=device)

    def watch(self, loss: Tensor, *, step: int) -> None:
        value = loss.detach().float()
        bad = ~torch.isfinite(value)
        if self.at_once:
            if bad:
                self._stop(step, value.item())
            return
        first = bad & (self.first_bad < 0)
        self.first_bad = torch.where(first, step, self.first_bad)
        self.bad_value = torch.where(first, value, self.bad_value)

    def check(self) -> None:
        """Raise if a step of the epoch had a non-finite loss (the GPU's deferred read)."""
        step = int(self.first_bad.item())
        if step >= 0:
            self._stop(step, self.bad_value.item())

    def _stop(self, step: int, value: float) -> None:
        raise UserError(
            f"epoch {self.epoch}, step {step}: the training loss is {value}; training stopped "
            f"before saving it; {ADVICE}"
        )
