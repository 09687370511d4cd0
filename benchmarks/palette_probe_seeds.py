"""Palette probes over several training seeds: does the Set Transformer beat the raster CNN on
every latent factor, or only on one seed's draw?

benchmarks/palettes.py fits each encoder once (seed 0) and reports its linear probes. On some
factors the Set Transformer and the raster CNN are a few thousandths apart there, less than one
seed's noise, so one run cannot say which is ahead. This run keeps the data, the probe split and
every setting of palettes.py and changes only the estimator's ``random_state`` (its weights,
batches, views and validation hold-out), fitting each encoder once per seed, and writes the
probe scores per seed, their mean and standard deviation, and the paired differences against
the raster CNN to benchmarks/results/palette_probe_seeds.md.

    python benchmarks/palette_probe_seeds.py              # seeds 0, 1, 2 on 24,000 objects
    python benchmarks/palette_probe_seeds.py --quick      # 1,000 objects, 1 epoch, 2 seeds
"""

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np

from embedforge import PaletteEmbedder
from embedforge.data.synthetic_palettes import synthetic_palettes
from measure import command_line, machine_line, write_report
from palettes import DEFAULT_ENCODER, ENCODERS, FACTORS, markdown_table, probe_scores, run_ours

DATA_SEED = 0
"""The data and the probe split stay those of palettes.py: only the training seed varies."""
REFERENCE = "raster_cnn"


def mean_std(values: list[float]) -> str:
    """``mean ± sample standard deviation`` (the standard deviation is 0 for one value)."""
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.3f} ± {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 objects, 1 epoch, 2 seeds")
    parser.add_argument("--seeds", type=int, default=None, help="training seeds (default 3)")
    parser.add_argument("--objects", type=int, default=None, help="default 24,000 (quick 1,000)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "palette_probe_seeds.md"
    )
    args = parser.parse_args()
    n_objects = args.objects or (1_000 if args.quick else 24_000)
    n_seeds = args.seeds or (2 if args.quick else 3)
    epochs = 1 if args.quick else PaletteEmbedder().epochs
    started = time.perf_counter()

    data = synthetic_palettes(n_objects, seed=DATA_SEED)
    rows, latents = data.rows, data.latents
    order = np.random.default_rng(DATA_SEED).permutation(n_objects)  # as palettes.py splits
    test, train = order[: n_objects // 5], order[n_objects // 5 :]
    scores: dict[str, list[dict[str, float]]] = {encoder: [] for encoder in ENCODERS}
    fit_seconds: dict[str, list[float]] = {encoder: [] for encoder in ENCODERS}
    for seed in range(n_seeds):
        for encoder in ENCODERS:
            print(f"seed {seed}: {encoder}", flush=True)
            run = run_ours(encoder, rows, dim=args.dim, epochs=epochs, seed=seed)
            scores[encoder].append(probe_scores(run.embedding, latents, train, test))
            fit_seconds[encoder].append(run.fit_seconds)
            print(f"  {scores[encoder][-1]}", flush=True)

    per_seed_rows = [
        [ENCODERS[encoder], str(seed), *(f"{s[factor]:.3f}" for factor in FACTORS)]
        for encoder, runs in scores.items()
        for seed, s in enumerate(runs)
    ]
    mean_rows = [
        [ENCODERS[encoder], *(mean_std([s[factor] for s in runs]) for factor in FACTORS)]
        for encoder, runs in scores.items()
    ]
    reference = scores[REFERENCE]
    difference_rows, verdicts, ahead_on_mean = [], [], {}
    for encoder in (e for e in ENCODERS if e != REFERENCE):
        differences = {
            factor: [s[factor] - r[factor] for s, r in zip(scores[encoder], reference, strict=True)]
            for factor in FACTORS
        }
        difference_rows.append(
            [
                f"{ENCODERS[encoder]} − {ENCODERS[REFERENCE]}",
                *(
                    f"{np.mean(d):+.3f} ({sum(x > 0 for x in d)}/{n_seeds})"
                    for d in differences.values()
                ),
            ]
        )
        ahead = [factor for factor, d in differences.items() if np.mean(d) > 0]
        ahead_on_mean[encoder] = ahead
        every_seed = [factor for factor, d in differences.items() if all(x > 0 for x in d)]
        behind = [factor for factor in FACTORS if factor not in ahead]
        verdicts.append(
            f"{ENCODERS[encoder]}: ahead on the mean on {len(ahead)}/{len(FACTORS)}"
            + (f" (behind on {', '.join(behind)})" if behind else "")
            + f", ahead on every seed on {len(every_seed)}/{len(FACTORS)}"
        )
    met = len(ahead_on_mean[DEFAULT_ENCODER]) == len(FACTORS)
    wall = time.perf_counter() - started
    seconds_line = ", ".join(
        f"{ENCODERS[encoder]} {np.mean(times):.0f} s" for encoder, times in fit_seconds.items()
    )

    note = "" if n_objects == 24_000 else " (NOT palettes.py's 24,000: a reduced run)"
    report = [
        "# Palette probes over training seeds: Set Transformer and DeepSets against the raster CNN",
        "",
        f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
        f"Wall time of the run: {wall / 60:.1f} min. Mean fit time per seed: {seconds_line}.",
        "",
        f"Data: `synthetic_palettes({n_objects}, seed={DATA_SEED})`{note}, and the probe split,"
        " the probes and the estimator's settings of benchmarks/palettes.py: "
        f"`PaletteEmbedder(encoder=..., dim={args.dim}, epochs={epochs}, random_state=seed)`"
        f" for seeds 0–{n_seeds - 1}, trained on all objects without labels. Only the training"
        " seed changes between rows. Probe scores are accuracy (hue_family) or R² (the others)"
        f" on {len(test):,} held-out objects; higher is better.",
        "",
        "## Mean ± standard deviation over seeds",
        "",
        *markdown_table(["embedding", *FACTORS], mean_rows),
        "",
        "## Paired difference against the raster CNN",
        "",
        "Mean over seeds of (encoder − raster CNN) with the same seed, and on how many seeds the"
        " encoder is ahead.",
        "",
        *markdown_table(["difference", *FACTORS], difference_rows),
        "",
        f"{'; '.join(verdicts)}.",
        "",
        f"Target (palettes.py's, on the seed mean): the {ENCODERS[DEFAULT_ENCODER]} beats the"
        f" raster CNN on every latent factor: {'**met**' if met else '**not met**'}.",
        "",
        "## Every seed",
        "",
        *markdown_table(["embedding", "seed", *FACTORS], per_seed_rows),
        "",
    ]
    write_report(args.out, "\n".join(report))
    print(f"\nwrote {args.out}: the Set Transformer ahead on every factor's seed mean: {met}")


if __name__ == "__main__":
    main()
