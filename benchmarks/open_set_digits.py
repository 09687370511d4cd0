"""Known or new on the digits: does a calibrated "new individual" threshold beat none?

Protocol. Digits 0-6 are the "known individuals", digits 7-9 the "new" ones,
never seen in training. The embedding (SmallCNN + 64-d normalised embedder,
batch-hard triplet loss, PK batches, the demo's recipe) is trained on 60% of
the known images. Validation queries: 20% of the known images plus half of the
new-class images (truth "new_individual"); test queries: the other 20% of the
known images plus the other half of the new-class images. The threshold is
calibrated on validation with the training images as the reference, then test
queries are answered against train + known validation images (the new
classes' validation images stay out of the reference, or those classes would be
known). Test MAP@5 is reported with the calibrated threshold and with none
(threshold +inf: "new" only after all K neighbours). The image splits change
with the seed; the class split does not. Writes
benchmarks/results/open_set_digits.md and, when matplotlib is installed, the
validation threshold curves to benchmarks/results/open_set_digits.png.

    python benchmarks/open_set_digits.py [--seeds 0 1 2] [--epochs 100]
"""

import argparse
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from embedforge.build import build_optimizer, build_schedule
from embedforge.data.split import ImageSplit
from embedforge.evaluate.open_set import (
    NEW_LABEL,
    ThresholdCalibration,
    calibrate_threshold,
    map_at_5,
    mark_unseen_as_new,
    predict_with_threshold,
)
from embedforge.inference import embed_images
from embedforge.metrics.knn import knn_search
from embedforge.recipe import Recipe, parse_recipe
from embedforge.train.image_task import ImageTask
from embedforge.train.task import epoch_seed
from measure import command_line, machine_line, write_report

NEW_DIGITS = (7, 8, 9)
NEIGHBOURS = 50  # K reference neighbours per query, as in the Kaggle re-id notebooks
# Where the validation curve is tabulated (embeddings have unit norm, so distances are <= 2).
CURVE_THRESHOLDS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.3, 0.5, 1.0, np.inf)
RESULTS = Path(__file__).parent / "results"
CPU = torch.device("cpu")


@dataclass(frozen=True)
class OpenSetSplit:
    """Images (n, 1, 8, 8) and their digit labels (n,) for each part of the protocol."""

    train_images: torch.Tensor
    train_labels: np.ndarray
    val_images: torch.Tensor
    val_labels: np.ndarray
    test_images: torch.Tensor
    test_labels: np.ndarray


@dataclass(frozen=True)
class SeedResult:
    seed: int
    calibration: ThresholdCalibration
    curve: np.ndarray  # validation MAP@5 at CURVE_THRESHOLDS
    test: dict[str, float]  # "{all,known,new} {calibrated,none}" -> test MAP@5
    sizes: dict[str, int]
    seconds: float


def open_set_split(seed: int) -> OpenSetSplit:
    """The protocol's split (module notes); digits scaled to [0, 1] as in ``digits_images``."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    known = ~np.isin(labels, NEW_DIGITS)
    known_idx, new_idx = np.flatnonzero(known), np.flatnonzero(~known)
    train, held = train_test_split(
        known_idx, test_size=0.4, random_state=seed, stratify=labels[known_idx]
    )
    val_known, test_known = train_test_split(
        held, test_size=0.5, random_state=seed, stratify=labels[held]
    )
    val_new, test_new = train_test_split(
        new_idx, test_size=0.5, random_state=seed, stratify=labels[new_idx]
    )
    val, test = np.concatenate([val_known, val_new]), np.concatenate([test_known, test_new])
    images = torch.from_numpy(images)
    return OpenSetSplit(
        images[train], labels[train], images[val], labels[val], images[test], labels[test]
    )


def recipe(*, epochs: int, seed: int) -> Recipe:
    """The demo's recipe, with one class of each of the 7 known digits per PK batch."""
    return parse_recipe(
        {
            "embedder": {"dim": 64, "normalize": True},
            "loss": {"name": "triplet_margin", "margin": 0.2, "mining": "batch_hard"},
            "sampler": {"p": 7, "k": 16},
            "optimizer": {"name": "adam", "lr": 0.003},
            "schedule": {"name": "one_cycle"},
            "train": {"epochs": epochs, "seed": seed, "device": "cpu"},
        }
    )


