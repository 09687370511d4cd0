"""Which epoch is best, and when to stop early: decided from the validation metrics alone.

Every rank sees the same metrics (rank 0's, broadcast), so every rank decides the same.
"""

import math
from dataclasses import dataclass


@dataclass
class BestEpoch:
    """The best validated epoch so far by ``metric`` (higher is better), and early stopping
    after ``patience`` validated epochs without improvement. ``metric=None``: no validation,
    every epoch is the best so far (the last weights are the best weights).

    >>> best = BestEpoch("p", patience=1)
    >>> best.update(0, {"p": 0.5}), best.update(1, {"p": 0.4}), best.stops(1, validated=True)
    (True, False, True)
    """

    metric: str | None
    patience: int | None = None
    value: float = -math.inf
    epoch: int = -1

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Take an epoch's metrics ({} when not validated); whether it is the new best."""
        if self.metric is None:
            self.epoch = epoch
            return True
        value = metrics.get(self.metric, -math.inf)  # unvalidated epochs never improve
        if value > self.value:
            self.value, self.epoch = value, epoch
            return True
        return False

    def stops(self, epoch: int, *, validated: bool) -> bool:
        """Whether training stops after ``epoch`` (patience spent at a validated epoch)."""
        return validated and self.patience is not None and epoch - self.epoch >= self.patience
