"""What a training run writes as it goes (rank 0 only): history, TensorBoard, checkpoints.

* ``metrics.jsonl``: one JSON line per epoch, appended (1 ms an epoch, which short epochs
  notice, instead of rewriting the file): a kill can at most cut the last line short, and
  :func:`~embedforge.files.run_folder.read_history` drops it;
* TensorBoard events with the same numbers, when ``tensorboard`` is installed
  (``pip install embedforge[tensorboard]``);
* ``checkpoints/best.safetensors`` when an epoch is the best so far, and the resume point
  ``checkpoints/last.safetensors`` at most every ``interval_s`` seconds (a few ms each), and
  always when asked (the last epoch, an early stop). The epoch's history line is written
  before its resume point, so a kill between the two cannot lose the row.

A log without a folder (``run_dir=None``: :func:`~embedforge.train.fit.fit` without one) or on
another rank writes nothing.
"""

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedforge.files.atomic import atomic_write_text
from embedforge.files.run_folder import BEST, HISTORY, LAST, TENSORBOARD
from embedforge.files.state import save_state


class RunLog:
    """The files of one run, written as epochs end."""

    def __init__(
        self, run_dir: Path | None, kept: list[dict[str, Any]], *, interval_s: float, main: bool
    ) -> None:
        self.run_dir = run_dir if main else None
        self.interval_s = interval_s
        self.last_saved = time.monotonic()
        self.history = self.events = None
        if self.run_dir is None:
            return
        text = "".join(json.dumps(row) + "\n" for row in kept)  # a resumed run's earlier rows
        atomic_write_text(self.run_dir / HISTORY, text)
        self.history = (self.run_dir / HISTORY).open("a", encoding="utf-8")
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.events = SummaryWriter(self.run_dir / TENSORBOARD)  # a resume adds a file

    def record(self, row: dict[str, Any]) -> None:
        """Append an epoch's row (``epoch`` and its numbers)."""
        if self.history is None:
            return
        self.history.write(json.dumps(row) + "\n")
        self.history.flush()
        if self.events is not None:
            for name, number in row.items():
                if name != "epoch":
                    self.events.add_scalar(name, number, row["epoch"])
            self.events.flush()

    def save_best(self, state: dict[str, Any]) -> None:
        if self.run_dir is not None:
            save_state(self.run_dir / BEST, state)

    def save_last(self, state: Callable[[], dict[str, Any]], *, now: bool) -> None:
        """Write the resume point ``state()`` if the interval has passed or ``now``."""
        due = time.monotonic() - self.last_saved >= self.interval_s
        if self.run_dir is not None and (due or now):
            save_state(self.run_dir / LAST, state())
            self.last_saved = time.monotonic()

    def close(self) -> None:
        if self.history is not None:
            self.history.close()
        if self.events is not None:
            self.events.close()
