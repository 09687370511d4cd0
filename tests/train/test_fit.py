"""fit(): the trainer's loop on a hand-written nn.Module and plain DataLoaders.

Every loss family trains (each registered loss called with labels, and NT-Xent with two
views), the loss's own parameters included; validation keeps the best epoch; a method's
hooks (here a momentum target) run after every optimizer step and resume bit-identically.
"""

from pathlib import Path
from typing import Any

import pytest
import torch
from tests.train.killing import killed_after_first_resume_point
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from embedforge.config import Shapes
from embedforge.errors import UserError
from embedforge.files.run_folder import BEST, HISTORY
from embedforge.files.state import load_state
from embedforge.losses import NTXentLoss, TripletMarginLoss
from embedforge.registry import LOSSES, METHODS
from embedforge.train.fit import fit
from embedforge.train.hooks import TrainingHooks

DIM, CLASSES = 8, 4


class Net(nn.Module):
    """A user's own model: nothing embedforge built."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def labelled(n: int = 96, seed: int = 0) -> TensorDataset:
    """(inputs, labels) items: CLASSES separable clusters in 6 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    centres = torch.randn(CLASSES, 6, generator=generator) * 3
    return TensorDataset(centres[labels] + torch.randn(n, 6, generator=generator), labels)


def two_views(n: int = 64, seed: int = 1) -> TensorDataset:
    """(view_1, view_2) items: two noisy copies of the same random points."""
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    return TensorDataset(x + 0.05 * torch.randn_like(x), x + 0.05 * torch.randn_like(x))


def _loader(dataset: TensorDataset, **options: Any) -> DataLoader:
    return DataLoader(dataset, batch_size=32, generator=torch.Generator().manual_seed(0), **options)


LABELLED = [entry.name for entry in LOSSES.entries() if "labels" in entry.config.calls]


@pytest.mark.parametrize("name", LABELLED)
def test_every_labelled_loss_trains_a_users_model(name: str) -> None:
    torch.manual_seed(0)
    model = Net()
    entry = LOSSES[name]
    loss = entry.target(entry.config(), Shapes(embedding_dim=DIM, num_classes=CLASSES))
    before = [p.detach().clone() for p in [*model.parameters(), *loss.parameters()]]
    result = fit(model, loss, _loader(labelled(), shuffle=True), epochs=3, lr=1e-2)
    assert result.epochs_run == 3 and all(torch.isfinite(torch.tensor(r["loss"])) for r in
                                          result.history)  # fmt: skip
    after = [*model.parameters(), *loss.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(after, before, strict=True))  # loss too


def test_two_views_train_self_supervised() -> None:
    views = two_views()
    result = fit(Net(), NTXentLoss(temperature=0.5), _loader(views), epochs=4, lr=1e-2)
    assert result.history[-1]["loss"] < result.history[0]["loss"]


@pytest.mark.parametrize("name", ["byol", "moco", "dino", "vicreg"])
def test_a_method_trains_a_users_model_and_moves_its_target(name: str) -> None:
    """A registered method built around the user's model: its momentum target follows the
    model once per optimizer step, on the schedule fit() gives it."""
    from tests.methods.test_methods import SMALL

    from embedforge.methods import MomentumMethod

    views = two_views()
    model = Net()
    entry = METHODS[name]
    method = entry.target(entry.config(**SMALL[name]), Shapes(embedding_dim=DIM), model)
    result = fit(model, method, _loader(views), epochs=3, lr=1e-2)
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in result.history)
    assert int(method.step) == method.total_steps == 3 * len(_loader(views))
    if isinstance(method, MomentumMethod):
        target, online = method.target_encoder.parameters(), model.parameters()
        assert not all(torch.equal(t, o) for t, o in zip(target, online, strict=True))


def test_validation_keeps_the_best_epoch_and_stops_early(tmp_path: Path) -> None:
    result = fit(
        Net(), TripletMarginLoss(margin=0.2), _loader(labelled(), shuffle=True),
        val_loader=_loader(labelled(seed=1)), epochs=30, lr=1e-2, patience=2,
        run_dir=tmp_path / "run", checkpoint_interval_s=0,
    )  # fmt: skip
    assert "mean_average_precision_at_r" in result.history[0]
    assert result.best_value > 0.9 and result.epochs_run < 30  # separable data: it stops
    assert load_state(tmp_path / "run" / BEST)["epoch"] == result.best_epoch
    assert len((tmp_path / "run" / HISTORY).read_text().splitlines()) == result.epochs_run


class MomentumTarget(TrainingHooks):
    """A BYOL-style EMA of the model, updated after every optimizer step."""

    def __init__(self, model: nn.Module, momentum: float = 0.9) -> None:
        self.model, self.momentum, self.steps = model, momentum, 0
        self.target = [p.detach().clone() for p in model.parameters()]

    def after_optimizer_step(self) -> None:
        self.steps += 1
        for target, online in zip(self.target, self.model.parameters(), strict=True):
            target.mul_(self.momentum).add_(online.detach(), alpha=1 - self.momentum)

    def state_dict(self) -> dict[str, Any]:
        return {"target": list(self.target), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.target, self.steps = [t.clone() for t in state["target"]], state["steps"]


def test_hooks_run_after_each_step_and_resume_bit_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(folder: Path, *, resume: bool = False) -> MomentumTarget:
        torch.manual_seed(0)
        model = Net()
        if resume:  # the fresh process: its weights come from the checkpoint
            torch.manual_seed(99)
        hooks = MomentumTarget(model)
        fit(model, TripletMarginLoss(), _loader(labelled()), epochs=3, hooks=hooks,
            run_dir=folder, resume=resume, checkpoint_interval_s=0)  # fmt: skip
        return hooks

    whole = run(tmp_path / "whole")
    assert whole.steps == 3 * 3  # 96 items in batches of 32, 3 epochs
    with killed_after_first_resume_point(monkeypatch):
        run(tmp_path / "resumed")
    resumed = run(tmp_path / "resumed", resume=True)
    assert resumed.steps == whole.steps
    for a, b in zip(resumed.target, whole.target, strict=True):
        assert torch.equal(a, b)


def test_an_optimizer_missing_the_loss_parameters_is_refused() -> None:
    model = Net()
    loss = LOSSES["arcface"].target(LOSSES["arcface"].config(), Shapes(DIM, CLASSES))
    with pytest.raises(RuntimeError, match=r"ArcFaceLoss\.W is not optimised"):
        fit(model, loss, _loader(labelled()), optimizer=torch.optim.SGD(model.parameters(), 0.1))


def test_a_batch_of_one_tensor_is_one_clear_error() -> None:
    loader = DataLoader(torch.randn(8, 6), batch_size=4)
    with pytest.raises(UserError, match=r"fit: each batch must be \(inputs, labels\)"):
        fit(Net(), TripletMarginLoss(), loader, epochs=1)
