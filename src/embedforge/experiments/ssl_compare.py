"""``embedforge experiment ssl-compare``: which representation of dSprites shapes is good?

The comparison of a well-known representation-learning tutorial, rebuilt from the
library's parts (recipes, trainer, losses, probes, plots; nothing of its own but the
bookkeeping): encoders are trained on procedural dSprites (20,000 images, 80/20
split) and frozen, and a linear probe classifies the shape (square / ellipse /
heart, chance 1/3) from their features. Compared: raw pixels, a random untrained
encoder, a supervised encoder, a VAE, SimCLR, SimCLR with only 2 negatives per
item (as in the tutorial, the positive is then left out of the denominator:
``decoupled``), and two variants meant to beat the tutorial's SimCLR at equal epochs:
with a projection head, and at temperature 0.1 instead of 0.5.

Differences from the tutorial, on purpose: the main probe is the library's
(:func:`~embedforge.evaluate.probes.linear_probe`, a logistic regression on
standardised features fitted to convergence, the same for every encoder) rather
than a linear layer trained a fixed number of epochs; the tutorial's own protocol
(:func:`~embedforge.evaluate.probes.linear_layer_probe` with its epochs for that
encoder) is reported next to it, to compare like with like; the supervised row
reports the jointly trained classifier (the tutorial's number) too; each encoder is
validated once, after its last epoch, and that final state is probed (choosing an
epoch by test accuracy would flatter it).

Also: the biased training set (squares only on the left, ellipses in the middle,
hearts on the right, by x position) against an unbiased control of the same size,
both probed on the unbiased test images; and the few-shot curve (probe accuracy
with a fraction of the training labels; the supervised encoder is retrained from
scratch on each fraction, for ceil(epochs / sqrt(fraction)) epochs).

Each encoder trains into ``OUT/runs/<name>``; a run found complete there is
loaded, a partial one resumed, so a killed experiment continues where it stopped.
"""

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedforge.build import build_loss, build_model
from embedforge.data.dsprites import SHAPE_NAMES, dsprites
from embedforge.data.split import ImageSplit, stratified_split
from embedforge.encoders.batch_norm import estimate_batch_norm_statistics
from embedforge.errors import UserError
from embedforge.evaluate.html_page import grid, image, note, page, section
from embedforge.evaluate.plots import (
    few_shot_figure,
    require_matplotlib,
    rsm_grid_figure,
    write_png,
)
from embedforge.evaluate.probes import (
    FEW_SHOT_FRACTIONS,
    few_shot_curve,
    labelled_count,
    linear_layer_probe,
    linear_probe,
    stratified_order,
)
from embedforge.evaluate.rsm import similarity_matrix
from embedforge.experiments.biased_dsprites import biased_subset, control_subset
from embedforge.files.atomic import atomic_write_text
from embedforge.files.markers import FolderKind, prepare_folder, write_marker
from embedforge.files.run_folder import LAST, read_history
from embedforge.files.state import load_state
from embedforge.inference import embed_images
from embedforge.recipe import Recipe, bundled_recipe
from embedforge.train.trainer import train

CPU = torch.device("cpu")
SIZE, TEST_FRACTION, SEED = 20_000, 0.2, 0
EXPERIMENT = FolderKind(
    "experiment",
    frozenset({"runs", "results.json", "results.md", "report.html", "few_shot.png", "rsm.png"}),
)
"""The experiment's folder: continued by every invocation, never a folder of someone else's."""
CHANCE = 1 / len(SHAPE_NAMES)


@dataclass(frozen=True)
class Encoder:
    """One row of the comparison: how it is trained, and the tutorial's number for it."""

    name: str
    recipe: str | None  # a bundled recipe; None: no training (raw pixels, random)
    overrides: tuple[str, ...] = ()
    tutorial: float | None = None  # the tutorial's probe accuracy, percent
    in_biased_test: bool = False
    tutorial_probe_epochs: int | None = None  # its linear layer's epochs; None: no such probe
    method: str | None = None  # the registered method it trains (``--methods`` selects them)


