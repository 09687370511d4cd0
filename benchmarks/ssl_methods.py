"""Every self-supervised method, its loss against lightly 1.6's and its training against a
bare PyTorch loop, in one process; writes benchmarks/results/ssl_methods.md.

Losses: forward + backward of one batch, on the same tensors, three ways: embedforge's loss,
the peer's, and the *limit*, the bare product the loss cannot avoid (forward and backward
into the same inputs): the (2B×2B) similarities of NT-Xent (SimCLR, Chen et al., 2020,
arXiv:2002.05709), the (B×K) query-queue similarities of MoCo v2 (arXiv:2003.04297) and the
(B×B) query-key ones of MoCo v3 (arXiv:2104.02057), the row-wise dot products of BYOL
(arXiv:2006.07733) and SimSiam (arXiv:2011.10566), the (D×D) cross-correlation of Barlow
Twins (arXiv:2103.03230) and covariances of VICReg (arXiv:2105.04906), DINO's teacher ×
student log-probability contraction (arXiv:2104.14294). The peer is lightly 1.6's loss, loaded
without torchvision (tests/losses/lightly_oracle.py): ``NTXentLoss`` for SimCLR and, with its
memory bank as the queue, for MoCo v2 (both enqueue the batch's keys in the step, as training
does); MoCo v3's loss has no lightly counterpart and no peer. Each loss runs at its method's
defaults.

Training: per method, the trainer against the textbook hand-written loop over the same
model, batches, views, loss, optimizer and momentum updates (views, forward, loss,
zero_grad, backward, step, schedule step, then the method's EMA update and step count), on
ssl_digits.py's workload (the small CNN, two random affine views of the 1,257 training
digits, batch 256, Adam), from the same seed; the trainer's validation is stubbed out, as in
trainer.py's "no val" rows, so what differs is the loop's own overhead (checkpoints,
metrics.jsonl, TensorBoard events, the finite-loss guard). Both are timed from building the
data and model to the last step. 30 epochs a run by default: the trainer's writes (the run's
recipe, data pin and marker, metrics.jsonl, the best and last checkpoints, each written to a
temporary file, fsynced and renamed) cost it a fixed few tens of milliseconds a run, which is
6-7% of a 10-epoch run of this small workload (0.5 s; measured at 0.93-0.94 of the bare loop)
and 2-4% of a 30-epoch one; the 'trainer − bare' column (the median of each round's
difference) shows it, next to the machine's noise (a few negative differences).

One torch thread by default (``--threads``): on a shared machine two threads on two busy
cores wait for each other at every parallel region, and small steps then take many times
their time, by amounts that differ from run to run; one thread keeps the ratios readable.

    python benchmarks/ssl_methods.py [--epochs 30] [--repeats 5] [--loss-repeats 30] [--threads 1]
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from embedforge.build import build_optimizer, build_schedule
from embedforge.losses.barlow_twins import barlow_twins_loss
from embedforge.losses.dino import dino_loss, updated_center
from embedforge.losses.negative_cosine import byol_loss, simsiam_loss
from embedforge.losses.ntxent import NTXentLoss
from embedforge.losses.queue_infonce import enqueue, moco_v3_loss, queue_infonce_loss
from embedforge.losses.vicreg import vicreg_loss
from embedforge.methods.barlow_twins import BarlowTwinsConfig
from embedforge.methods.dino import DINOConfig
from embedforge.methods.moco import MoCoConfig
from embedforge.methods.simclr import SimCLRConfig
from embedforge.recipe import Recipe, parse_recipe
from embedforge.train.task import epoch_seed
from embedforge.train.trainer import build_task
from measure import command_line, interleaved_runs, machine_line, paired_ratio, write_report
from ssl_digits import method_recipe
from trainer import trainer_run

sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root: tests/ is a package
from tests.losses.lightly_oracle import lightly_attribute

RESULTS = Path(__file__).parent / "results" / "ssl_methods.md"
DIM = 128
SIZES = (256, 1024)
METHOD_SECTIONS = {  # the training table's rows: each method at its registered defaults
    "barlow_twins": {"name": "barlow_twins"},
    "byol": {"name": "byol"},
    "dino": {"name": "dino"},
    "moco v2": {"name": "moco"},
    "moco v3": {"name": "moco", "version": "v3"},
    "simclr": {"name": "simclr"},
    "simsiam": {"name": "simsiam"},
    "vicreg": {"name": "vicreg"},
}
TARGET = 0.95  # the trainer keeps this share of the bare loop's throughput (trainer.py's)


@dataclass(frozen=True)
class Batch:
    """What the losses take, drawn once per batch size from the seed: two views' (B, D)
    projections (or predictions) with gradient, the momentum target's (B, D) without, MoCo
    v2's (K, D) queue of unit keys and DINO's (2, B, prototypes) student and teacher logits."""

    z1: Tensor
    z2: Tensor
    t1: Tensor
    t2: Tensor
    queue: Tensor
    student: Tensor
    teacher: Tensor

    @classmethod
    def draw(cls, size: int, seed: int) -> "Batch":
        generator = torch.Generator().manual_seed(seed)

        def randn(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=generator)

        z1 = randn(size, DIM)
        z2, t1, t2 = (z1 + 0.5 * randn(size, DIM) for _ in range(3))
        prototypes = DINOConfig().prototypes
        return cls(
            z1.requires_grad_(),
            z2.requires_grad_(),
            t1,
            t2,
            F.normalize(randn(MoCoConfig().queue_size, DIM), dim=1),
            randn(2, size, prototypes).requires_grad_(),
            randn(2, size, prototypes),
        )

    def leaves(self) -> tuple[Tensor, ...]:
        return self.z1, self.z2, self.student


Loss = Callable[[Batch], Tensor]


@dataclass(frozen=True)
class LossCase:
    """One method's loss: ours, the peer's (None: no peer), and the limit, a product whose
    forward and backward any implementation of the loss has to compute."""

    method: str
    peer_name: str
    ours: Loss
    peer: Loss | None
    limit_name: str
    limit: Loss


def row_dots(x: Batch) -> Tensor:
    """The (2, B) dot products of each prediction with the other view's target."""
    return torch.stack([(x.z1 * x.t2).sum(1), (x.z2 * x.t1).sum(1)])


