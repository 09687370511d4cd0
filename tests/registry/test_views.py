"""Contract tests for every registered view preset (embedforge.registry.VIEWS, SET_VIEWS).

Each keeps shapes and value ranges, is reproducible from the generator's seed, and draws the
same view for an item whether the batch is split over ranks or not (image presets' ``rows``).
"""

import pytest
import torch

from embedforge.data.set_batch import SetBatch
from embedforge.registry import SET_VIEWS, VIEWS
from embedforge.views.batch_rows import BatchRows


@pytest.mark.parametrize("name", VIEWS.names())
def test_every_image_preset(name: str) -> None:
    views = VIEWS[name].target()
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for pipeline in (views, views.second_view()):
        out = pipeline(x, torch.Generator().manual_seed(1))
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= 0 and out.max() <= 1
        torch.testing.assert_close(pipeline(x, torch.Generator().manual_seed(1)), out)
        halves = [
            pipeline(x[start:stop], torch.Generator().manual_seed(1), BatchRows(start, stop, 6))
            for start, stop in ((0, 3), (3, 6))
        ]
        torch.testing.assert_close(torch.cat(halves), out)


@pytest.mark.parametrize("name", SET_VIEWS.names())
def test_every_set_preset(name: str) -> None:
    views = SET_VIEWS[name].target()
    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    values = torch.rand(2, 4, 4, generator=generator) * mask.unsqueeze(-1)
    values[..., 0] = values[..., 0] / values[..., 0].sum(dim=1, keepdim=True)
    view = views(SetBatch(values, mask), torch.Generator().manual_seed(1))
    assert view.values.shape == values.shape and view.mask.sum() <= mask.sum()
    torch.testing.assert_close(view.values[..., 0].sum(dim=1), torch.ones(2))
    again = views(SetBatch(values, mask), torch.Generator().manual_seed(1))
    torch.testing.assert_close(again.values, view.values)
