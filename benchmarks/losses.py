"""Losses: embedforge against pytorch-metric-learning (and the naive B³ batch-all), one process.

For each loss and batch size B it times forward + backward and measures the
peak memory of one call, for ours and the peer on the same embeddings and
labels, checks that both give the same loss value, and writes the tables to
benchmarks/results/losses.md. Beside them, the limit: the forward + backward of the
distance or similarity matrix alone (normalisation included), which every one of these
losses must compute, so "ours / limit" is what the loss itself costs on top.

Batches are metric-learning batches: B/8 classes × 8 samples, 128-d embeddings.
NT-Xent's B is the number of items per view (2B embeddings), as in SimCLR.
A peer whose predicted memory would not fit on this machine is skipped and the
reason is printed in its cell instead of a number.

    python benchmarks/losses.py            # B = 128 … 2048 (NT-Xent ours up to 4096)
    python benchmarks/losses.py --quick    # B = 128, 256: a smoke run
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from torch import Tensor

from embedforge.losses.arcface import ArcFaceLoss
from embedforge.losses.contrastive import ContrastiveLoss
from embedforge.losses.ntxent import NTXentLoss
from embedforge.losses.supcon import SupConLoss
from embedforge.losses.triplet import TripletMarginLoss
from measure import (
    command_line,
    machine_line,
    median_seconds,
    peak_memory_mib,
    pin_allocator_for_peak_memory,
    write_report,
)

DIM = 128
SAMPLES_PER_CLASS = 8
ARCFACE_CLASSES = 1000
GIB = 2**30
MEMORY_BUDGET = 8 * GIB  # skip a peer whose predicted working set exceeds this


def naive_batch_all(embeddings: Tensor, labels: Tensor, margin: float = 0.05) -> Tensor:
    """The textbook batch-all: every (a, p, n) as one cell of a B×B×B tensor."""
    distances = torch.cdist(F.normalize(embeddings, dim=1), F.normalize(embeddings, dim=1))
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool)
    valid = (same & not_self)[:, :, None] & ~same[:, None, :]  # (B, B, B)
    losses = (distances[:, :, None] - distances[:, None, :] + margin).relu() * valid
    positive = losses > 0
    return losses.sum() / positive.sum().clamp_min(1)


@dataclass(frozen=True)
class Inputs:
    embeddings: Tensor
    labels: Tensor
    second_view: Tensor


Impl = Callable[[Inputs], Tensor]


@dataclass(frozen=True)
class Case:
    title: str
    ours: Impl
    peers: dict[str, Impl]
    sizes: tuple[int, ...]
    peer_bytes: Callable[[int], float]  # predicted peak of the heaviest peer at B
    limit: Impl  # the matrix the loss cannot avoid, forward + backward
    naive_bytes: Callable[[int], float] = lambda b: 0.0


def distance_limit(x: Inputs) -> Tensor:
    """L2-normalised Euclidean distances (B, B): what the triplet and pair losses start from."""
    unit = F.normalize(x.embeddings, dim=1)
    return torch.cdist(unit, unit).sum()


def similarity_limit(x: Inputs) -> Tensor:
    """Cosine similarities (B, B): what SupCon starts from."""
    unit = F.normalize(x.embeddings, dim=1)
    return (unit @ unit.T).sum()


def two_view_limit(x: Inputs) -> Tensor:
    """Cosine similarities of both views' 2B rows (2B, 2B): what NT-Xent starts from."""
    unit = F.normalize(torch.cat([x.embeddings, x.second_view]), dim=1)
    return (unit @ unit.T).sum()


def class_limit(weights: Tensor) -> Impl:
    """Cosines (B, C) to the (D, C) class weights: what ArcFace starts from (W gets a
    gradient too)."""

    def limit(x: Inputs) -> Tensor:
        return (F.normalize(x.embeddings, dim=1) @ F.normalize(weights, dim=0)).sum()

    return limit


