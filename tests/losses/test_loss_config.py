"""embedforge.losses.loss_config: a loss of views is called as its config says."""

import pytest
import torch

from embedforge.losses import CosineTripletLoss, NTXentLoss, SupConLoss
from embedforge.losses.cosine_triplet import CosineTripletConfig
from embedforge.losses.loss_config import loss_of_views
from embedforge.losses.ntxent import NTXentConfig
from embedforge.losses.supcon import SupConConfig


def test_an_anchor_positive_negative_loss_takes_the_next_items_second_view() -> None:
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    expected = CosineTripletLoss()(z1, z2, z2[[5, 0, 1, 2, 3, 4]])
    got = loss_of_views(CosineTripletLoss(), CosineTripletConfig.calls, z1, z2)
    torch.testing.assert_close(got, expected)


def test_a_two_view_loss_takes_both_views() -> None:
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    loss = NTXentLoss(temperature=0.5)
    torch.testing.assert_close(loss_of_views(loss, NTXentConfig.calls, z1, z2), loss(z1, z2))


def test_a_labelled_loss_takes_no_views() -> None:
    with pytest.raises(ValueError, match="SupConLoss takes no views"):
        loss_of_views(SupConLoss(), SupConConfig.calls, torch.randn(4, 2), torch.randn(4, 2))
