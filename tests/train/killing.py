"""A run killed right after it writes its first resume point, for the resume tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from embedforge.files.run_folder import LAST
from embedforge.train import run_log as run_log_module


class Killed(Exception):
    """Stands for the process being killed after its first resume point."""


@contextmanager
def killed_after_first_resume_point(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The training run inside stops (raises :class:`Killed`, caught here) as soon as its
    first ``last`` checkpoint is on disk."""
    save_state = run_log_module.save_state

    def killed(path: Path, state: dict) -> None:
        save_state(path, state)
        if path.name == Path(LAST).name:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(run_log_module, "save_state", killed)
        with pytest.raises(Killed):
            yield