METHOD_LABELS = {
    "byol": "BYOL",
    "simsiam": "SimSiam",
    "moco": "MoCo v2",
    "barlow_twins": "Barlow Twins",
    "vicreg": "VICReg",
    "dino": "DINO",
}
"""The methods compared besides SimCLR (whose rows come from dsprites_simclr.yaml)."""
QUICK = {"size": 1_500, "epochs_scale": 0.1}
"""``--quick``: a tenth of every schedule on 1,500 images, every method and baseline (under 5
minutes on a 2-core CPU; see benchmarks/results/ssl_compare_quick.md)."""
TWO_NEGATIVES = ("loss.neg_pairs=2", "loss.decoupled=true")  # the tutorial's ablation
ENCODERS = (
    Encoder("raw pixels", None, tutorial=39.55, in_biased_test=True, tutorial_probe_epochs=25),
    Encoder("random encoder", None, tutorial=44.67, in_biased_test=True, tutorial_probe_epochs=25),
    Encoder("supervised", "dsprites_supervised.yaml", tutorial=98.70, in_biased_test=True),
    Encoder(
        "SimCLR",
        "dsprites_simclr.yaml",
        tutorial=97.53,
        in_biased_test=True,
        tutorial_probe_epochs=10,
        method="simclr",
    ),
    Encoder(
        "SimCLR, 2 negatives",
        "dsprites_simclr.yaml",
        TWO_NEGATIVES,
        66.75,
        tutorial_probe_epochs=50,
    ),
    Encoder(
        "SimCLR + projection head",
        "dsprites_simclr.yaml",
        ("projection.hidden_dim=256", "projection.dim=64"),
        tutorial_probe_epochs=10,
    ),
    Encoder(
        "SimCLR, temperature 0.1",
        "dsprites_simclr.yaml",
        ("loss.temperature=0.1",),
        in_biased_test=True,
        tutorial_probe_epochs=10,
    ),
    # every other registered method, as dsprites_methods.yaml trains it (SimCLR's settings)
    *(
        Encoder(
            label,
            "dsprites_methods.yaml",
            (f"method.name={name}",),
            tutorial_probe_epochs=10,
            method=name,
        )
        for name, label in METHOD_LABELS.items()
    ),
    # last: by far the longest to train
    Encoder("VAE", "dsprites_vae.yaml", tutorial=45.75, tutorial_probe_epochs=25),
)


@dataclass(frozen=True)
class Row:
    """A row of the main table (accuracies as fractions; None while its run is pending)."""

    encoder: str
    epochs: int
    probe: float | None
    tutorial: float | None
    joint: float | None  # the supervised encoder's own classifier
    tutorial_probe: float | None  # the tutorial's protocol: a linear layer, its epochs
    pending: str | None = None  # "37/300 epochs": not trained yet (--no-train)


class Pending(Exception):
    """A run that is not complete, met with training turned off (``--no-train``)."""

    def __init__(self, done: int, epochs: int) -> None:
        super().__init__(f"{done}/{epochs} epochs")


def run_ssl_compare(
    out: Path,
    *,
    epochs_scale: float = 1.0,
    size: int = SIZE,
    command: str = "",
    progress: bool = True,
    train_runs: bool = True,
    methods: Sequence[str] | None = None,
) -> dict:
    """Train or load every encoder, probe them, write the tables, figures and report to ``out``.

    ``train_runs=False`` reports what is complete and lists the other runs as pending, so a
    long experiment can be looked at while it still trains. The VAE, by far the longest to
    train, comes last, after the biased set. ``methods``: the registered methods whose rows
    run (default all; the baselines — raw pixels, random, supervised, VAE — always do).
    """
    known = {e.method for e in ENCODERS if e.method}
    unknown = sorted(set(methods or ()) - known)
    if unknown:
        raise UserError(
            f"--methods: unknown {', '.join(unknown)}; expected {', '.join(sorted(known))}"
        )
    chosen = [e for e in ENCODERS if e.method is None or methods is None or e.method in methods]
    started = time.perf_counter()
    require_matplotlib()  # before hours of training: the figures come last
    prepare_folder(out, EXPERIMENT, reuse=True)  # continued, never another's folder
    write_marker(out, EXPERIMENT)
    data = dsprites(size, SEED)
    train_idx, test_idx = stratified_split(data.labels, TEST_FRACTION, SEED)
    ids = np.arange(len(data.labels))  # as a dSprites recipe names its items
    split = ImageSplit.select(data.images, data.labels, ids, train_idx, test_idx)
    runs = _Runs(out / "runs", split, epochs_scale, progress, train_runs)

    retrained = runs.supervised_few_shot(split)
    rows, features, curves = [], {}, {}

    def measure(encoder: Encoder) -> None:
        print(f"{encoder.name}: training or loading", flush=True)
        try:
            train_x, test_x, epochs, joint = runs.features(encoder, split, encoder.name)
        except Pending as pending:
            rows.append(Row(encoder.name, 0, None, encoder.tutorial, None, None, str(pending)))
            return
        curve = runs.cached(encoder.name, _probe_curve, train_x, test_x, split)
        curves[encoder.name] = curve
        probe = curve[-1][1]  # all the labels: the probe of the main table
        same_probe = None
        if encoder.tutorial_probe_epochs:
            same_probe = linear_layer_probe(
                train_x,
                split.train_labels,
                test_x,
                split.test_labels,
                epochs=encoder.tutorial_probe_epochs,
            )
        rows.append(Row(encoder.name, epochs, probe, encoder.tutorial, joint, same_probe))
        features[encoder.name] = test_x
        print(f"{encoder.name}: probe accuracy {probe:.4f}", flush=True)

    *quicker, slowest = chosen
    for encoder in quicker:
        measure(encoder)
    biased = _biased_rows(runs, data.latents.pos_x[train_idx], split, chosen)
    measure(slowest)
    curves["supervised, retrained per fraction"] = retrained

    results = {
        "command": command,
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "training_seconds": runs.training_seconds(),
        "epochs_scale": epochs_scale,
        "size": size,
        "methods": sorted(e.method for e in chosen if e.method),
        "rows": [asdict(row) for row in rows],
        "biased": biased,
        "few_shot": curves,
    }
    rsms = {
        name: similarity_matrix(x, split.test_labels, seed=SEED) for name, x in features.items()
    }
    figures = {
        "few_shot.png": few_shot_figure(
            {name: points for name, points in _measured(curves).items() if points},
            title="probe accuracy with a fraction of the labels",
            chance=CHANCE,
        ),
        "rsm.png": rsm_grid_figure(rsms, label_names=SHAPE_NAMES),
    }
    for name, png in figures.items():
        write_png(png, out / name)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    markdown = "\n".join(markdown_report(results)) + "\n"
    atomic_write_text(out / "results.md", markdown)
    atomic_write_text(out / "report.html", _html_report(results, figures))
    print(markdown)
    return results