def moco_v2_pair(queue: Tensor) -> tuple[Loss, Loss]:
    """Ours and lightly's MoCo v2 loss (lightly's: ``NTXentLoss`` with a memory bank), each
    with its own copy of ``queue`` and each enqueueing the batch's keys in the call (lightly
    in its forward; the MoCo method right after the loss, unit keys)."""
    config = MoCoConfig()
    ours_queue, pointer = queue.clone(), torch.zeros((), dtype=torch.int64)
    theirs = lightly_attribute("loss.ntx_ent_loss", "NTXentLoss")(
        temperature=config.temperature, memory_bank_size=tuple(queue.shape)
    )
    theirs.memory_bank.bank.copy_(queue)

    def ours(x: Batch) -> Tensor:
        keys = F.normalize(x.t2, dim=1)
        loss = queue_infonce_loss(x.z1, keys, ours_queue, temperature=config.temperature)
        with torch.no_grad():
            updated, new_pointer = enqueue(ours_queue, pointer, keys)
            ours_queue.copy_(updated)
            pointer.copy_(new_pointer)
        return loss

    return ours, lambda x: theirs(x.z1, x.t2)


def dino_pair() -> tuple[Loss, Loss]:
    """Ours and lightly's DINO loss, each with its own centre starting at zero and updated by
    every call (lightly updates it in its forward; the DINO method right after the loss)."""
    config = DINOConfig()
    center = torch.zeros(config.prototypes)
    theirs = lightly_attribute("loss.dino_loss", "DINOLoss")(
        output_dim=config.prototypes,
        warmup_teacher_temp=config.teacher_temperature,
        teacher_temp=config.teacher_temperature,
        student_temp=config.student_temperature,
        center_momentum=config.center_momentum,
    )

    def ours(x: Batch) -> Tensor:
        loss = dino_loss(
            x.student,
            x.teacher,
            center,
            student_temperature=config.student_temperature,
            teacher_temperature=config.teacher_temperature,
        )
        with torch.no_grad():
            center.copy_(updated_center(center, x.teacher, config.center_momentum))
        return loss

    return ours, lambda x: theirs(list(x.teacher), list(x.student))


