"""Every self-supervised method on scikit-learn's digits (bundled), next to a supervised
encoder, a random one and the raw pixels: linear-probe and kNN accuracy of held-out digits.

No toolkit publishes CPU-scale numbers for these methods, so this is the reference table at
this scale. Each method trains the same small CNN (84-d features, probed as they are) for
the same epochs on the same two random affine views of the 1,257 training digits (30% held
out, stratified), at its registered defaults (``embedforge list methods``); the supervised
row is ``configs/digits_triplet.yaml`` at the same epochs. The probes are the library's
(:func:`embedforge.evaluate.probes.linear_probe`, a logistic regression fitted to
convergence on standardised features, and 5-NN). Writes benchmarks/results/ssl_digits.md.

    python benchmarks/ssl_digits.py [--epochs 100] [--methods byol,dino]
"""

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from embedforge.build import build_data, build_model
from embedforge.encoders.batch_norm import estimate_batch_norm_statistics
from embedforge.evaluate.probes import knn_accuracy, linear_probe
from embedforge.recipe import bundled_recipe, parse_recipe
from embedforge.registry import METHODS
from embedforge.run_items import load_run_embeddings
from embedforge.train.trainer import train
from measure import command_line, machine_line, write_report

RESULTS = Path(__file__).parent / "results" / "ssl_digits.md"
DATA = {"source": "digits", "test_fraction": 0.3, "seed": 0}
ENCODER = {
    "encoder": {"name": "small_cnn", "feature_dim": 84},
    "embedder": {"dim": 84, "normalize": False, "linear": False},
}
VIEWS = {"degrees": 15, "translate": 0.1, "scale": [0.9, 1.1]}


def method_recipe(name: str, epochs: int) -> dict:
    return {
        "data": DATA,
        **ENCODER,
        "method": {"name": name},
        "views": VIEWS,
        "optimizer": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": epochs, "batch_size": 256, "seed": 0, "validate_every": epochs},
    }


def probes(run_dir: Path) -> tuple[float, float]:
    items = load_run_embeddings(run_dir)
    train_x, train_y = items.reference, items.reference_labels
    test_x, test_y = items.query, items.query_labels
    return (
        linear_probe(train_x, train_y, test_x, test_y),
        knn_accuracy(train_x, train_y, test_x, test_y, k=5),
    )


def trained_row(label: str, recipe: dict | object, folder: Path) -> list[str]:
    recipe = recipe if not isinstance(recipe, dict) else parse_recipe(recipe)
    started = time.perf_counter()
    result = train(recipe, folder, progress=False)
    seconds = time.perf_counter() - started
    linear, knn = probes(folder)
    print(f"{label}: linear {linear:.4f}, kNN {knn:.4f}, {seconds:.0f} s", flush=True)
    epochs = str(result.epochs_run)
    return [label, epochs, f"{100 * linear:.1f}", f"{100 * knn:.1f}", f"{seconds:.0f}"]


def untrained_rows() -> list[list[str]]:
    """Raw pixels and the same CNN untrained (batch-norm statistics estimated on the data),
    on the split every run draws from the same data section."""
    recipe = parse_recipe({"data": DATA, **ENCODER})
    split = build_data(recipe.data)
    pixels = (split.train_images.flatten(1), split.test_images.flatten(1))
    torch.manual_seed(0)
    model = build_model(recipe, image_size=8, in_channels=1)
    estimate_batch_norm_statistics(model, split.train_images)
    model.eval()
    with torch.no_grad():
        random = (model(split.train_images), model(split.test_images))
    rows = []
    for label, (train_x, test_x) in (("raw pixels", pixels), ("random CNN", random)):
        linear = linear_probe(train_x, split.train_labels, test_x, split.test_labels)
        knn = knn_accuracy(train_x, split.train_labels, test_x, split.test_labels, k=5)
        rows.append([label, "0", f"{100 * linear:.1f}", f"{100 * knn:.1f}", "0"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--methods", default=",".join(METHODS.names()))
    args = parser.parse_args()
    methods = args.methods.split(",")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows += untrained_rows()
        supervised = bundled_recipe(
            "digits_triplet.yaml",
            [f"train.epochs={args.epochs}", "embedder.linear=false", "embedder.dim=84",
             "embedder.normalize=false"],
        )  # fmt: skip
        rows.append(trained_row("supervised (triplet, labels)", supervised, folder / "sup"))
        for name in methods:
            rows.append(trained_row(name, method_recipe(name, args.epochs), folder / name))
    header = ["encoder", "epochs", "linear probe %", "5-NN %", "training s"]
    lines = [
        "# Self-supervised methods on scikit-learn's digits (CPU)",
        "",
        f"Command: `{command_line()}` ({date.today()}; {machine_line()}).",
        f"Wall time of the run: {time.perf_counter() - started:.0f} s.",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    write_report(RESULTS, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
