"""One rank of the DDP equivalence tests (launched by test_distributed.py via torchrun).

Each rank takes its slice of a fixed, seeded global batch, embeds it with a
tiny linear model wrapped in DistributedDataParallel, computes the loss over
the global batch with :func:`global_batch_loss`, and backpropagates. Rank 0
writes the parameter gradients, every rank's loss and every rank's gradient of
the loss's own parameters (a projection head: outside DDP, so each rank must
compute the same one) to ``OUT_DIR/ddp.safetensors``. The same for one step of
a VAE :class:`ImageTask` (whose decoder is a loss parameter).

Then the trainer's own path: ``train()`` of each of ``TRAINER_RECIPES`` into
``OUT_DIR/<name>`` (see :func:`trainer_patches` for why the image encoder runs without
batch norm); :func:`embedforge.train.fit.fit` on a user's model and DataLoaders for each of
``FIT_CASES`` into ``OUT_DIR/fit_<name>`` (see :func:`run_fit`), and once with rank 1 shuffling
its share differently, into ``OUT_DIR/fit_rank_1_reshuffled``; a run whose ranks validate
differently (:func:`disagreeing_validation`), whose epochs run and best epoch every rank
records; and whether a second derivative through
``gather_with_grad`` is refused. The test imports ``CASES``, ``make_inputs``, ``make_model``,
``make_vae_task``, ``vae_step``, ``TRAINER_RECIPES``, ``trainer_patches``, ``FIT_CASES`` and
``run_fit`` from here to compute the single-process reference.

Usage: ``torchrun --standalone --nproc_per_node=2 distributed_worker.py OUT_DIR``.
"""

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.distributed as dist
from tests.train.test_fit import Net, labelled, two_views
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

from embedforge import build
from embedforge.data.split import ImageSplit
from embedforge.encoders.projection_head import ProjectionHead
from embedforge.losses.contrastive import ContrastiveLoss
from embedforge.losses.cross_batch_memory import CrossBatchMemory
from embedforge.losses.ntxent import NTXentLoss
from embedforge.losses.projected import Projected
from embedforge.losses.supcon import SupConLoss
from embedforge.losses.triplet import TripletMarginLoss
from embedforge.recipe import Recipe, parse_recipe
from embedforge.train import image_task, trainer
from embedforge.train.distributed import (
    cleanup,
    gather_with_grad,
    global_batch_loss,
    rank,
    setup_from_env,
    world_size,
)
from embedforge.train.fit import fit
from embedforge.train.image_task import ImageTask
from embedforge.train.task import TrainingTask

GLOBAL_BATCH = 8
IN_DIM, OUT_DIM = 5, 4
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class Case:
    """A loss to check; ``split`` is the rows of rank 0 (rank 1 gets the rest)."""

    make_loss: Callable[[], nn.Module]
    two_view: bool = False
    split: int = GLOBAL_BATCH // 2


def with_memory(loss: nn.Module) -> CrossBatchMemory:
    """``loss`` behind a cross-batch memory already holding an older (seeded) batch, so the
    step compares the global batch with rows from before it too, and wraps the FIFO."""
    memory = CrossBatchMemory(loss, OUT_DIM, memory_size=GLOBAL_BATCH + 4)
    gen = torch.Generator().manual_seed(5)
    memory(torch.randn(GLOBAL_BATCH, OUT_DIM, generator=gen), torch.arange(GLOBAL_BATCH) % 4)
    return memory


CASES: dict[str, Case] = {
    "ntxent_two_view": Case(lambda: NTXentLoss(temperature=0.5), two_view=True),
    "supcon": Case(lambda: SupConLoss(temperature=0.5)),
    "supcon_uneven": Case(lambda: SupConLoss(temperature=0.5), split=5),
    "triplet_all": Case(lambda: TripletMarginLoss(margin=0.5, mining="all")),
    "triplet_batch_hard": Case(lambda: TripletMarginLoss(margin=0.5, mining="batch_hard")),
    "contrastive": Case(lambda: ContrastiveLoss(pos_margin=0.1, neg_margin=1.0)),
    "ntxent_projected": Case(
        lambda: Projected(ProjectionHead(OUT_DIM, 6, 3), NTXentLoss(temperature=0.5)),
        two_view=True,
    ),
    "supcon_projected": Case(
        lambda: Projected(ProjectionHead(OUT_DIM, 6, 3), SupConLoss(temperature=0.5))
    ),
    "supcon_memory": Case(lambda: with_memory(SupConLoss(temperature=0.5))),
    "triplet_memory": Case(lambda: with_memory(TripletMarginLoss(margin=0.5)), split=3),
}