def loss_cases(batch: Batch) -> list[LossCase]:
    """Every method's loss at its defaults, fresh: DINO's centres start at zero, MoCo v2's
    queues (ours and lightly's bank) hold ``batch``'s."""
    cosine = lightly_attribute("loss.negative_cosine_similarity", "NegativeCosineSimilarity")()
    barlow = lightly_attribute("loss.barlow_twins_loss", "BarlowTwinsLoss")(
        lambda_param=BarlowTwinsConfig().lambda_offdiag
    )
    vicreg = lightly_attribute("loss.vicreg_loss", "VICRegLoss")()
    simclr_temperature, moco_temperature = SimCLRConfig().temperature, MoCoConfig().temperature
    ntxent = NTXentLoss(simclr_temperature)
    lightly_ntxent = lightly_attribute("loss.ntx_ent_loss", "NTXentLoss")(simclr_temperature)
    moco_ours, moco_lightly = moco_v2_pair(batch.queue)
    dino_ours, dino_lightly = dino_pair()
    return [
        LossCase(
            "simclr",
            "lightly NTXentLoss",
            lambda x: ntxent(x.z1, x.z2),
            lambda x: lightly_ntxent(x.z1, x.z2),
            "(2B×2B) similarities",
            lambda x: (both := torch.cat([x.z1, x.z2])) @ both.T,
        ),
        LossCase(
            "byol",
            "lightly NegativeCosineSimilarity",
            lambda x: byol_loss(x.z1, x.z2, x.t1, x.t2),
            lambda x: 2 + cosine(x.z1, x.t2) + cosine(x.z2, x.t1),
            "row-wise dot products",
            row_dots,
        ),
        LossCase(
            "simsiam",
            "lightly NegativeCosineSimilarity",
            lambda x: simsiam_loss(x.z1, x.z2, x.t1, x.t2),
            lambda x: (cosine(x.z1, x.t2) + cosine(x.z2, x.t1)) / 2,
            "row-wise dot products",
            row_dots,
        ),
        LossCase(
            "moco v2",
            "lightly NTXentLoss, memory bank",
            moco_ours,
            moco_lightly,
            "(B×K) query-queue similarities",
            lambda x: x.z1 @ x.queue.T,
        ),
        LossCase(
            "moco v3",
            "–",
            lambda x: (
                moco_v3_loss(x.z1, x.t2, temperature=moco_temperature)
                + moco_v3_loss(x.z2, x.t1, temperature=moco_temperature)
            ),
            None,
            "(B×B) query-key similarities",
            lambda x: torch.stack([x.z1 @ x.t2.T, x.z2 @ x.t1.T]),
        ),
        LossCase(
            "barlow_twins",
            "lightly BarlowTwinsLoss",
            lambda x: barlow_twins_loss(
                x.z1, x.z2, lambda_offdiag=BarlowTwinsConfig().lambda_offdiag
            ),
            lambda x: barlow(x.z1, x.z2),
            "(D×D) cross-correlation",
            lambda x: x.z1.T @ x.z2,
        ),
        LossCase(
            "vicreg",
            "lightly VICRegLoss",
            lambda x: vicreg_loss(x.z1, x.z2),
            lambda x: vicreg(x.z1, x.z2),
            "two (D×D) covariances",
            lambda x: torch.stack([x.z1.T @ x.z1, x.z2.T @ x.z2]),
        ),
        LossCase(
            "dino",
            "lightly DINOLoss",
            dino_ours,
            dino_lightly,
            "teacher × log-student contraction",
            lambda x: torch.einsum("tbk,sbk->ts", x.teacher, x.student),
        ),
    ]


