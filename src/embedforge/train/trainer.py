"""``train(recipe, run_dir)``: a recipe's run, through the one loop (:mod:`embedforge.train.loop`).

This module is the run around the loop: the folder (checked before anything is written,
then marked, the recipe and what it was trained on recorded), the task the recipe's data
source calls for, the optimizer, and ``--resume``. Under ``torchrun`` the model is wrapped in
DistributedDataParallel (on GPUs with synchronous batch norm, so statistics span the global
batch; on the CPU batch norm stays per rank, torch's SyncBatchNorm refusing CPU tensors),
each rank trains on its slice of every global batch with the views one process would draw
for it, rank 0's validation metrics decide the best epoch and an early stop on every rank,
and rank 0 alone writes the run folder.
"""

import math
import os
import shutil
from pathlib import Path

import pandas as pd
import torch

from embedforge.build import build_data, build_optimizer, build_palettes, build_schedule
from embedforge.data.split import HeldOut, ImageSplit
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
    DATA,
    LAST,
    RECIPE,
    RUN,
    pin_paths,
    resolve_paths,
)
from embedforge.recipe import Recipe, TrainSection, load_recipe, recipe_differences
from embedforge.train.best_epoch import BestEpoch
from embedforge.train.distributed import (
    cleanup,
    is_main_process,
    start_processes,
    world_size,
    wrap_model,
)
from embedforge.train.emd_task import EMDPairTask
from embedforge.train.image_task import ImageTask
from embedforge.train.loop import LoopSettings, TrainResult, restore, run_epochs, unwrapped
from embedforge.train.optimization import Optimization
from embedforge.train.run_log import RunLog
from embedforge.train.set_task import SetTask
from embedforge.train.task import RecipeTask

PaletteTable = str | os.PathLike[str] | pd.DataFrame
RESUME_OR_OVERWRITE = (
    "--resume (resume=True) continues the run and --overwrite (overwrite=True) starts it "
    "again; expected one of them, not both"
)


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
) -> RecipeTask:
    """The task for the recipe's data source: palettes (sets, from ``table`` if given) or
    images (``data`` if given), split as ``held_out`` records (else drawn from the seed)."""
    if recipe.data.source == "palettes":
        task = EMDPairTask if "palette_pairs" in recipe.loss_calls() else SetTask
        return task(recipe, build_palettes(recipe.data, table), device, held_out)
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


def _check_same_schedule(run_dir: Path, schedule: str, saved_steps: int | None, steps: int) -> None:
    """Refuse to resume a schedule stretched or shrunk since the run started.

    One-cycle and cosine rates are functions of the total step count; continuing under a new
    total would jump the rate mid-run (or, for one-cycle, stop with an error at the old end).
    The constant schedule does not care, so a run can be extended there.
    """
    if schedule != "constant" and saved_steps not in (None, steps):  # None: saved before 11-29
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


def _record_inputs(run_dir: Path, recipe: Recipe, task: RecipeTask) -> None:
    """Pin what the run trains on: its files' fingerprints, its items' and its split."""
    files = fingerprint_files(data_files(recipe), run_dir)
    write_pin(run_dir, DataPin(files, task.fingerprint, task.held_out))


def _optimization(
    recipe: Recipe, task: RecipeTask, device: torch.device
) -> tuple[Optimization, LoopSettings]:
    """The recipe's optimizer, schedule and precision over the task's parts, and the loop's
    settings (with the schedule's length in optimizer steps)."""
    settings = recipe.train
    optimizer = build_optimizer(recipe, unwrapped(task.model), task.loss_fn)
    steps_per_epoch = math.ceil(task.num_batches() / settings.accumulation_steps)
    optimization = Optimization(
        optimizer,
        build_schedule(recipe, optimizer, steps_per_epoch=steps_per_epoch),
        device=device,
        amp=uses_mixed_precision(settings, device),
        accumulation_steps=settings.accumulation_steps,
        clip_grad_norm=settings.clip_grad_norm,
    )
    steps = steps_per_epoch * settings.epochs
    return optimization, LoopSettings(
        settings.epochs, settings.seed, settings.validate_every, steps
    )


def _write_run_files(
    run_dir: Path, recipe: Recipe, task: RecipeTask, table: PaletteTable | None, *, fresh: bool
) -> Recipe:
    """Mark the folder and record the recipe (with a kept table's path) and, for a fresh run,
    what it trains on; the recipe as recorded."""
    write_marker(run_dir, RUN)
    if table is not None:
        recipe = _keep_table(run_dir, table, recipe)
    if fresh:
        _record_inputs(run_dir, recipe, task)
    atomic_write_text(run_dir / RECIPE, recipe.to_yaml())
    return recipe


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
        raise UserError(f"{run_dir}: {RESUME_OR_OVERWRITE}")
    hint = "pass --resume to continue it or --overwrite to start it again"
    found = prepare_folder(run_dir, RUN, overwrite=overwrite, reuse=resume, hint=hint)
    resuming = resume and (run_dir / LAST).is_file()
    recipe = pin_paths(recipe, run_dir)
    pin = _resume_split(run_dir, recipe) if resuming else None
    device = start_processes(recipe.train.device, "recipe train.device")
    torch.manual_seed(recipe.train.seed)  # initial weights (model and loss) depend on the seed only
    held_out = pin.held_out if pin else None
    task = build_task(resolve_paths(recipe, run_dir), device, data, table, held_out)
    if pin is not None:
        check_items(run_dir, pin, task.fingerprint)
    task.model = wrap_model(task.model, device)
    optimization, settings = _optimization(recipe, task, device)
    best = BestEpoch(recipe.train.best_metric, recipe.train.patience)
    history: list[dict] = []
    if resuming:
        history, saved_steps = restore(run_dir, task, optimization, best)
        _check_same_schedule(run_dir, recipe.schedule.name, saved_steps, settings.schedule_steps)
    if is_main_process():
        if found == "ours" and not resuming:  # a restart: what the old run wrote goes first
            clear_folder(run_dir, RUN)
        recipe = _write_run_files(run_dir, recipe, task, table, fresh=not resuming)
    interval = recipe.train.checkpoint_interval_s
    log = RunLog(run_dir, history, interval_s=interval, main=is_main_process())
    history = run_epochs(
        task, optimization, settings, best, log, history=history, progress=progress
    )
    return TrainResult(run_dir, len(history), best.epoch, best.value, history)


def train_from_file(
    path: str, out: str | None, overrides: list[str], *, resume: bool, overwrite: bool
) -> TrainResult:
    """The ``embedforge train`` command: load, override, train, print a summary line."""
    recipe = load_recipe(path, overrides)
    run_dir = Path(out) if out else Path("runs") / Path(path).stem
    finished = False
    try:
        result = train(recipe, run_dir, resume=resume, overwrite=overwrite)
        if is_main_process():
            ranks = f" on {world_size()} processes" if world_size() > 1 else ""
            print(
                f"trained {result.epochs_run} epochs{ranks} into {run_dir}: best "
                f"{recipe.train.best_metric} = {result.best_value:.4f} at epoch {result.best_epoch}"
            )
        finished = True
    finally:
        # after the rank check: once the group is gone every rank looks like rank 0
        cleanup(finished=finished)
    return result
