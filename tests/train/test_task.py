"""The task helpers: a rank's rows of a global batch."""

from collections.abc import Callable

import pytest
import torch

from embedforge.train import task
from embedforge.views.batch_rows import BatchRows


@pytest.mark.parametrize("count", [6, 7, 8])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_rank_rows_split_as_tensor_split(
    as_rank: Callable[[int, int], None], count: int, world_size: int
) -> None:
    batch = torch.arange(count)
    for rank, expected in enumerate(batch.tensor_split(world_size)):
        as_rank(rank, world_size)
        rows = task.rank_rows(count)
        assert rows.total == count
        assert torch.equal(batch[rows.start : rows.stop], expected)
        assert torch.equal(task.rank_slice(batch), expected)


def test_one_process_has_every_row() -> None:
    assert task.rank_rows(5) == BatchRows.whole(5)