def timed_step(loss: Loss, batch: Batch, upstream: Tensor | None = None) -> Callable[[], float]:
    """Seconds of one forward + backward of ``loss(batch)``; a limit, which is not a
    scalar, is backpropagated from ``upstream``. Gradients are reset before each (not
    accumulated), as a training step's ``zero_grad(set_to_none=True)`` leaves them."""

    def step() -> float:
        for leaf in batch.leaves():
            leaf.grad = None
        start = time.perf_counter()
        loss(batch).backward(upstream)
        return time.perf_counter() - start

    return step


def loss_rows(size: int, seed: int, repeats: int) -> list[str]:
    """Markdown rows of every method's loss at batch size ``size``: milliseconds (medians),
    ratios (medians of each round's own), and |ours − peer| on the first call."""
    batch = Batch.draw(size, seed)
    rows = []
    for case in loss_cases(batch):
        with torch.no_grad():
            upstream = torch.ones_like(case.limit(batch))
        delta = "–"
        if case.peer is not None:  # on the first calls: DINO's centres are still equal
            delta = f"{abs(case.ours(batch).item() - case.peer(batch).item()):.1e}"
        steps = {
            "ours": timed_step(case.ours, batch),
            "limit": timed_step(case.limit, batch, upstream),
        }
        if case.peer is not None:
            steps["peer"] = timed_step(case.peer, batch)
        seconds = interleaved_runs(steps, repeats)
        ms = {name: f"{1e3 * statistics.median(times):.2f}" for name, times in seconds.items()}
        peer_ratio = "–"
        if case.peer is not None:
            peer_ratio = f"{paired_ratio(seconds['ours'], seconds['peer']):.2f}"
        limit_ratio = paired_ratio(seconds["ours"], seconds["limit"])
        rows.append(
            f"| {case.method} | {size} | {ms['ours']} | {case.peer_name} | {ms.get('peer', '–')} "
            f"| {peer_ratio} | {case.limit_name} | {ms['limit']} | {limit_ratio:.2f} | {delta} |"
        )
        print(rows[-1], flush=True)
    return rows


def recipe_for(section: dict, epochs: int) -> Recipe:
    """ssl_digits.py's recipe of a method, validated once at the end (stubbed out here)."""
    return parse_recipe({**method_recipe(section["name"], epochs), "method": section})