def pml_mined(miner, loss) -> Impl:
    return lambda x: loss(x.embeddings, x.labels, miner(x.embeddings, x.labels))


def arcface_pair() -> tuple[Impl, Impl, Impl]:
    ours = ArcFaceLoss(ARCFACE_CLASSES, DIM)
    theirs = pml_losses.ArcFaceLoss(ARCFACE_CLASSES, DIM)
    with torch.no_grad():
        ours.W.copy_(theirs.W)
    weights = torch.nn.Parameter(ours.W.detach().clone())
    return (
        (lambda x: ours(x.embeddings, x.labels)),
        (lambda x: theirs(x.embeddings, x.labels)),
        class_limit(weights),
    )


def cases(sizes: tuple[int, ...], ntxent_sizes: tuple[int, ...]) -> list[Case]:
    arcface_ours, arcface_pml, arcface_limit = arcface_pair()
    triplet_cube = lambda b: float(b) ** 3  # PML's all-triplets mask: B³ bools  # noqa: E731
    return [
        Case(
            "Triplet margin, batch-all (PML default: no miner)",
            lambda x: TripletMarginLoss()(x.embeddings, x.labels),
            {"PML": lambda x: pml_losses.TripletMarginLoss()(x.embeddings, x.labels)},
            sizes,
            triplet_cube,
            distance_limit,
            naive_bytes=lambda b: 4 * 4.0 * b**3,
        ),
        Case(
            "Triplet margin, batch-hard (PML BatchHardMiner)",
            lambda x: TripletMarginLoss(mining="batch_hard")(x.embeddings, x.labels),
            {"PML": pml_mined(pml_miners.BatchHardMiner(), pml_losses.TripletMarginLoss())},
            sizes,
            lambda b: 0.0,
            distance_limit,
        ),
        Case(
            "Triplet margin, semi-hard (PML TripletMarginMiner semihard)",
            lambda x: TripletMarginLoss(mining="semihard")(x.embeddings, x.labels),
            {
                "PML": pml_mined(
                    pml_miners.TripletMarginMiner(margin=0.05, type_of_triplets="semihard"),
                    pml_losses.TripletMarginLoss(),
                )
            },
            sizes,
            triplet_cube,
            distance_limit,
        ),
        Case(
            "Contrastive pairs",
            lambda x: ContrastiveLoss()(x.embeddings, x.labels),
            {"PML": lambda x: pml_losses.ContrastiveLoss()(x.embeddings, x.labels)},
            sizes,
            lambda b: 0.0,
            distance_limit,
        ),
        Case(
            "Supervised contrastive (SupCon)",
            lambda x: SupConLoss()(x.embeddings, x.labels),
            {"PML": lambda x: pml_losses.SupConLoss()(x.embeddings, x.labels)},
            sizes,
            lambda b: 0.0,
            similarity_limit,
        ),
        Case(
            f"ArcFace ({ARCFACE_CLASSES} classes)",
            arcface_ours,
            {"PML": arcface_pml},
            sizes,
            lambda b: 0.0,
            arcface_limit,
        ),
        Case(
            "NT-Xent, two views of B items (SimCLR)",
            lambda x: NTXentLoss()(x.embeddings, x.second_view),
            {
                "PML": lambda x: pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss())(
                    x.embeddings, x.second_view
                )
            },
            ntxent_sizes,
            lambda b: 4 * 4.0 * (2 * b) ** 2 * (2 * b - 2),  # (pos pairs × neg pairs) floats
            two_view_limit,
        ),
    ]


