"""Fixtures of the training tests: a process that the task helpers take for one of N ranks."""

from collections.abc import Callable

import pytest

from embedforge.train import task


@pytest.fixture
def as_rank(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, int], None]:
    """``as_rank(r, n)``: from now on ``rank_rows`` and ``rank_slice`` see rank r of n ranks.

    Only how a task cuts its global batches changes; no process group is started, so the
    gathers still pass through and a loss sees this rank's slice alone.
    """

    def become(rank: int, world_size: int) -> None:
        monkeypatch.setattr(task, "rank", lambda: rank)
        monkeypatch.setattr(task, "world_size", lambda: world_size)

    return become