def make_inputs(dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """The global batch: two views (B, IN_DIM) and labels (B,), 4 classes of 2, shuffled."""
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(GLOBAL_BATCH, IN_DIM, generator=gen, dtype=dtype)  # (B, IN)
    x2 = x1 + 0.3 * torch.randn(GLOBAL_BATCH, IN_DIM, generator=gen, dtype=dtype)  # (B, IN)
    labels = torch.arange(GLOBAL_BATCH // 2).repeat(2)[torch.randperm(GLOBAL_BATCH, generator=gen)]
    return x1, x2, labels


def make_model(dtype: torch.dtype) -> nn.Linear:
    """The shared tiny model, identically initialised on every rank and in the test."""
    torch.manual_seed(1)
    return nn.Linear(IN_DIM, OUT_DIM).to(dtype)


def buffers(module: nn.Module) -> Tensor:
    """Every buffer (a memory, its position), flattened into one float64 (N,) vector."""
    return torch.cat([b.flatten().double() for b in module.buffers()] or [torch.zeros(0)])


def parameter_grads(module: nn.Module) -> Tensor:
    """Every parameter's gradient, flattened into one (P,) vector (empty without parameters)."""
    return torch.cat([p.grad.flatten() for p in module.parameters()] or [torch.zeros(0)])


def make_vae_task() -> ImageTask:
    """A VAE task over one global batch of random 8×8 images, identically initialised.

    Its model is in eval mode: batch norm then uses no batch statistics, which on the CPU
    stay per rank, so ranks and one process compute exactly the same thing.
    """
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(GLOBAL_BATCH, 1, 8, 8, generator=g) > 0.5).float()
    labels = torch.arange(GLOBAL_BATCH) % 2
    recipe = parse_recipe(
        {
            "embedder": {"dim": OUT_DIM, "normalize": False},
            "loss": {"name": "vae", "latent_dim": 3},
            "train": {"batch_size": GLOBAL_BATCH},
        }
    )
    torch.manual_seed(2)
    task = ImageTask(recipe, ImageSplit(images, labels, images, labels), torch.device("cpu"))
    task.model.eval()
    return task


def vae_step(task: ImageTask) -> Tensor:
    """The loss of the task's first batch, backpropagated; the noise from a fixed seed."""
    loss = task.batch_loss(next(iter(task.batches(0))), torch.Generator().manual_seed(3))
    loss.backward()
    return loss.detach()


def run_case(case: Case, dtype: torch.dtype) -> tuple[nn.Linear, nn.Module, Tensor]:
    """Forward/backward of this rank's slice under DDP; returns the model, loss and value."""
    x1, x2, labels = make_inputs(dtype)
    model = make_model(dtype)
    ddp = nn.parallel.DistributedDataParallel(model)
    local = slice(0, case.split) if rank() == 0 else slice(case.split, GLOBAL_BATCH)
    loss_fn = case.make_loss().to(dtype)
    if case.two_view:  # one forward over both views (the trainer's two: TRAINER_RECIPES)
        n = x1[local].shape[0]
        z1, z2 = ddp(torch.cat([x1[local], x2[local]])).split(n)  # (n, OUT) each
        loss = global_batch_loss(loss_fn, z1, z2)
    else:
        loss = global_batch_loss(loss_fn, ddp(x1[local]), labels[local])
    loss.backward()
    return model, loss_fn, loss.detach()


SGD = {"name": "sgd", "lr": 0.01, "momentum": 0.9}
"""The trainer runs' optimizer. Not Adam: it divides each gradient by its own running size, so
a weight whose gradient is near 0 moves by about ±lr on the sign of rounding noise. Measured on
the palette recipe, one process on 1 and on 2 threads (sums in another order): weights 1e-3
apart after 12 Adam steps, 1e-7 with this SGD. A larger rate (0.05) makes the image run
unstable enough to turn the same noise into 0.16."""

TRAINER_RECIPES: dict[str, dict[str, Any]] = {
    # two-view SimCLR on digits (9 steps an epoch), views on: their draws are what 1 and N
    # ranks must share (drawn per rank, the first epoch's loss moves by 4e-2)
    "images": {
        "data": {"source": "digits"},
        "encoder": {"name": "small_cnn", "feature_dim": 32},
        "embedder": {"dim": 16},
        "loss": {"name": "ntxent", "temperature": 0.5},
        "views": {"degrees": 30, "translate": 0.1, "scale": [0.9, 1.1], "hflip": 0.5},
        "optimizer": SGD,
        "train": {"self_supervised": True, "epochs": 2, "batch_size": 128, "seed": 3},
    },
    # set views on (permutation, Dirichlet weights, colour noise, dropped rows), 6 steps an
    # epoch; a set transformer has layer norm only, which is per item
    "palettes": {
        "data": {"source": "palettes", "size": 120},
        "encoder": {"name": "set_transformer", "dim": 16, "hidden": 16, "heads": 2},
        "optimizer": SGD,
        "train": {"epochs": 2, "batch_size": 16, "seed": 3},
    },
}
# each method on the palettes: its heads' batch norm, Barlow Twins' and VICReg's statistics,
# MoCo's queue, DINO's centre and every momentum target must be the one process's
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "simsiam": {"hidden_dim": 16, "projection_dim": 16},
    "barlow_twins": {"hidden_dim": 16, "projection_dim": 16},
    "vicreg": {"hidden_dim": 16, "projection_dim": 16},
    "byol": {"hidden_dim": 16, "projection_dim": 8},
    "moco": {"hidden_dim": 16, "projection_dim": 8, "queue_size": 40},
    "dino": {"hidden_dim": 16, "bottleneck_dim": 8, "prototypes": 32},
}
# SupCon against a cross-batch memory, on labels. Not the triplet loss: its mean over the
# triplets with loss > 0 jumps when rounding moves one across 0 (measured: 1e-3 apart after
# an epoch); the one-step cases above check it against the memory exactly
TRAINER_RECIPES["images_memory"] = {
    **TRAINER_RECIPES["images"],
    "loss": {"name": "supcon", "temperature": 0.5},
    "memory": {"size": 300},  # a global batch of 64: wraps in the fifth step
    "views": None,
    "train": {"epochs": 2, "batch_size": 64, "seed": 3},
}
# EMD distillation: every rank draws the same partners and views and solves the same exact
# EMDs, then encodes its slice of the anchors and of the partners
TRAINER_RECIPES["palettes_emd"] = {
    **TRAINER_RECIPES["palettes"],
    "loss": {"name": "emd_distillation", "near": 6, "group": 4},
}
TRAINER_RECIPES |= {
    f"palettes_{name}": {
        **TRAINER_RECIPES["palettes"],
        "method": {"name": name, **settings},
        # Barlow Twins' and VICReg's losses are sums of D^2 terms (~10 here): at SGD's 0.01
        # their steps turn the gathered batch's 1e-7 rounding into 2e-5 apart; 1e-3 keeps the
        # runs within the float32 tolerance
        "optimizer": {**SGD, "lr": 1e-3},
    }
    for name, settings in METHOD_SETTINGS.items()
}


