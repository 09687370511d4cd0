"""Tests for embedforge.train.finite_loss: a non-finite loss stops training, named, unsaved."""

from pathlib import Path

import pytest
import torch

from embedforge.errors import UserError
from embedforge.files.run_folder import BEST, LAST
from embedforge.files.state import load_state
from embedforge.recipe import parse_recipe
from embedforge.train import trainer as trainer_module
from embedforge.train.finite_loss import FiniteLossGuard
from embedforge.train.trainer import train

DIGITS_BATCHES = 19  # 1,257 training digits in batches of 64
SMALL = {"embedder": {"dim": 8}, "train": {"epochs": 3, "batch_size": 64}}


def test_a_diverging_run_stops_at_the_first_bad_step_and_saves_nothing_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = trainer_module.ImageTask.batch_loss
    calls = {"n": 0}

    def diverging(self, batch, generator):  # the 5th step of epoch 1 overflows
        calls["n"] += 1
        loss = real(self, batch, generator)
        return loss * float("inf") if calls["n"] == DIGITS_BATCHES + 5 else loss

    monkeypatch.setattr(trainer_module.ImageTask, "batch_loss", diverging)
    with pytest.raises(UserError, match=r"epoch 1, step 4: the training loss is inf; .* lower"):
        train(parse_recipe(SMALL), tmp_path / "run", progress=False)
    assert load_state(tmp_path / "run" / BEST)["epoch"] == 0  # epoch 1 never saved
    assert not (tmp_path / "run" / LAST).exists()  # the 30 s resume point was not yet due


def test_on_a_gpu_the_first_bad_step_is_read_at_the_end_of_the_epoch() -> None:
    guard = FiniteLossGuard(torch.device("cpu"), epoch=0)
    guard.at_once = False  # the deferred read a GPU uses, exercised on the CPU
    for step, value in enumerate([1.0, float("nan"), float("inf"), 2.0]):
        guard.watch(torch.tensor(value), step=step)
    with pytest.raises(UserError, match="epoch 0, step 1: the training loss is nan"):
        guard.check()


def test_finite_losses_pass() -> None:
    guard = FiniteLossGuard(torch.device("cpu"), epoch=0)
    guard.watch(torch.tensor(0.3), step=0)
    guard.check()
