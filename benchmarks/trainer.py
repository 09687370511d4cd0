"""The trainer against a bare hand-written PyTorch loop: same model, batches, loss, optimizer.

Both train configs/digits_triplet.yaml from the same seed, on two workloads:
the digits themselves (8×8 images, 7 batches per epoch, an epoch of ~50 ms, where
any fixed per-epoch cost shows) and 4,000 dSprites images (64×64, PK 3×64, an
epoch of about a second, closer to real training). The bare loop is the
textbook one (zero_grad, forward, loss, backward, step, schedule step) over the
same PK batches; the trainer adds what it does every epoch: validation
(retrieval metrics), checkpoints and metrics.jsonl. Its throughput is reported
twice, with validation and with validation stubbed out (loop + checkpoint
overhead only), and the final training losses are compared: same seed, same
numbers. Both are timed from building the data and model (generating dSprites
takes a noticeable part of a short run) to the last step. Writes
benchmarks/results/trainer.md.

    python benchmarks/trainer.py [--repeats 5]
"""

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from embedforge.build import build_optimizer, build_schedule
from embedforge.recipe import Recipe, load_recipe
from embedforge.train.image_task import ImageTask
from embedforge.train.task import epoch_seed
from embedforge.train.trainer import build_task, train
from measure import command_line, interleaved_runs, machine_line, paired_ratio, write_report

RECIPE = Path(__file__).parents[1] / "configs" / "digits_triplet.yaml"
WORKLOADS = {  # name: (epochs, recipe overrides)
    "digits (8×8, 1,257 images)": (20, []),
    "dSprites (64×64, 3,200 images)": (
        5,
        ["data.source=dsprites", "data.size=4000", "sampler.p=3", "sampler.k=64"],
    ),
}


def bare_loop(epochs: int, overrides: list[str]) -> tuple[float, float, int]:
    """(seconds, last epoch's mean loss, images seen) of the hand-written loop."""
    recipe = load_recipe(RECIPE, [f"train.epochs={epochs}", *overrides])
    seed = recipe.train.seed
    start = time.perf_counter()  # from the data and model up, as train() is timed
    torch.manual_seed(seed)
    task = build_task(recipe, torch.device("cpu"))
    model, loss_fn = task.model, task.loss_fn
    optimizer = build_optimizer(recipe, model, loss_fn)
    schedule = build_schedule(recipe, optimizer, steps_per_epoch=task.num_batches())
    images_seen = 0
    for epoch in range(epochs):
        torch.manual_seed(epoch_seed(seed, epoch))  # the trainer's per-epoch seeding
        model.train()
        losses = []
        for images, labels in task.batches(epoch):
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            images_seen += len(labels)
    return time.perf_counter() - start, sum(losses) / len(losses), images_seen


def trainer_run(recipe: Recipe, *, validate: bool) -> tuple[float, float]:
    """(seconds, last epoch's mean loss) of embedforge's trainer on ``recipe``; without
    ``validate``, validation is stubbed out (what remains is the loop's own overhead)."""
    original = ImageTask.validate
    if not validate:
        ImageTask.validate = lambda self: {recipe.train.best_metric: 0.0}
    try:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = train(recipe, Path(out) / "run", progress=False)
            seconds = time.perf_counter() - start
    finally:
        ImageTask.validate = original
    return seconds, result.history[-1]["loss"]


def measure_workload(name: str, repeats: int) -> tuple[list[str], float, bool]:
    """Markdown rows for one workload (bare loop, trainer without validation, trainer), the
    trainer's throughput without validation over the bare loop's, and whether every run
    ended with the same training loss.

    Each repeat runs the three loops back to back, and a row's ratio is the median of the
    repeats' own ratios to their bare run: the machine is shared, and its slow spells last
    longer than one repeat, so pairing runs that ran together cancels them out.
    """
    epochs, overrides = WORKLOADS[name]
    images = 0

    def bare() -> tuple[float, float]:
        nonlocal images
        seconds, loss, images = bare_loop(epochs, overrides)
        return seconds, loss

    recipe = load_recipe(RECIPE, [f"train.epochs={epochs}", *overrides])
    loops = {
        "bare": bare,
        "trainer, no val": lambda: trainer_run(recipe, validate=False),
        "trainer": lambda: trainer_run(recipe, validate=True),
    }
    runs = interleaved_runs(loops, repeats)
    bare_seconds = [s for s, _ in runs["bare"]]
    rows, ratios = [], {}
    for loop, results in runs.items():
        seconds = statistics.median(s for s, _ in results)
        ratios[loop] = paired_ratio(bare_seconds, [s for s, _ in results])
        losses = sorted({f"{loss:.10f}" for _, loss in results})
        rows.append(
            f"| {name} | {epochs} | {loop} | {seconds:.2f} | {images / seconds:,.0f} | "
            f"{ratios[loop]:.2f} | {', '.join(losses)} |"
        )
        print(rows[-1], flush=True)
    same_loss = len({loss for results in runs.values() for _, loss in results}) == 1
    return rows, ratios["trainer, no val"], same_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "trainer.md"
    )
    args = parser.parse_args()
    measured = {name: measure_workload(name, args.repeats) for name in WORKLOADS}
    rows = [row for workload_rows, _, _ in measured.values() for row in workload_rows]
    ratios = ", ".join(f"{ratio:.2f} ({name})" for name, (_, ratio, _) in measured.items())
    ratios_met = all(ratio >= 0.95 for _, ratio, _ in measured.values())
    losses_met = all(same for *_, same in measured.values())
    report = "\n".join(
        [
            "# Trainer: embedforge vs a bare PyTorch loop",
            "",
            f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
            "",
            f"configs/digits_triplet.yaml on two workloads, median of {args.repeats} interleaved "
            "runs after an untimed warm-up run of each loop, each timed from building data and "
            "model to its last step; 'throughput vs bare' is the median of each repeat's ratio "
            "to the bare run it ran beside (the shared machine's slow spells outlast a repeat). "
            "Throughput counts",
            "training images; the trainer's time includes its checkpoints (the resume point at",
            "most every train.checkpoint_interval_s = 30 s and after the last epoch, about 2 ms",
            "each), metrics.jsonl and TensorBoard events, and, in the 'trainer' rows, validation",
            "(embedding the held-out and training images and computing retrieval metrics every",
            "epoch; train.validate_every spaces it out).",
            "",
            "| workload | epochs | loop | seconds | images / s | throughput vs bare "
            "| last-epoch training loss |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Target: the trainer without validation keeps ≥ 0.95 of the bare loop's throughput: "
            f"{ratios}, {'**met**' if ratios_met else '**not met**'}. Same last-epoch training "
            f"loss in every run: {'**met**' if losses_met else '**not met**'}.",
            "",
        ]
    )
    write_report(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
