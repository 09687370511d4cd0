"""Retrieval metrics: embedforge against pytorch-metric-learning's AccuracyCalculator, one process.

For each number of embeddings n it computes precision@1, R-precision and MAP@R
leaving one out (every embedding a query against all the others) with
``embedforge.metrics.retrieval_metrics`` and with PML's ``AccuracyCalculator``
(``k="max_bin_count"``, FAISS search), times one call, measures its peak memory,
checks that both give the same three numbers, and writes the table to
benchmarks/results/evaluate.md.

Data: n embeddings of dimension 128 in float32, each label drawn uniformly from
100 classes (so the largest class holds about n/100), each embedding its class
centre (standard normal × 0.5) plus standard normal noise: classes overlap, so
the metrics are neither 0 nor 1.

PML's default ``k=None`` searches every reference for every query, an (n, n)
result. It is run only where its predicted peak memory fits the budget below;
the prediction is the larger of 16 bytes per (query, reference) pair and the
bytes per pair it used at a small calibration size.

    python benchmarks/evaluate.py            # n = 20k, 50k, 100k
    python benchmarks/evaluate.py --quick    # n = 2k, 5k: a smoke run
"""

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from torch import Tensor

from embedforge.metrics import retrieval_metrics
from measure import (
    MIB,
    command_line,
    machine_line,
    peak_memory_mib,
    pin_allocator_for_peak_memory,
    write_report,
)

DIM = 128
NUM_CLASSES = 100
CENTRE_SCALE = 0.5
METRICS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")
SHORT_NAMES = {
    "precision_at_1": "P@1",
    "r_precision": "R-prec",
    "mean_average_precision_at_r": "MAP@R",
}
GIB = 2**30
MEMORY_BUDGET = 8 * GIB  # skip a run whose predicted peak exceeds this (the machine has 24 GB)
CALIBRATION_N = 3000  # size at which PML k=None's bytes per pair are measured
SINGLE_CALL_FROM = 20_000  # from this n on, one timed call per case; below it, the median of 3

Metrics = dict[str, float]
Impl = Callable[[Tensor, Tensor], Metrics]


def ours(x: Tensor, labels: Tensor) -> Metrics:
    return retrieval_metrics(x, labels, include=METRICS)


def pml(k: int | str | None) -> Impl:
    calculator = AccuracyCalculator(include=METRICS, k=k)
    return lambda x, labels: calculator.get_accuracy(x, labels, x, labels, ref_includes_query=True)


