"""Every self-supervised method on palettes: the linear probes of benchmarks/palettes.py per method.

``PaletteEmbedder(method=...)`` trains the default encoder (the Set Transformer) with each
registered method at its registered defaults (``embedforge list methods``), on the same
synthetic palettes, set views and epochs as ``benchmarks/palettes.py``; the estimator's default
objective (NT-Xent through a projection head, no method) and the hand-made palette statistics
are the reference rows. Each embedding is probed exactly as there (``probe_scores``: the
same 80/20 split of objects, logistic regression for the hue family, ridge R² for the
others), and each fit is timed. Writes benchmarks/results/palette_methods.md.

    python benchmarks/palette_methods.py            # 24,000 objects, the estimator's epochs
    python benchmarks/palette_methods.py --quick    # 1,000 objects, 1 epoch: a smoke run
"""

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from embedforge import PaletteEmbedder
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.registry import METHODS
from measure import command_line, machine_line, write_report
from palettes import (
    DEFAULT_ENCODER,
    FACTORS,
    markdown_table,
    palette_statistics,
    probe_scores,
    run_ours,
)

STATISTICS = "Palette statistics (mean colour, colours)"
DEFAULT_OBJECTIVE = "no method: NT-Xent + projection head (the default)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 objects, 1 epoch")
    parser.add_argument("--objects", type=int, default=None, help="default 24,000 (quick 1,000)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the estimator's")
    parser.add_argument("--methods", default=",".join(METHODS.names()))
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "palette_methods.md"
    )
    args = parser.parse_args()
    n_objects = args.objects or (1_000 if args.quick else 24_000)
    epochs = args.epochs or (1 if args.quick else PaletteEmbedder().epochs)
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {METHODS.names()}")
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    data = synthetic_palettes(n_objects, seed=args.seed)
    rows, latents = data.rows, data.latents
    print(f"{n_objects:,} objects, {len(rows):,} rows", flush=True)

    objectives: dict[str, str | None] = {DEFAULT_OBJECTIVE: None} | {m: m for m in methods}
    features, fit_seconds = {STATISTICS: palette_statistics(rows)}, {}
    for label, method in objectives.items():
        print(f"ours: {label}", flush=True)
        run = run_ours(
            DEFAULT_ENCODER, rows, dim=args.dim, epochs=epochs, seed=args.seed, method=method
        )
        features[label], fit_seconds[label] = run.embedding, run.fit_seconds
        print(f"  fit {run.fit_seconds:.1f} s", flush=True)

    order = np.random.default_rng(args.seed).permutation(n_objects)  # palettes.py's split
    test, train = order[: n_objects // 5], order[n_objects // 5 :]
    probes = {name: probe_scores(f, latents, train, test) for name, f in features.items()}
    table_rows = [
        [
            f"`{name}`" if name in METHODS else name,
            *(f"{scores[factor]:.3f}" for factor in FACTORS),
            f"{fit_seconds[name] / epochs:.1f}" if name in fit_seconds else "—",
        ]
        for name, scores in probes.items()
    ]
    reference = probes[DEFAULT_OBJECTIVE]
    at_least = [m for m in methods if probes[m]["hue_family"] >= reference["hue_family"]]
    statistics = probes[STATISTICS]
    beat_statistics = [
        m for m in methods if sum(probes[m][f] > statistics[f] for f in FACTORS) > len(FACTORS) / 2
    ]
    wall = time.perf_counter() - started
    note = "" if n_objects == 24_000 else " (NOT benchmarks/palettes.py's 24,000: a reduced run)"
    report = [
        "# Every self-supervised method on palettes: linear probes",
        "",
        f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
        f"Wall time of the run: {wall / 60:.1f} min.",
        "",
        f"Data: `synthetic_palettes({n_objects}, seed={args.seed})`: {n_objects:,} objects{note},"
        f" {len(rows):,} rows. Each row: `PaletteEmbedder(encoder={DEFAULT_ENCODER!r},"
        f" dim={args.dim}, epochs={epochs}, random_state={args.seed}, method=...)` at the method's"
        " registered defaults, trained on all objects without labels (the estimator keeps the"
        " best epoch on its 1,000 validation objects), then probed as in"
        " `benchmarks/palettes.py`: fitted on 80% of the objects, scored on the other 20%;"
        " hue_family is a logistic regression's accuracy (8 classes, chance 0.125), the others"
        " ridge R² (hue: onto its sin and cos). Higher is better. s / epoch is fit time over"
        " the epochs (reading the table included); the machine is shared by other work, so"
        " read those as rough.",
        "",
        *markdown_table(["embedding", *FACTORS, "s / epoch"], table_rows),
        "",
        f"Methods whose hue-family probe is at least the default objective's"
        f" ({reference['hue_family']:.3f}): {', '.join(at_least) or 'none'}.",
        f"Methods beating the palette statistics on most of the {len(FACTORS)} factors:"
        f" {', '.join(beat_statistics) or 'none'}.",
    ]
    write_report(args.out, "\n".join(report) + "\n")
    print(f"wrote {args.out} ({wall / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