def _without_batch_norm(model: nn.Module) -> nn.Module:
    """``model`` with every batch norm replaced, in place, by a one-group GroupNorm: each item
    normalised by its own statistics. (An identity instead leaves the digits' signal so weak
    that the loss hardly depends on the views, and the comparison would prove little.)"""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.GroupNorm(1, child.num_features, affine=False))
    return model


@contextmanager
def trainer_patches() -> Iterator[None]:
    """The image model built without batch norm, here and in the single-process reference.

    In training mode batch norm normalises by the statistics of the batch it is given, which
    under DDP is the rank's slice: two ranks of 64 images normalise differently from one
    process with 128, so no tolerance could make the runs agree. torch's SyncBatchNorm, which
    would share the statistics, refuses CPU tensors (torch 2.13: DDP raises "SyncBatchNorm
    layers only work with GPU modules" and its forward "expected input tensor to be on GPU"),
    and the small CNN always has batch norm; so the comparison swaps it for a per-item norm
    on both sides. All else is the trainer's own path: views, two forwards, gathers, DDP,
    optimizer, schedule, validation and checkpoints.
    """

    def build_model(recipe: Recipe, **sizes: int) -> nn.Module:
        return _without_batch_norm(build.build_model(recipe, **sizes))

    with mock.patch.object(image_task, "build_model", build_model):
        yield


FIT_CASES = ("supcon", "ntxent_two_view")
"""The ``CASES`` that :func:`run_fit` trains: a labelled loss and the two-view form."""
FIT_SEED = 4


