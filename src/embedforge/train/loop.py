"""The training loop: epochs of steps (views, forward, loss, backward, step), then validation.

It is the same for a recipe's run (:func:`~embedforge.train.trainer.train`) and for a model
and DataLoader a user brings (:func:`~embedforge.train.fit.fit`): a task says what a batch
is, how its loss is computed and how to validate (:class:`~embedforge.train.task.
TrainingTask`, with the :class:`~embedforge.train.hooks.TrainingHooks` a method may add);
:class:`~embedforge.train.optimization.Optimization` steps; :class:`~embedforge.train.
best_epoch.BestEpoch` decides the best epoch and an early stop; :class:`~embedforge.train.
run_log.RunLog` writes. Every epoch re-seeds all randomness from (seed, epoch), so a run
resumed from its last checkpoint continues exactly as the uninterrupted run would have.
"""

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedforge.files.run_folder import LAST, read_history
from embedforge.files.state import load_state
from embedforge.methods.method import Method
from embedforge.progress import progress_bar
from embedforge.train.best_epoch import BestEpoch
from embedforge.train.distributed import broadcast_metrics, is_main_process
from embedforge.train.finite_loss import FiniteLossGuard
from embedforge.train.optimization import Optimization
from embedforge.train.run_log import RunLog
from embedforge.train.task import TrainingTask, epoch_seed


@dataclass(frozen=True)
class LoopSettings:
    """How long to train and when to validate (a recipe's ``train`` section, or fit's)."""

    epochs: int
    seed: int = 0
    validate_every: int = 1
    schedule_steps: int = 0  # the schedule's length in optimizer steps, checked on resume


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path | None
    epochs_run: int
    best_epoch: int
    best_value: float
    history: list[dict]


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (what is saved and embeds)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def train_epoch(task: TrainingTask, optimization: Optimization, seed: int, epoch: int) -> float:
    """One epoch of steps; the mean training loss (read once: a read per step would make a
    GPU wait for every step)."""
    device = optimization.device
    torch.manual_seed(epoch_seed(seed, epoch))
    generator = torch.Generator(device).manual_seed(epoch_seed(seed, epoch))
    task.model.train(), task.loss_fn.train()
    guard = FiniteLossGuard(device, epoch=epoch)
    total, batches = torch.zeros((), dtype=torch.float64, device=device), 0
    last_step = task.num_batches() - 1
    for step, batch in enumerate(task.batches(epoch)):
        with optimization.autocast():
            loss = task.batch_loss(batch, generator)  # views, forward, loss
        guard.watch(loss, step=step)
        if optimization.backward(loss, step=step, last_step=last_step):
            if isinstance(task.loss_fn, Method):  # its momentum target, its step count
                task.loss_fn.after_optimizer_step()
            task.after_optimizer_step()
        total, batches = total + loss.detach().double(), batches + 1
    guard.check()
    return total.item() / max(batches, 1)


def resume_state(
    task: TrainingTask, optimization: Optimization, best: BestEpoch, epoch: int, steps: int
) -> dict[str, Any]:
    """Everything a resumed run needs, as the last checkpoint holds it."""
    return {
        "model": unwrapped(task.model).state_dict(),
        "loss": task.loss_fn.state_dict(),
        **optimization.state_dict(),
        "schedule_steps": steps,
        "hooks": task.state_dict(),
        "epoch": epoch,
        "best_value": best.value,
        "best_epoch": best.epoch,
    }


def restore(
    run_dir: Path, task: TrainingTask, optimization: Optimization, best: BestEpoch
) -> tuple[list[dict], int | None]:
    """Put ``run_dir``'s resume point into the run's parts; the history up to it, and the
    schedule length (in optimizer steps) it was saved under (None before 2026-11-29)."""
    state = load_state(run_dir / LAST)
    unwrapped(task.model).load_state_dict(state["model"])
    task.loss_fn.load_state_dict(state["loss"])
    optimization.load_state_dict(state)
    task.load_state_dict(state.get("hooks", {}))
    best.value, best.epoch = state["best_value"], state["best_epoch"]
    return read_history(run_dir)[: state["epoch"] + 1], state.get("schedule_steps")


def run_epochs(
    task: TrainingTask,
    optimization: Optimization,
    settings: LoopSettings,
    best: BestEpoch,
    log: RunLog,
    *,
    history: list[dict],
    progress: bool,
) -> list[dict]:
    """Train the epochs after ``history``'s; the full history."""
    if isinstance(task.loss_fn, Method):  # its momentum schedule spans the whole run
        task.loss_fn.total_steps = settings.schedule_steps
    epochs = range(len(history), settings.epochs)
    shown = progress_bar(epochs, show=progress and is_main_process(), desc="training", unit="epoch")
    for epoch in shown:
        started = time.perf_counter()
        loss = train_epoch(task, optimization, settings.seed, epoch)
        validating = (epoch + 1) % settings.validate_every == 0 or epoch + 1 == settings.epochs
        # rank 0's numbers on every rank, so the best epoch and an early stop are decided once
        metrics = broadcast_metrics(task.validate(), optimization.device) if validating else {}
        row = {"epoch": epoch, "loss": loss, **metrics, "seconds": time.perf_counter() - started}
        history.append(row)
        if best.update(epoch, metrics):
            model, loss_state = unwrapped(task.model).state_dict(), task.loss_fn.state_dict()
            log.save_best({"model": model, "loss": loss_state, "epoch": epoch})
        stopping = best.stops(epoch, validated=validating)
        log.record(row)
        task.on_epoch_end(epoch)
        state = partial(resume_state, task, optimization, best, epoch, settings.schedule_steps)
        log.save_last(state, now=stopping or epoch + 1 == settings.epochs)
        shown.set_postfix(loss=f"{loss:.4f}", **{k: f"{v:.4f}" for k, v in metrics.items()})
        if stopping:
            break
    log.close()
    return history
