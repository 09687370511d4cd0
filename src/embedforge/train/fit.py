"""``fit(model, loss, train_loader)``: the trainer's loop on a model and DataLoaders you bring.

The same loop as a recipe's run (:mod:`embedforge.train.loop`: mixed precision, accumulation,
clipping, the first non-finite loss stopping the run, early stopping, checkpoints and
``metrics.jsonl`` in a run folder when one is given, DDP under ``torchrun``), for users of
pytorch-metric-learning or lightly who keep their own ``nn.Module`` and ``DataLoader``:

* a batch ``(inputs, labels)`` with integer labels trains ``loss(model(inputs), labels)``
  (metric learning: triplet, contrastive, SupCon, ArcFace, multi-similarity...);
* a batch ``(view_1, view_2)`` of two float tensors trains ``loss(model(view_1),
  model(view_2))`` (self-supervised: NT-Xent between two views of the same items);
* under ``torchrun`` the embeddings are gathered across ranks with gradients before the loss
  (negatives span the global batch). fit() does not shard a loader: each rank's
  ``train_loader`` must give its own share of the data, e.g. through a ``DistributedSampler``
  (whose epoch fit() sets every epoch); N ranks with batches of B / N then train as one
  process with batches of B. Give every rank the whole ``val_loader``: rank 0's scores
  decide the best epoch and an early stop for all.

``val_loader`` (``(inputs, labels)`` batches) is embedded each epoch and scored by retrieval
(P@1, R-precision, MAP@R, each item against the others); the best epoch by MAP@R is kept.
Without it, the last epoch's weights are the best ones. ``hooks``
(:class:`~embedforge.train.hooks.TrainingHooks`) add a method's own steps and state, e.g. a
momentum target updated after each optimizer step, saved and resumed with the run.

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> from embedforge.losses import TripletMarginLoss
>>> data = TensorDataset(torch.randn(64, 8), torch.arange(64) % 4)
>>> model = torch.nn.Linear(8, 4)
>>> result = fit(model, TripletMarginLoss(), DataLoader(data, batch_size=16), epochs=2)
>>> result.epochs_run, len(result.history)
(2, 2)
"""

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from embedforge.build import check_optimizer_covers
from embedforge.devices import DeviceChoice
from embedforge.errors import UserError
from embedforge.files.markers import clear_folder, prepare_folder, write_marker
from embedforge.files.run_folder import LAST, RUN
from embedforge.losses.loss_config import Call, views_loss
from embedforge.methods.method import Method
from embedforge.metrics.retrieval import retrieval_metrics
from embedforge.train.best_epoch import BestEpoch
from embedforge.train.distributed import (
    gather_with_grad,
    global_batch_loss,
    is_main_process,
    start_processes,
    wrap_model,
)
from embedforge.train.hooks import TrainingHooks
from embedforge.train.loop import LoopSettings, TrainResult, restore, run_epochs
from embedforge.train.optimization import Optimization
from embedforge.train.run_log import RunLog

BEST_METRIC = "mean_average_precision_at_r"


TWO_VIEWS: frozenset[Call] = frozenset({"two_views"})


def _encode(model: nn.Module, inputs: Tensor) -> Tensor:
    """This rank's embeddings, gathered into the global batch's (with gradients)."""
    return gather_with_grad(model(inputs))