def make_inputs(batch_size: int, seed: int) -> Inputs:
    generator = torch.Generator().manual_seed(seed)
    classes = max(batch_size // SAMPLES_PER_CLASS, 2)
    labels = torch.arange(batch_size) % classes
    labels = labels[torch.randperm(batch_size, generator=generator)]
    embeddings = torch.randn(batch_size, DIM, generator=generator)
    second_view = embeddings + 0.3 * torch.randn(batch_size, DIM, generator=generator)
    return Inputs(embeddings, labels, second_view)


@dataclass
class Measurement:
    seconds: float
    peak_mib: float
    value: float


def measure(impl: Impl, inputs: Inputs) -> Measurement:
    def step() -> Tensor:
        x = Inputs(
            inputs.embeddings.clone().requires_grad_(),
            inputs.labels,
            inputs.second_view.clone().requires_grad_(),
        )
        loss = impl(x)
        loss.backward()
        return loss

    value = step().item()
    first = median_seconds(step, repeats=1, warmup=0)
    seconds = first if first > 2.0 else median_seconds(step, repeats=5 if first < 0.3 else 2)
    return Measurement(seconds, peak_memory_mib(step), value)


def cell(m: Measurement | str) -> tuple[str, str]:
    if isinstance(m, str):
        return m, m
    return f"{m.seconds * 1e3:.1f}", f"{m.peak_mib:.1f}"


def run_case(case: Case, seed: int) -> str:
    peers = dict(case.peers)
    has_naive = case.title.startswith("Triplet margin, batch-all")
    if has_naive:
        peers["naive B³"] = lambda x: naive_batch_all(x.embeddings, x.labels)
    header = ["B", "ours ms", "ours MiB", "limit ms", "ours / limit"]
    for name in peers:
        header += [f"{name} ms", f"{name} MiB", f"{name} / ours time", f"{name} / ours memory"]
    header.append("max |Δ loss|")
    lines = [f"### {case.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for batch_size in case.sizes:
        inputs = make_inputs(batch_size, seed)
        ours = measure(case.ours, inputs)
        limit = measure(case.limit, inputs)
        row = [str(batch_size), *cell(ours), cell(limit)[0], f"{ours.seconds / limit.seconds:.1f}×"]
        deltas = []
        for name, impl in peers.items():
            predicted = (
                case.naive_bytes(batch_size) if name == "naive B³" else case.peer_bytes(batch_size)
            )
            if predicted > MEMORY_BUDGET:
                skip = f"skipped (needs ~{predicted / GIB:.0f} GiB)"
                row += [skip, "", "", ""]
                continue
            theirs = measure(impl, inputs)
            deltas.append(abs(theirs.value - ours.value))
            row += [
                *cell(theirs),
                f"{theirs.seconds / ours.seconds:.1f}×",
                f"{theirs.peak_mib / ours.peak_mib:.1f}×" if ours.peak_mib >= 0.1 else "–",
            ]
        row.append(f"{max(deltas):.1e}" if deltas else "–")
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="B = 128, 256 only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "losses.md")
    args = parser.parse_args()
    pin_allocator_for_peak_memory()
    sizes = (128, 256) if args.quick else (128, 256, 512, 1024, 2048)
    ntxent_sizes = sizes if args.quick else (*sizes, 4096)
    torch.manual_seed(args.seed)
    sections = []
    for case in cases(sizes, ntxent_sizes):
        print(f"\n{case.title}", flush=True)
        sections.append(run_case(case, args.seed))
    report = "\n".join(
        [
            "# Losses: embedforge vs pytorch-metric-learning",
            "",
            f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
            "",
            "Forward + backward of one batch: median wall time (ms) and peak resident memory",
            "added by the call (MiB). Ratios > 1× mean ours is faster / lighter. Batches hold",
            f"B/{SAMPLES_PER_CLASS} classes × {SAMPLES_PER_CLASS} samples, {DIM}-d embeddings;",
            "NT-Xent's B is items per view. The machine is shared: read the ratios, not the",
            "absolute times. 0.0 MiB means the call's extra memory was served from blocks the",
            "process already held (below what resident memory can show); the ratio is then –.",
            "A skipped peer's need is predicted from the size of the tensor it would build.",
            "",
            *[section + "\n" for section in sections],
        ]
    )
    write_report(args.out, report)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