def bare_loop(recipe: Recipe) -> tuple[float, float, int]:
    """(seconds, last epoch's mean loss, images seen) of the hand-written loop: the
    trainer's model, batches and views (its task), method and optimizer, seeded as the
    trainer seeds, and lightly's examples' step (the momentum update after the optimizer's)."""
    seed, epochs = recipe.train.seed, recipe.train.epochs
    start = time.perf_counter()  # from the data and model up, as train() is timed
    torch.manual_seed(seed)
    task = build_task(recipe, torch.device("cpu"))
    model, method = task.model, task.loss_fn
    optimizer = build_optimizer(recipe, model, method)
    schedule = build_schedule(recipe, optimizer, steps_per_epoch=task.num_batches())
    method.total_steps = task.num_batches() * epochs  # the momentum schedule spans the run
    images_seen = 0
    for epoch in range(epochs):
        torch.manual_seed(epoch_seed(seed, epoch))  # the trainer's per-epoch seeding
        generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        model.train(), method.train()
        losses = []
        for images, _ in task.batches(epoch):
            first, second = task.views(images, generator), task.second_views(images, generator)
            z1, z2 = model(first), model(second)
            if method.target_encoder is None:
                loss = method(z1, z2)
            else:
                with torch.no_grad():
                    t1, t2 = method.target_encoder(first), method.target_encoder(second)
                loss = method(z1, z2, t1, t2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            method.after_optimizer_step()  # the target's EMA update, the step count
            losses.append(loss.item())
            images_seen += len(images)
    return time.perf_counter() - start, sum(losses) / len(losses), images_seen


def training_row(label: str, epochs: int, repeats: int) -> tuple[str, float, bool]:
    """The method's Markdown row, the trainer's throughput over the bare loop's (median of
    the rounds' own ratios) and whether every run ended on the same training loss."""
    recipe = recipe_for(METHOD_SECTIONS[label], epochs)
    images = 0

    def bare() -> tuple[float, float]:
        nonlocal images
        seconds, loss, images = bare_loop(recipe)
        return seconds, loss

    runs = interleaved_runs(
        {"bare": bare, "trainer": lambda: trainer_run(recipe, validate=False)}, repeats
    )
    seconds = {loop: [s for s, _ in results] for loop, results in runs.items()}
    ratio = paired_ratio(seconds["bare"], seconds["trainer"])
    losses = sorted({f"{loss:.10f}" for results in runs.values() for _, loss in results})
    bare_s, trainer_s = (statistics.median(seconds[loop]) for loop in ("bare", "trainer"))
    pairs = zip(seconds["bare"], seconds["trainer"], strict=True)
    extra = statistics.median(trainer - bare for bare, trainer in pairs)  # the fixed cost
    row = (
        f"| {label} | {epochs} | {bare_s:.2f} | {trainer_s:.2f} | {extra * 1000:.0f} | "
        f"{images / bare_s:,.0f} | {images / trainer_s:,.0f} | {ratio:.2f} | {', '.join(losses)} |"
    )
    print(row, flush=True)
    return row, ratio, len(losses) == 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of training runs")
    parser.add_argument("--loss-repeats", type=int, default=30, help="rounds of loss steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see above)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    losses = [row for size in SIZES for row in loss_rows(size, args.seed, args.loss_repeats)]
    trained = {label: training_row(label, args.epochs, args.repeats) for label in METHOD_SECTIONS}
    missed = [f"{label} {ratio:.3f}" for label, (_, ratio, _) in trained.items() if ratio < TARGET]
    same_losses = all(same for *_, same in trained.values())
    ratios = ", ".join(f"{label} {ratio:.3f}" for label, (_, ratio, _) in trained.items())
    paragraphs = [paragraph.replace("\n", " ") for paragraph in __doc__.split("\n\n")]
    report = "\n".join(
        [
            "# Self-supervised methods: losses against lightly, the trainer against a bare loop",
            "",
            f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
            f"Wall time of the run: {time.perf_counter() - started:.0f} s; the machine's "
            f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at "
            f"the end ({os.cpu_count()} cores).",
            "",
            paragraphs[3],
            "",
            "## Losses",
            "",
            paragraphs[1],
            "",
            f"D = {DIM} (DINO: {DINOConfig().prototypes} prototype logits per view, two views; "
            f"MoCo v2: a full queue of {MoCoConfig().queue_size} keys). Median of "
            f"{args.loss_repeats} interleaved rounds after an untimed warm-up call of each; a "
            "ratio is the median of each round's own (time ours / time theirs: below 1 is "
            "faster). Δ loss: the absolute difference of ours and the peer's on the same tensors, "
            "in float32.",
            "",
            "| method | B | ours ms | peer | peer ms | ours / peer | limit | limit ms "
            "| ours / limit | Δ loss |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *losses,
            "",
            "## Training",
            "",
            paragraphs[2],
            "",
            f"Median of {args.repeats} interleaved rounds after an untimed warm-up run of each "
            "loop; throughput counts training images (each seen in two views), and 'trainer / "
            "bare' is the median of each round's own throughput ratio. The loss column holds "
            "every distinct last-epoch mean training loss over all runs of both loops.",
            "",
            "| method | epochs | bare s | trainer s | trainer − bare ms | bare images / s "
            "| trainer images / s | trainer / bare | last-epoch training loss |",
            "|---|---|---|---|---|---|---|---|---|",
            *(row for row, _, _ in trained.values()),
            "",
            f"Target: the trainer keeps ≥ {TARGET} of the bare loop's throughput: {ratios}; "
            + (f"**not met** ({', '.join(missed)})." if missed else "**met**.")
            + " Same last-epoch training loss in every run of both loops, per method: "
            + ("**met**." if same_losses else "**not met**."),
            "",
        ]
    )
    write_report(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
