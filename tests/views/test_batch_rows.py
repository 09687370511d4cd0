"""BatchRows: a rank's rows of a global batch, and draws that cover the whole of it."""

import pytest
import torch

from embedforge.views.batch_rows import BatchRows


@pytest.mark.parametrize("start,stop", [(-1, 2), (3, 2), (0, 7)])
def test_rows_outside_the_batch_are_refused(start: int, stop: int) -> None:
    with pytest.raises(ValueError, match="not within a batch of 6"):
        BatchRows(start, stop, total=6)


def test_whole_is_every_row() -> None:
    assert BatchRows.whole(5) == BatchRows(0, 5, 5) and BatchRows.whole(5).count == 5


@pytest.mark.parametrize("start,stop", [(0, 6), (0, 2), (2, 4), (4, 6), (3, 3)])
def test_draws_are_the_global_batchs_rows_and_advance_the_generator_alike(
    start: int, stop: int
) -> None:
    whole = torch.Generator().manual_seed(0)
    expected = torch.rand(6, generator=whole)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(BatchRows(start, stop, 6).rand(generator), expected[start:stop])
    assert torch.equal(torch.rand(3, generator=generator), torch.rand(3, generator=whole))