def run_fit(name: str, run_dir: Path, ranks: int, rank: int, shuffle_seed: int = FIT_SEED) -> None:
    """``fit()`` of a user's model with case ``name``'s loss into ``run_dir``, as rank ``rank`` of
    ``ranks`` (1 and 0: the single process).

    fit() does not shard a user's loader: each rank's comes with a ``DistributedSampler`` that
    gives it its share. Its shuffle is one permutation of the items per epoch (fit sets the
    epoch) and rank r takes every ``ranks``-th item from r, in batches of ``GLOBAL_BATCH //
    ranks``: together the ranks' batches hold the items of the one process's ``GLOBAL_BATCH``,
    in another order, which the losses do not depend on. Validation (every rank on the whole
    set) picks the best epoch; the optimizer is the trainer runs' SGD, for the reason ``SGD``
    gives.
    """
    torch.manual_seed(1)
    model = Net()
    data = two_views() if CASES[name].two_view else labelled()
    sampler = DistributedSampler(data, num_replicas=ranks, rank=rank, seed=shuffle_seed)
    train_loader = DataLoader(data, batch_size=GLOBAL_BATCH // ranks, sampler=sampler)
    optimizer = torch.optim.SGD(model.parameters(), lr=SGD["lr"], momentum=SGD["momentum"])
    fit(
        model, CASES[name].make_loss(), train_loader,
        val_loader=DataLoader(labelled(seed=1), batch_size=32), epochs=3, optimizer=optimizer,
        run_dir=run_dir, device="cpu", checkpoint_interval_s=0,
    )  # fmt: skip


DISAGREEING_SCORES = {0: [0.5, 0.4, 0.3, 0.2], 1: [0.1, 0.2, 0.3, 0.4]}
"""Validation scores by rank and epoch: with patience 1 rank 0 would stop after epoch 1, rank
1 never; rank 0's decide, so every rank stops after epoch 1 with best epoch 0."""


def disagreeing_validation(out_dir: Path) -> tuple[int, int]:
    """Train the palette recipe with patience 1 and rank-dependent validation scores; returns
    (epochs run, best epoch) as this rank saw them."""
    build_task = trainer.build_task

    def rank_dependent(*args: Any, **kwargs: Any) -> TrainingTask:
        task = build_task(*args, **kwargs)
        scores = iter(DISAGREEING_SCORES[rank()])
        task.validate = lambda: {"view_precision_at_1": next(scores), "validation_loss": 0.0}
        return task

    raw = TRAINER_RECIPES["palettes"]
    recipe = parse_recipe({**raw, "train": {**raw["train"], "epochs": 4, "patience": 1}})
    with mock.patch.object(trainer, "build_task", rank_dependent):
        result = trainer.train(recipe, out_dir, progress=False)
    return result.epochs_run, result.best_epoch


def second_derivative_refused() -> bool:
    """Whether a second backward through ``gather_with_grad`` raises (once_differentiable)."""
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(rank()), requires_grad=True)
    (grad,) = torch.autograd.grad(gather_with_grad(x).pow(3).sum(), x, create_graph=True)
    try:
        grad.sum().backward()
    except RuntimeError as error:
        return "once_differentiable" in str(error)
    return False


def per_rank(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor``, stacked in rank order."""
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)


def main(out_dir: Path) -> None:
    from safetensors.torch import save_file

    if not setup_from_env(backend="gloo"):  # the CPU's, also where there are GPUs
        raise SystemExit("run me under torchrun")
    results: dict[str, Tensor] = {}
    for dtype_name, dtype in DTYPES.items():
        for name, case in CASES.items():
            model, loss_fn, loss = run_case(case, dtype)
            key = f"{name}.{dtype_name}"
            results[f"{key}.weight_grad"] = model.weight.grad.contiguous()
            results[f"{key}.bias_grad"] = model.bias.grad.contiguous()
            results[f"{key}.loss_per_rank"] = per_rank(loss)
            results[f"{key}.loss_grad_per_rank"] = per_rank(parameter_grads(loss_fn).to(dtype))
            results[f"{key}.loss_buffers_per_rank"] = per_rank(buffers(loss_fn))
    task = make_vae_task()
    model = task.model
    task.model = nn.parallel.DistributedDataParallel(model)
    results["vae.loss_per_rank"] = per_rank(vae_step(task))
    results["vae.model_grad"] = parameter_grads(model)
    results["vae.loss_grad_per_rank"] = per_rank(parameter_grads(task.loss_fn))
    results["second_derivative_refused"] = per_rank(torch.tensor(second_derivative_refused()))
    with trainer_patches():
        for name, raw in TRAINER_RECIPES.items():
            trainer.train(parse_recipe(raw), out_dir / name, progress=False)
    for name in FIT_CASES:
        run_fit(name, out_dir / f"fit_{name}", world_size(), rank())
    # rank 1 trains on a share that overlaps rank 0's: the comparison must tell
    reshuffled = FIT_SEED + rank()
    run_fit("supcon", out_dir / "fit_rank_1_reshuffled", world_size(), rank(), reshuffled)
    epochs_run, best_epoch = disagreeing_validation(out_dir / "disagreeing")
    results["disagreeing.epochs_run_per_rank"] = per_rank(torch.tensor(epochs_run))
    results["disagreeing.best_epoch_per_rank"] = per_rank(torch.tensor(best_epoch))
    if rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file(results, str(out_dir / "ddp.safetensors"))
    dist.barrier()
    cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    # Skip interpreter finalisation: gloo's worker threads occasionally abort the process
    # there ("terminate called without an active exception") even after
    # destroy_process_group, which would fail a run whose results are already written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