class LoaderTask(TrainingHooks):
    """A model, a loss and DataLoaders as a :class:`~embedforge.train.task.TrainingTask`."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        train_loader: DataLoader,
        val_loader: DataLoader | None,
        device: torch.device,
        hooks: TrainingHooks,
    ) -> None:
        self.model, self.loss_fn = model.to(device), loss_fn.to(device)
        self.train_loader, self.val_loader = train_loader, val_loader
        self.device, self.hooks = device, hooks

    def num_batches(self) -> int:
        return len(self.train_loader)

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler reshuffles per epoch
            sampler.set_epoch(epoch)
        for batch in self.train_loader:
            if not isinstance(batch, list | tuple) or len(batch) < 2:
                raise UserError(
                    "fit: each batch must be (inputs, labels) or (view_1, view_2); got "
                    f"{type(batch).__name__}"
                )
            yield batch[0].to(self.device), batch[1].to(self.device)

    def batch_loss(self, batch: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        first, second = batch
        if second.is_floating_point():  # two views of the same items
            calls = self.loss_fn.calls if isinstance(self.loss_fn, Method) else TWO_VIEWS
            return views_loss(self.loss_fn, calls, _encode, self.model, first, second)
        return global_batch_loss(self.loss_fn, self.model(first), second)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.val_loader is None:
            return {}
        self.model.eval()
        parts = [(self.model(x.to(self.device)).float().cpu(), y) for x, y in self.val_loader]
        embeddings, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return retrieval_metrics(embeddings, labels)  # each item against all the others

    def after_optimizer_step(self) -> None:
        self.hooks.after_optimizer_step()

    def on_epoch_end(self, epoch: int) -> None:
        self.hooks.on_epoch_end(epoch)

    def state_dict(self) -> dict[str, Any]:
        return self.hooks.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hooks.load_state_dict(state)


def fit(
    model: nn.Module,
    loss: nn.Module,
    train_loader: DataLoader,
    *,
    val_loader: DataLoader | None = None,
    epochs: int = 10,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    hooks: TrainingHooks | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: DeviceChoice = "auto",
    amp: bool = True,
    accumulation_steps: int = 1,
    clip_grad_norm: float | None = None,
    patience: int | None = None,
    checkpoint_interval_s: float = 30.0,
    seed: int = 0,
    progress: bool = False,
) -> TrainResult:
    """Train ``model`` with ``loss`` on ``train_loader`` (see the module docstring).

    ``optimizer``: default AdamW at ``lr`` over the model's and the loss's parameters (a
    given one must cover both: ArcFace's class weights are trained too). ``run_dir``: a run
    folder for ``checkpoints/`` and ``metrics.jsonl`` (new or empty, or ours with
    ``overwrite``/``resume``; it holds no recipe, as your model is not one, so load its
    weights with :func:`embedforge.files.state.load_state`). The model and loss are moved
    to the device; ``amp`` is used on a GPU only.
    """
    run_path = None if run_dir is None else Path(run_dir)
    found = "new"
    if run_path is not None:
        hint = "pass resume=True to continue it or overwrite=True to start it again"
        found = prepare_folder(run_path, RUN, overwrite=overwrite, reuse=resume, hint=hint)
    torch_device = start_processes(device, "fit(device=...)")
    task = LoaderTask(model, loss, train_loader, val_loader, torch_device, hooks or TrainingHooks())
    task.model = wrap_model(task.model, torch_device)
    if optimizer is None:
        optimizer = torch.optim.AdamW([*model.parameters(), *loss.parameters()], lr=lr)
    check_optimizer_covers(optimizer, model, loss)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    amp = amp and torch_device.type == "cuda"
    optimization = Optimization(
        optimizer, schedule, device=torch_device, amp=amp,
        accumulation_steps=accumulation_steps, clip_grad_norm=clip_grad_norm,
    )  # fmt: skip
    steps = math.ceil(task.num_batches() / accumulation_steps) * epochs
    settings = LoopSettings(epochs, seed, schedule_steps=steps)
    best = BestEpoch(BEST_METRIC if val_loader is not None else None, patience)
    history: list[dict] = []
    if resume and run_path is not None and (run_path / LAST).is_file():
        history, _ = restore(run_path, task, optimization, best)
    if run_path is not None and is_main_process() and not history:
        if found == "ours":
            clear_folder(run_path, RUN)
        write_marker(run_path, RUN)
    log = RunLog(run_path, history, interval_s=checkpoint_interval_s, main=is_main_process())
    history = run_epochs(
        task, optimization, settings, best, log, history=history, progress=progress
    )
    return TrainResult(run_path, len(history), best.epoch, best.value, history)