def make_inputs(n: int, seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    centres = CENTRE_SCALE * torch.randn(NUM_CLASSES, DIM, generator=generator)
    x = centres[labels] + torch.randn(n, DIM, generator=generator)  # (n, D)
    return x, labels


@dataclass
class Measurement:
    seconds: float
    peak_mib: float
    values: Metrics


def measure(impl: Impl, x: Tensor, labels: Tensor, repeats: int) -> Measurement:
    """Time, peak memory and values of one call; the median time of ``repeats`` calls."""
    record: dict[str, object] = {}

    def call() -> None:
        start = time.perf_counter()
        record["values"] = impl(x, labels)
        record.setdefault("times", []).append(time.perf_counter() - start)

    peak = peak_memory_mib(call)
    for _ in range(repeats - 1):
        call()
    times = sorted(record["times"])
    return Measurement(times[len(times) // 2], peak, record["values"])


def max_difference(a: Metrics, b: Metrics) -> float:
    return max(abs(a[name] - b[name]) for name in METRICS)


def cells(m: Measurement | str) -> list[str]:
    if isinstance(m, str):
        return [m, "", *[""] * len(METRICS)]
    return [f"{m.seconds:.2f}", f"{m.peak_mib:.0f}", *[f"{m.values[name]:.4f}" for name in METRICS]]


def pml_full_bytes_per_pair(seed: int) -> float:
    """Bytes per (query, reference) pair that PML with k=None used at CALIBRATION_N."""
    x, labels = make_inputs(CALIBRATION_N, seed)
    peak = measure(pml(None), x, labels, repeats=1).peak_mib * MIB
    return peak / CALIBRATION_N**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 2k, 5k only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "evaluate.md"
    )
    args = parser.parse_args()
    pin_allocator_for_peak_memory()
    sizes = (2_000, 5_000) if args.quick else (20_000, 50_000, 100_000)
    full_k_sizes = sizes[:1]  # PML k=None: the smallest size only, and only if it fits

    warm_x, warm_labels = make_inputs(500, args.seed)  # thread pools, FAISS import
    for impl in (ours, pml("max_bin_count")):
        impl(warm_x, warm_labels)
    bytes_per_pair = max(16.0, pml_full_bytes_per_pair(args.seed))
    print(f"PML k=None calibration: {bytes_per_pair:.1f} bytes per pair", flush=True)

    header = ["n", "impl", "s", "peak MiB", *[SHORT_NAMES[name] for name in METRICS]]
    header += ["PML / ours time", "PML / ours memory", "max abs Δ vs ours"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    verdicts = []
    for n in sizes:
        x, labels = make_inputs(n, args.seed)
        repeats = 1 if n >= SINGLE_CALL_FROM else 3
        max_bin = int(torch.bincount(labels).max())
        peers: dict[str, Impl | str] = {'PML k="max_bin_count"': pml("max_bin_count")}
        if n in full_k_sizes:
            predicted = bytes_per_pair * n * n
            if predicted > MEMORY_BUDGET:
                peers["PML k=None"] = f"skipped (needs ~{predicted / GIB:.0f} GiB)"
            else:
                peers["PML k=None"] = pml(None)
        mine = measure(ours, x, labels, repeats)
        lines.append("| " + " | ".join([f"{n:,}", "ours", *cells(mine), "", "", ""]) + " |")
        print(lines[-1], f"(max bin count {max_bin})", flush=True)
        for name, impl in peers.items():
            if isinstance(impl, str):
                row = [f"{n:,}", name, *cells(impl), "", "", ""]
            else:
                theirs = measure(impl, x, labels, repeats)
                row = [
                    f"{n:,}",
                    name,
                    *cells(theirs),
                    f"{theirs.seconds / mine.seconds:.2f}×",
                    f"{theirs.peak_mib / mine.peak_mib:.1f}×",
                    f"{max_difference(theirs.values, mine.values):.1e}",
                ]
                if name == 'PML k="max_bin_count"':
                    faster = "as fast or faster" if mine.seconds <= theirs.seconds else "slower"
                    verdicts.append(
                        f"n = {n:,}: ours is {faster} ({theirs.seconds / mine.seconds:.2f}×)"
                    )
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], flush=True)

    report = "\n".join(
        [
            "# Retrieval metrics: embedforge vs pytorch-metric-learning's AccuracyCalculator",
            "",
            f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
            "",
            "Precision@1, R-precision and MAP@R leaving one out (each embedding a query against",
            "all n − 1 others): `embedforge.metrics.retrieval_metrics(x, labels)`",
            "(exact kNN through FAISS `IndexFlatL2` when installed, as here, else torch;",
            "chunked over queries) against PML 2.9's",
            '`AccuracyCalculator(include=(...), k="max_bin_count").get_accuracy(x, labels, x,',
            "labels, ref_includes_query=True)` (FAISS `IndexFlatL2`, exact). Wall time (s) and",
            "peak resident memory added by the call (MiB). Ratios > 1× mean ours is faster /",
            f"lighter. n ≥ {SINGLE_CALL_FROM:,}: one call per case (no repeats); smaller n:",
            "median of 3 calls; all after a warm-up call of each on 500 embeddings.",
            "",
            f"Data: n embeddings, {DIM}-d float32, labels uniform over {NUM_CLASSES} classes",
            f"(largest class ≈ n/{NUM_CLASSES}); embedding = class centre (N(0, 1) ×",
            f"{CENTRE_SCALE}) + N(0, 1) noise, so classes overlap and the metrics are non-trivial.",
            "",
            "PML's default `k=None` searches all n references per query and builds (n, n)",
            "arrays; it is tried at the smallest n only, and skipped when its predicted peak",
            f"exceeds {MEMORY_BUDGET // GIB} GiB of this 24 GB machine. Prediction: n² × max(16",
            f"bytes, the bytes per pair it used at n = {CALIBRATION_N:,}: {bytes_per_pair:.0f}).",
            "",
            "The machine is shared with other jobs (2 CPU cores): read the ratios, not the",
            "absolute times.",
            "",
            *lines,
            "",
            'Ours against PML `k="max_bin_count"`: ' + "; ".join(verdicts) + ".",
            "",
        ]
    )
    write_report(args.out, report)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
