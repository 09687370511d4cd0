"""The one training loop every recipe runs: views, forward, loss, backward, step, log.

The step is visible in one screen; accumulation, clipping, mixed precision and
checkpointing are a few plain lines each. Every epoch re-seeds all randomness
from (seed, epoch), so a run resumed from its last checkpoint (written at the
end of an epoch, at most every ``train.checkpoint_interval_s``) continues exactly
as the uninterrupted run would have.

Under ``torchrun`` the model is wrapped in DistributedDataParallel (on GPUs
with synchronous batch norm, so statistics span the global batch; on the CPU
batch norm stays per rank, torch's SyncBatchNorm refusing CPU tensors), each
rank trains on its slice of every global batch with the views one process would
draw for it, rank 0's validation metrics decide the best epoch and an early stop
on every rank, and rank 0 alone writes the run folder.
"""

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pandas as pd
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from embedforge.data.split import HeldOut, ImageSplit
from embedforge.devices import resolve_device
from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write, atomic_write_text
from embedforge.files.data_pin import (
    DataPin,
    check_files,
    check_items,
    data_files,
    fingerprint_files,
    read_pin,
    write_pin,
)
from embedforge.files.markers import clear_folder, prepare_folder, write_marker
from embedforge.files.run_folder import (
    BEST,
    DATA,
    HISTORY,
    LAST,
    RECIPE,
    RUN,
    TENSORBOARD,
    pin_paths,
    read_history,
    resolve_paths,
)
from embedforge.files.state import load_state, save_state
from embedforge.progress import progress_bar
from embedforge.recipe import Recipe, TrainSection, load_recipe, recipe_differences
from embedforge.train.build import build_data, build_optimizer, build_palettes, build_schedule
from embedforge.train.distributed import (
    broadcast_metrics,
    cleanup,
    is_main_process,
    setup_from_env,
)
from embedforge.train.finite_loss import FiniteLossGuard
from embedforge.train.image_task import ImageTask
from embedforge.train.set_task import SetTask
from embedforge.train.task import TrainingTask, epoch_seed

PaletteTable = str | os.PathLike[str] | pd.DataFrame


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs_run: int
    best_epoch: int
    best_value: float
    history: list[dict]


def uses_mixed_precision(settings: TrainSection, device: torch.device) -> bool:
    """Autocast to float16 with a gradient scaler: on a GPU only, where half precision is
    fast; on a CPU it is slower and gains nothing."""
    return settings.amp and device.type == "cuda"


def build_task(
    recipe: Recipe,
    device: torch.device,
    data: ImageSplit | None = None,
    table: PaletteTable | None = None,
    held_out: HeldOut | None = None,
) -> TrainingTask:
    """The task for the recipe's data source: palettes (sets, from ``table`` if given) or
    images (``data`` if given), split as ``held_out`` records (else drawn from the seed)."""
    if recipe.data.source == "palettes":
        return SetTask(recipe, build_palettes(recipe.data, table), device, held_out)
    return ImageTask(recipe, data or build_data(recipe.data, held_out), device)


def _keep_table(run_dir: Path, table: PaletteTable, recipe: Recipe) -> Recipe:
    """Write the palette table into the run (``data/``) and point the recipe at that copy, so
    the run evaluates and reports from anywhere, after the caller's DataFrame is gone."""
    if isinstance(table, pd.DataFrame):
        path = run_dir / DATA / "palettes.parquet"
        frame = table.reset_index(drop=True)
        try:
            atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        except (TypeError, ValueError):  # a column pyarrow cannot type (mixed objects)
            path = run_dir / DATA / "palettes.csv"
            atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        source = Path(table)
        path = run_dir / DATA / f"palettes{''.join(source.suffixes[-2:]) or '.csv'}"
        atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))
    data = recipe.data.model_copy(update={"path": str(path.relative_to(run_dir))})
    return recipe.model_copy(update={"data": data})


def _check_same_schedule(run_dir: Path, schedule: str, saved_steps: int, steps: int) -> None:
    """Refuse to resume a schedule stretched or shrunk since the run started.

    One-cycle and cosine rates are functions of the total step count; continuing under a new
    total would jump the rate mid-run (or, for one-cycle, stop with an error at the old end).
    The constant schedule does not care, so a run can be extended there.
    """
    if schedule != "constant" and saved_steps != steps:
        raise UserError(
            f"{run_dir}: cannot resume: its {schedule} schedule spans {saved_steps} optimizer "
            f"steps and this recipe's {steps} (train.epochs, train.batch_size, "
            "train.accumulation_steps or the sampler changed); start a new run with --out"
        )