class _Runs:
    """Trains (or loads, or resumes) the encoders' runs under one folder."""

    def __init__(
        self, folder: Path, split: ImageSplit, scale: float, progress: bool, train_runs: bool
    ) -> None:
        self.folder, self.scale, self.progress = folder, scale, progress
        self.train_runs = train_runs
        self.size = len(split.train_labels) + len(split.test_labels)

    def recipe(self, encoder: Encoder, *, train_items: int, epochs: int | None = None) -> Recipe:
        """The encoder's recipe at this scale; validated once, after the last epoch."""
        base = bundled_recipe(encoder.recipe)
        epochs = epochs or max(1, round(base.train.epochs * self.scale))
        batch = min(base.train.batch_size, max(2, train_items // 3))  # 3+ steps an epoch
        return bundled_recipe(
            encoder.recipe,
            [
                *encoder.overrides,
                f"data.size={self.size}",
                f"train.epochs={epochs}",
                f"train.validate_every={epochs}",
                f"train.batch_size={batch}",
            ],
        )

    def features(
        self, encoder: Encoder, split: ImageSplit, run_name: str, *, epochs: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, int, float | None]:
        """(train features, test features, epochs trained, joint classifier accuracy).

        Raises :class:`Pending` for an incomplete run when training is turned off.
        """
        if encoder.recipe is None and encoder.name == "raw pixels":
            return split.train_images.flatten(1), split.test_images.flatten(1), 0, None
        _, channels, image_size, _ = split.train_images.shape
        if encoder.recipe is None:  # the random encoder: SimCLR's model, as initialised
            torch.manual_seed(SEED)
            model = build_model(
                bundled_recipe("dsprites_simclr.yaml"), image_size=image_size, in_channels=channels
            )
            estimate_batch_norm_statistics(model, split.train_images)
            return (*self._embed(model, split), 0, None)
        recipe = self.recipe(encoder, train_items=len(split.train_labels), epochs=epochs)
        run = self.folder / _folder_name(run_name)
        if self.train_runs:
            train(recipe, run, resume=True, progress=self.progress, data=split)
        elif len(read_history(run)) < recipe.train.epochs:
            raise Pending(len(read_history(run)), recipe.train.epochs)
        state = load_state(run / LAST)
        model = build_model(recipe, image_size=image_size, in_channels=channels)
        model.load_state_dict(state["model"])
        train_x, test_x = self._embed(model, split)
        joint = None
        if recipe.loss.name == "softmax":
            classifier = build_loss(recipe, num_classes=len(SHAPE_NAMES))
            classifier.load_state_dict(state["loss"])
            with torch.no_grad():
                predicted = classifier.logits(test_x).argmax(dim=1)
            joint = (predicted == split.test_labels).double().mean().item()
        return train_x, test_x, recipe.train.epochs, joint

    def training_seconds(self) -> float:
        """Seconds spent in training epochs by every run so far, resumed runs included."""
        histories = (read_history(run) for run in self.folder.iterdir() if run.is_dir())
        return sum(row.get("seconds", 0.0) for history in histories for row in history)

    def cached(self, run_name: str, compute: Callable[..., Any], *args: Any) -> Any:
        """``compute(*args)``'s JSON result, kept in the run's folder until the run changes.

        The probes of raw pixels take minutes: a resumed experiment should not redo them.
        """
        folder = self.folder / _folder_name(run_name)
        path, checkpoint = folder / "probe.json", folder / LAST
        if path.is_file() and (
            not checkpoint.exists() or path.stat().st_mtime >= checkpoint.stat().st_mtime
        ):
            return json.loads(path.read_text())
        value = compute(*args)
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(value)
        atomic_write_text(path, text)
        return json.loads(text)  # the same types as a cached value (tuples become lists)

    def _embed(self, model: torch.nn.Module, split: ImageSplit) -> tuple[torch.Tensor, ...]:
        return embed_images(model, split.train_images, CPU), embed_images(
            model, split.test_images, CPU
        )

    def supervised_few_shot(self, split: ImageSplit) -> list[tuple[float, float | None]]:
        """The supervised encoder trained from scratch on each labelled fraction (its own
        classifier's accuracy; None while pending)."""
        supervised = next(e for e in ENCODERS if e.recipe == "dsprites_supervised.yaml")
        full_epochs = max(1, round(bundled_recipe(supervised.recipe).train.epochs * self.scale))
        order = stratified_order(split.train_labels, seed=SEED)
        curve = []
        for fraction in FEW_SHOT_FRACTIONS:
            kept = order[: labelled_count(fraction, len(order), len(SHAPE_NAMES))]
            subset = _training_subset(split, kept)
            epochs = math.ceil(full_epochs / math.sqrt(fraction))
            name = f"supervised, {fraction:g} of the labels"
            try:
                *_, joint = self.features(supervised, subset, name, epochs=epochs)
            except Pending:
                joint = None
            curve.append((fraction, joint))
            print(f"{name}: {joint}", flush=True)
        return curve


def _biased_rows(
    runs: _Runs, pos_x: torch.Tensor, split: ImageSplit, chosen: Sequence[Encoder]
) -> list[dict]:
    """Each encoder trained and probed on the biased subset and on its control."""
    biased = biased_subset(split.train_labels, pos_x)
    subsets = {"biased": biased, "control": control_subset(len(pos_x), len(biased), SEED)}
    rows = []
    for encoder in (e for e in ENCODERS if e.in_biased_test and e in chosen):
        row = {"encoder": encoder.name}
        for kind, kept in subsets.items():
            subset = _training_subset(split, kept)
            name = f"{encoder.name}, {kind}"
            try:
                train_x, test_x, *_ = runs.features(encoder, subset, name)
            except Pending:
                row[kind] = None
                continue
            row[kind] = runs.cached(
                name, linear_probe, train_x, subset.train_labels, test_x, subset.test_labels
            )
        row["items"] = len(biased)
        rows.append(row)
        print(f"{encoder.name}: biased {row['biased']}, control {row['control']}", flush=True)
    return rows


def _probe_curve(
    train_x: torch.Tensor, test_x: torch.Tensor, split: ImageSplit
) -> list[tuple[float, float]]:
    """(fraction of the training labels, probe accuracy), the last point with all of them."""
    curve = few_shot_curve(train_x, split.train_labels, test_x, split.test_labels)
    return [(point.fraction, point.accuracy) for point in curve]


def machine() -> str:
    """Where the experiment trains (the trainer's default device), so its times mean something."""
    if torch.cuda.is_available():
        return f"a GPU ({torch.cuda.get_device_name()}, torch {torch.__version__})"
    return f"the CPU ({torch.get_num_threads()} threads, torch {torch.__version__})"


def _measured(curves: dict[str, list]) -> dict[str, list]:
    """The curves without their pending points."""
    return {name: [p for p in curve if p[1] is not None] for name, curve in curves.items()}


def _training_subset(split: ImageSplit, kept: torch.Tensor | np.ndarray) -> ImageSplit:
    """``split`` training on the ``kept`` training items only; the test items stay all."""
    train_ids = None if split.train_ids is None else split.train_ids[np.asarray(kept)]
    return ImageSplit(
        split.train_images[kept],
        split.train_labels[kept],
        split.test_images,
        split.test_labels,
        train_ids,
        split.test_ids,
    )


def _folder_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _difference(first: float | None, second: float | None) -> str:
    return "" if first is None or second is None else f"{100 * (first - second):+.2f}"


def main_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main comparison, accuracies in percent."""
    header = [
        "encoder",
        "epochs",
        "probe %",
        "tutorial %",
        "Δ points",
        "tutorial's probe %",
        "Δ points, same probe",
        "joint classifier %",
    ]
    rows = []
    for row in results["rows"]:
        tutorial = None if row["tutorial"] is None else row["tutorial"] / 100
        rows.append(
            [
                row["encoder"],
                str(row["epochs"]),
                f"pending ({row['pending']})" if row["pending"] else _percent(row["probe"]),
                _percent(tutorial),
                _difference(row["probe"], tutorial),
                _percent(row["tutorial_probe"]),
                _difference(row["tutorial_probe"], tutorial),
                _percent(row["joint"]),
            ]
        )
    return header, rows


def biased_table(results: dict) -> tuple[list[str], list[list[str]]]:
    header = ["encoder", "biased %", "control %", "biased − control (points)"]
    rows = [
        [
            row["encoder"],
            _percent(row["biased"]) or "pending",
            _percent(row["control"]) or "pending",
            _difference(row["biased"], row["control"]),
        ]
        for row in results["biased"]
    ]
    return header, rows


def few_shot_table(results: dict) -> tuple[list[str], list[list[str]]]:
    fractions = [f"{fraction:g}" for fraction, _ in next(iter(results["few_shot"].values()))]
    rows = [
        [name, *(_percent(accuracy) for _, accuracy in curve)]
        for name, curve in results["few_shot"].items()
    ]
    return ["encoder", *fractions], rows


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _pending_line(results: dict) -> list[str]:
    pending = [f"{row['encoder']} ({row['pending']})" for row in results["rows"] if row["pending"]]
    if not pending:
        return []
    return [
        f"**Not complete when this was written** (`--no-train`): {', '.join(pending)}; "
        "its run continues where it stopped when the command is run again.",
        "",
    ]


def markdown_report(results: dict) -> list[str]:
    """The results as Markdown: the command and wall time, then the three tables."""
    minutes, training = results["seconds"] / 60, results["training_seconds"] / 60
    items = results["biased"][0]["items"] if results["biased"] else 0
    return [
        "# Self-supervised comparison on dSprites shapes",
        "",
        f"Command: `{results['command']}`. Wall time of this invocation: {minutes:.1f} min on "
        f"{results['machine']}; the encoders' training epochs took {training:.1f} min in all (runs "
        "interrupted and resumed included; loaded runs are not retrained).",
        f"Data: procedural dSprites, {results['size']:,} images, 80/20 split, seed {SEED}; "
        f"schedules scaled by {results['epochs_scale']:g}. Probe: the library's "
        "logistic regression on standardised frozen features (chance 33.33%); the tutorial's "
        "probe: one linear layer on the raw features, Adam 1e-3, cosine schedule, batch 1000, "
        "for the tutorial's epochs for that encoder (10 for SimCLR, 50 for its 2-negative "
        "ablation, 25 for the others; the supervised row's tutorial number is its own "
        "classifier).",
        "",
        *_pending_line(results),
        "## Probe accuracy against the tutorial",
        "",
        *_markdown_table(*main_table(results)),
        "",
        "## Biased training set against an unbiased control",
        "",
        f"Each encoder trained (if it trains) and probed on {items:,} training images: squares "
        "only with x ≤ 0.3, ellipses with 0.35 ≤ x ≤ 0.65, hearts with x ≥ 0.7 (biased), or a "
        "random subset of the same size (control); tested on the unbiased test images.",
        "",
        *_markdown_table(*biased_table(results)),
        "",
        "## Few-shot: probe accuracy (%) by fraction of the training labels",
        "",
        *_markdown_table(*few_shot_table(results)),
        "",
        "![few-shot curve](few_shot.png)",
        "",
        "Cosine similarity of up to 1,000 test images sorted by shape, one column per encoder, "
        "with histograms:",
        "",
        "![representational similarity matrices](rsm.png)",
    ]


def _html_report(results: dict, figures: dict[str, bytes]) -> str:
    minutes = results["seconds"] / 60
    sections = [
        section(
            "results",
            "Probe accuracy against the tutorial",
            note(f"{results['command']} — {minutes:.1f} min") + grid(*main_table(results)),
        ),
        section("biased", "Biased training set", grid(*biased_table(results))),
        section(
            "few-shot",
            "Few-shot",
            image(figures["few_shot.png"], "few-shot curve") + grid(*few_shot_table(results)),
        ),
        section("rsm", "Representational similarity", image(figures["rsm.png"], "RSMs")),
    ]
    return page("Self-supervised comparison on dSprites shapes", sections)
