import numpy as np
import pytest
import torch

from embedforge.data.set_batch import SetBatch


def make_batch() -> SetBatch:
    values = torch.arange(3 * 4 * 2, dtype=torch.float32).reshape(3, 4, 2)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    return SetBatch(values * mask[..., None], mask)


def test_len_and_shape_properties() -> None:
    batch = make_batch()
    assert len(batch) == 3
    assert (batch.max_rows, batch.num_features) == (4, 2)
    assert batch.sizes.tolist() == [3, 1, 4]


@pytest.mark.parametrize(
    "index",
    [torch.tensor([2, 0]), np.array([2, 0]), [2, 0]],
    ids=["tensor", "array", "list"],
)
def test_index_picks_sets_in_order(index) -> None:
    batch = make_batch()
    picked = batch[index]
    assert isinstance(picked, SetBatch)
    assert torch.equal(picked.values, batch.values[[2, 0]])
    assert torch.equal(picked.mask, batch.mask[[2, 0]])


def test_bool_slice_and_empty_index() -> None:
    batch = make_batch()
    assert len(batch[torch.tensor([True, False, True])]) == 2
    assert torch.equal(batch[1:].mask, batch.mask[1:])
    assert len(batch[[]]) == 0


def test_int_index_is_refused() -> None:
    with pytest.raises(TypeError, match=r"batch\[\[i\]\]"):
        make_batch()[0]


def test_to_moves_both(device: torch.device) -> None:
    moved = make_batch().to(device)
    assert moved.values.device.type == device.type
    assert moved.mask.device.type == device.type


def test_frozen() -> None:
    batch = make_batch()
    with pytest.raises(AttributeError):
        batch.values = torch.zeros(1, 1, 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    "values,mask,message",
    [
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool), "values must be"),
        (torch.zeros(2, 3, 1), torch.zeros(2, 3), "mask must be bool"),
        (torch.zeros(2, 3, 1), torch.zeros(2, 4, dtype=torch.bool), "does not match"),
    ],
)
def test_shape_checks(values: torch.Tensor, mask: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SetBatch(values, mask)