RESUMABLE_CHANGES = frozenset({"train.epochs", "train.checkpoint_interval_s"})
"""Recipe keys a resumed run may change: more epochs (the schedule check guards the rate) and
how often the resume point is written. Any other change would make the run two recipes."""


def _check_same_recipe(run_dir: Path, recipe: Recipe) -> None:
    """Refuse to resume under a recipe that differs from the run's, naming the keys."""
    saved = load_recipe(run_dir / RECIPE)
    changed = [
        line
        for line in recipe_differences(saved, recipe)
        if line.partition(":")[0] not in RESUMABLE_CHANGES
    ]
    if changed:
        raise UserError(
            f"{run_dir}: cannot resume: the recipe differs from the run's {RECIPE} ("
            + "; ".join(changed)
            + "); resume with the run's own recipe, or start a new run with --out"
        )


def _resume_split(run_dir: Path, recipe: Recipe) -> DataPin:
    """The split a resumed run goes on with, after checking that nothing it rests on changed."""
    _check_same_recipe(run_dir, recipe)
    pin = read_pin(run_dir)
    check_files(run_dir, pin)
    return pin


def _record_inputs(run_dir: Path, recipe: Recipe, task: TrainingTask) -> None:
    """Pin what the run trains on: its files' fingerprints, its items' and its split."""
    files = fingerprint_files(data_files(recipe), run_dir)
    write_pin(run_dir, DataPin(files, task.fingerprint, task.held_out))


def _open_history(run_dir: Path, kept: list[dict]) -> TextIO:
    """metrics.jsonl holding ``kept`` (a resumed run's earlier epochs), open for appending.

    Each epoch appends its line instead of rewriting the file (1 ms an epoch, which short
    epochs notice): a kill can at most cut the last line short, and read_history drops it.
    """
    atomic_write_text(run_dir / HISTORY, "".join(json.dumps(row) + "\n" for row in kept))
    return (run_dir / HISTORY).open("a", encoding="utf-8")