def train_on_known(split: OpenSetSplit, *, epochs: int, seed: int) -> nn.Module:
    """The trainer's step on the known training images only (its data section can't hold out
    classes); seeded per epoch as the trainer is."""
    plan = recipe(epochs=epochs, seed=seed)
    torch.manual_seed(seed)
    images = ImageSplit(
        split.train_images,
        torch.from_numpy(split.train_labels),
        split.train_images[:1],  # validation is done here, not by the task
        torch.from_numpy(split.train_labels[:1]),
    )
    task = ImageTask(plan, images, CPU)
    optimizer = build_optimizer(plan, task.model, task.loss_fn)
    schedule = build_schedule(plan, optimizer, steps_per_epoch=task.num_batches())
    for epoch in range(epochs):
        torch.manual_seed(epoch_seed(seed, epoch))  # the trainer's per-epoch seeding
        generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        task.model.train()
        for batch in task.batches(epoch):
            optimizer.zero_grad()
            task.batch_loss(batch, generator).backward()
            optimizer.step()
            schedule.step()
    return task.model


def neighbours(
    model: nn.Module, queries: torch.Tensor, reference: torch.Tensor, reference_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(nq, K) ascending Euclidean distances and the neighbours' labels (object array)."""
    distances, indices = knn_search(
        embed_images(model, queries, CPU), embed_images(model, reference, CPU), NEIGHBOURS
    )
    return distances.numpy(), reference_labels.astype(object)[indices.numpy()]


def run_seed(seed: int, *, epochs: int) -> SeedResult:
    start = time.perf_counter()
    split = open_set_split(seed)
    model = train_on_known(split, epochs=epochs, seed=seed)

    # Calibrate: validation queries against the training images.
    val_truth = mark_unseen_as_new(split.val_labels, split.train_labels)
    val_distances, val_labels = neighbours(
        model, split.val_images, split.train_images, split.train_labels
    )
    calibration = calibrate_threshold(val_distances, val_labels, val_truth)
    curve = calibrate_threshold(
        val_distances, val_labels, val_truth, candidates=CURVE_THRESHOLDS[:-1]
    )
    curve_scores = np.append(curve.scores, curve.map_at_5_without_threshold)

    # Test: against train + the known validation images (never the new ones).
    val_known = ~np.isin(split.val_labels, NEW_DIGITS)
    reference = torch.cat([split.train_images, split.val_images[val_known]])
    reference_labels = np.concatenate([split.train_labels, split.val_labels[val_known]])
    test_truth = mark_unseen_as_new(split.test_labels, reference_labels)
    test_distances, test_labels = neighbours(model, split.test_images, reference, reference_labels)
    is_new = test_truth == NEW_LABEL
    test = {}
    for name, threshold in [("calibrated", calibration.threshold), ("none", np.inf)]:
        predictions = predict_with_threshold(test_distances, test_labels, threshold)
        for part, rows in [("all", slice(None)), ("known", ~is_new), ("new", is_new)]:
            test[f"{part} {name}"] = map_at_5(predictions[rows], test_truth[rows])
    sizes = {
        "train": len(split.train_labels),
        "val known": int(val_known.sum()),
        "val new": int((~val_known).sum()),
        "test known": int((~is_new).sum()),
        "test new": int(is_new.sum()),
        "test reference": len(reference_labels),
    }
    return SeedResult(seed, calibration, curve_scores, test, sizes, time.perf_counter() - start)


def plot_curves(results: list[SeedResult], path: Path) -> bool:
    """The validation MAP@5 against threshold, one line per seed; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for result in results:
        c = result.calibration
        (line,) = axes.plot(c.thresholds, c.scores, label=f"seed {result.seed}")
        style = {"color": line.get_color(), "linewidth": 1}
        axes.axvline(c.threshold, linestyle=":", **style)
        axes.axhline(c.map_at_5_without_threshold, linestyle="--", **style)
    axes.set_xlabel("distance threshold (unit-norm embeddings)")
    axes.set_ylabel("validation MAP@5")
    axes.set_title("Digits 7-9 as new individuals: dotted = chosen, dashed = no threshold")
    axes.title.set_fontsize(9)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def report(results: list[SeedResult], *, epochs: int, plotted: bool, seconds: float) -> str:
    mean = {key: np.mean([r.test[key] for r in results]) for key in results[0].test}
    sizes = ", ".join(f"{k} {v}" for k, v in results[0].sizes.items())
    lines = [
        "# Known or new on the digits: calibrated threshold vs none",
        "",
        f"Command: `{command_line()}` ({date.today()}; {machine_line()}).",
        "",
        "Protocol: digits 0-6 are known individuals, 7-9 new. The embedding (SmallCNN, 64-d",
        "normalised, batch-hard triplet, margin 0.2, PK 7×16, Adam 3e-3 one-cycle,",
        f"{epochs} epochs) is trained on 60% of the known images (stratified). Validation:",
        "20% of the known images + half of the 7-9 images (truth `new_individual`); test: the",
        "other 20% of the known images + the other half of the 7-9 images. The threshold is",
        f"calibrated on validation ({NEIGHBOURS} Euclidean neighbours among the training",
        "images, 100 quantile candidates, `calibrate_threshold`), then test queries are",
        "answered against train + known validation images (the 7-9 validation images are",
        "not in the reference). No threshold = +inf: `new_individual` only after all",
        f"{NEIGHBOURS} neighbours. Image splits depend on the seed; seeds "
        f"{', '.join(str(r.seed) for r in results)}.",
        f"Sizes (seed {results[0].seed}): {sizes}.",
        "",
        "## Test MAP@5",
        "",
        "| seed | threshold | val calibrated | val none | test calibrated | test none "
        "| known: cal. / none | new: cal. / none |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, t = r.calibration, r.test
        lines.append(
            f"| {r.seed} | {c.threshold:.4f} | {c.map_at_5:.4f} "
            f"| {c.map_at_5_without_threshold:.4f} | **{t['all calibrated']:.4f}** "
            f"| {t['all none']:.4f} | {t['known calibrated']:.4f} / {t['known none']:.4f} "
            f"| {t['new calibrated']:.4f} / {t['new none']:.4f} |"
        )
    thresholds = np.mean([r.calibration.threshold for r in results])
    val_cal = np.mean([r.calibration.map_at_5 for r in results])
    val_none = np.mean([r.calibration.map_at_5_without_threshold for r in results])
    lines.append(
        f"| mean | {thresholds:.4f} | {val_cal:.4f} | {val_none:.4f} "
        f"| **{mean['all calibrated']:.4f}** | {mean['all none']:.4f} "
        f"| {mean['known calibrated']:.4f} / {mean['known none']:.4f} "
        f"| {mean['new calibrated']:.4f} / {mean['new none']:.4f} |"
    )
    wins = sum(r.test["all calibrated"] > r.test["all none"] for r in results)
    lines += [
        "",
        f"Calibrated > no threshold on test: {wins} of {len(results)} seeds; mean "
        f"{mean['all calibrated']:.4f} vs {mean['all none']:.4f} "
        f"({mean['all calibrated'] - mean['all none']:+.4f}).",
        "",
        "## Validation curve (MAP@5 at fixed thresholds)",
        "",
        "| threshold | " + " | ".join(f"seed {r.seed}" for r in results) + " | mean |",
        "|---|" + "---|" * (len(results) + 1),
    ]
    for i, threshold in enumerate(CURVE_THRESHOLDS):
        scores = [r.curve[i] for r in results]
        name = "none (+inf)" if np.isinf(threshold) else f"{threshold:g}"
        lines.append(
            f"| {name} | " + " | ".join(f"{s:.4f}" for s in scores) + f" | {np.mean(scores):.4f} |"
        )
    lines += [
        "",
        "Curve plot: "
        + (
            "[open_set_digits.png](open_set_digits.png) (dotted: chosen threshold; dashed: none)."
            if plotted
            else "not drawn (matplotlib is not installed)."
        ),
        "",
        f"Total time {seconds:.1f} s ("
        + ", ".join(f"seed {r.seed}: {r.seconds:.1f} s" for r in results)
        + ").",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    start = time.perf_counter()
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, epochs=args.epochs))
        r = results[-1]
        print(
            f"seed {seed}: threshold {r.calibration.threshold:.4f}, test MAP@5 "
            f"calibrated {r.test['all calibrated']:.4f} vs none {r.test['all none']:.4f} "
            f"({r.seconds:.1f} s)"
        )
    plotted = plot_curves(results, RESULTS / "open_set_digits.png")
    text = report(results, epochs=args.epochs, plotted=plotted, seconds=time.perf_counter() - start)
    write_report(RESULTS / "open_set_digits.md", text)
    print(text)


if __name__ == "__main__":
    main()