def train(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    data: ImageSplit | None = None,
    table: PaletteTable | None = None,
) -> TrainResult:
    """Train ``recipe`` into ``run_dir``: recipe.yaml, checkpoints/, metrics.jsonl, tensorboard/.

    ``run_dir`` must be new, empty, or a run folder of ours: ``resume`` continues it (a run
    with no resume point yet starts again), ``overwrite`` starts it again (removing only what
    a run holds); a folder with anything else in it is refused before anything is written.
    ``data``: in-memory images to train and validate on instead of the recipe's source (an
    experiment's subset); the recipe still sets everything else. Pass the same images to
    resume such a run. ``table``: a palette table (DataFrame or file) to train on instead of
    ``data.path``; the run keeps a copy in ``data/`` (what :class:`PaletteEmbedder` does).
    """
    run_dir = Path(run_dir)
    if resume and overwrite:  # prepare_folder would let reuse win and drop overwrite unsaid
        raise UserError(
            f"{run_dir}: --resume (resume=True) continues the run and --overwrite "
            "(overwrite=True) starts it again; expected one of them, not both"
        )
    found = prepare_folder(
        run_dir,
        RUN,
        overwrite=overwrite,
        reuse=resume,
        hint="pass --resume to continue it or --overwrite to start it again",
    )
    resuming = resume and (run_dir / LAST).is_file()
    recipe = pin_paths(recipe, run_dir)
    pin = _resume_split(run_dir, recipe) if resuming else None
    settings = recipe.train
    cuda = resolve_device(settings.device, "recipe train.device") == "cuda"
    distributed = setup_from_env("nccl" if cuda else "gloo")  # the backend follows the device
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    main = is_main_process()
    torch.manual_seed(settings.seed)  # initial weights (model and loss) depend on the seed only
    task = build_task(
        resolve_paths(recipe, run_dir), device, data, table, pin.held_out if pin else None
    )
    if pin is not None:
        check_items(run_dir, pin, task.fingerprint)
    model, loss_fn = task.model, task.loss_fn
    if distributed:
        if device.type == "cuda":  # SyncBatchNorm is GPU-only; on the CPU statistics stay per rank
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        task.model = nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)
    optimizer = build_optimizer(recipe, model, loss_fn)
    steps_per_epoch = math.ceil(task.num_batches() / settings.accumulation_steps)
    schedule = build_schedule(recipe, optimizer, steps_per_epoch=steps_per_epoch)
    schedule_steps = steps_per_epoch * settings.epochs
    amp = uses_mixed_precision(settings, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    history: list[dict] = []
    start_epoch, best_value, best_epoch = 0, -math.inf, -1
    if resuming:
        state = load_state(run_dir / LAST)
        saved_steps = state.get("schedule_steps", schedule_steps)  # absent before 2026-11-29
        _check_same_schedule(run_dir, recipe.schedule.name, saved_steps, schedule_steps)
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best_value, best_epoch = (
            state["epoch"] + 1,
            state["best_value"],
            state["best_epoch"],
        )
        history = read_history(run_dir)[:start_epoch]
    writer = history_file = None
    if main:
        if found == "ours" and not resuming:  # a restart: what the old run wrote goes first
            clear_folder(run_dir, RUN)
        write_marker(run_dir, RUN)
        if table is not None:
            recipe = _keep_table(run_dir, table, recipe)
        if not resuming:
            _record_inputs(run_dir, recipe, task)
        atomic_write_text(run_dir / RECIPE, recipe.to_yaml())
        writer = SummaryWriter(run_dir / TENSORBOARD)  # a resumed run adds an events file
        history_file = _open_history(run_dir, history)

    last_saved = time.monotonic()  # a resume point costs a few ms: at most one per interval
    epochs = progress_bar(
        range(start_epoch, settings.epochs), show=progress and main, desc="training", unit="epoch"
    )
    for epoch in epochs:
        started = time.perf_counter()
        torch.manual_seed(epoch_seed(settings.seed, epoch))
        generator = torch.Generator(device).manual_seed(epoch_seed(settings.seed, epoch))
        model.train()
        loss_fn.train()
        # summed on the device in float64 and read once per epoch: .item() per step would make
        # a GPU wait for every step to finish
        total_loss, batches = torch.zeros((), dtype=torch.float64, device=device), 0
        last_step = task.num_batches() - 1
        guard = FiniteLossGuard(device, epoch=epoch)
        for step, batch in enumerate(task.batches(epoch)):
            with torch.autocast(device.type, enabled=amp):
                loss = task.batch_loss(batch, generator)
            guard.watch(loss, step=step)
            scaler.scale(loss / settings.accumulation_steps).backward()
            total_loss, batches = total_loss + loss.detach().double(), batches + 1
            if (step + 1) % settings.accumulation_steps == 0 or step == last_step:
                if settings.clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(
                        [p for g in optimizer.param_groups for p in g["params"]],
                        settings.clip_grad_norm,
                    )
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
        guard.check()

        validating = (epoch + 1) % settings.validate_every == 0 or epoch + 1 == settings.epochs
        # rank 0's numbers on every rank, so the best epoch and an early stop are decided once
        metrics = broadcast_metrics(task.validate(), device) if validating else {}
        row = {
            "epoch": epoch,
            "loss": total_loss.item() / max(batches, 1),
            **metrics,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        value = metrics.get(settings.best_metric, -math.inf)  # unvalidated epochs never improve
        improved = value > best_value
        if improved:
            best_value, best_epoch = value, epoch
        if main and improved:
            save_state(
                run_dir / BEST,
                {"model": model.state_dict(), "loss": loss_fn.state_dict(), "epoch": epoch},
            )
        patience = settings.patience
        stopping = validating and patience is not None and epoch - best_epoch >= patience
        if main:  # before the resume point: a kill between the two cannot lose the row
            history_file.write(json.dumps(row) + "\n")
            history_file.flush()
            for name, number in row.items():
                if name != "epoch":
                    writer.add_scalar(name, number, epoch)
            writer.flush()
        due = time.monotonic() - last_saved >= settings.checkpoint_interval_s
        if main and (due or stopping or epoch + 1 == settings.epochs):
            last = {
                "model": model.state_dict(),
                "loss": loss_fn.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "schedule_steps": schedule_steps,
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "best_value": best_value,
                "best_epoch": best_epoch,
            }
            save_state(run_dir / LAST, last)
            last_saved = time.monotonic()
        shown = {settings.best_metric: f"{value:.4f}"} if validating else {}
        epochs.set_postfix(loss=f"{row['loss']:.4f}", **shown)
        if stopping:
            break
    if main:
        writer.close()
        history_file.close()
    return TrainResult(run_dir, len(history), best_epoch, best_value, history)


def train_from_file(
    path: str, out: str | None, overrides: list[str], *, resume: bool, overwrite: bool
) -> TrainResult:
    """The ``embedforge train`` command: load, override, train, print a summary line."""
    recipe = load_recipe(path, overrides)
    run_dir = Path(out) if out else Path("runs") / Path(path).stem
    try:
        result = train(recipe, run_dir, resume=resume, overwrite=overwrite)
        if is_main_process():
            print(
                f"trained {result.epochs_run} epochs into {run_dir}: best "
                f"{recipe.train.best_metric} = {result.best_value:.4f} at epoch {result.best_epoch}"
            )
    finally:
        cleanup()  # after the rank check: once the group is gone every rank looks like rank 0
    return result
