"""Search by example: how far palette embeddings agree with exact EMD in CIELAB, and how fast.

The perceptual truth for two weighted palettes is the Earth Mover's Distance between their
colours in CIELAB, each colour weighted by its ratio (Rubner, Tomasi & Guibas, IJCV 2000;
:mod:`embedforge.metrics.emd`). This benchmark measures, on two collections, how well
cheaper representations find the same neighbours:

* **pypalettes** (``pip install embedforge[bench]``; GPL, so it is installed, never copied
  here): the ~2,700 real palettes of 73 sources the package ships, read from its installed
  ``palettes.csv``, unweighted (every colour of a palette gets an equal share); palettes
  with the same colours are kept once, and the few with more than 64 colours (long
  gradients) keep 64 evenly spaced ones, as ``read_palettes`` keeps at most 64 rows;
* **synthetic** palettes (``synthetic_palettes``, weighted by their ratios).

Each collection is split by palette, seeded: 80% train (the searched collection, and all
the embedding is trained on), 20% test, from which the queries are drawn. For every query,
exact EMD to every palette of the collection is the reference (POT's ``ot.emd2``); against
it: the default ``PaletteEmbedder`` (self-supervised) and ``PaletteEmbedder(objective='emd')``
(its distances distil exact EMD), both fitted on the training palettes only,
ratio-weighted colour statistics (mean and standard deviation of L*, a*, b*) and a weighted
CIELAB histogram (5 × 6 × 6 bins), each searched by Euclidean distance. Scored
(:mod:`embedforge.metrics.emd_agreement`): recall@10 of the exact-EMD neighbours, Spearman's
rho on sampled (query, palette) pairs, and query time per palette over the collection (the
median of :data:`QUERY_REPEATS` timed passes over all queries after a warm-up one: a pass takes
tens of milliseconds, where one scheduling hiccup on a shared machine is a large share).
Writes benchmarks/results/palette_search.md.

    python benchmarks/palette_search.py            # 100 queries per collection, ~35 min
    python benchmarks/palette_search.py --quick    # 20 queries, 1 epoch: a smoke run
"""

import argparse
import ast
import importlib.resources
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from embedforge import PaletteEmbedder
from embedforge.data.palettes import DEFAULT_MAX_ROWS, read_palettes
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.metrics.emd import LabPalettes, emd_to_collection
from embedforge.metrics.emd_agreement import (
    DEFAULT_PAIRS,
    emd_spearman,
    recall_at_k_of_emd_neighbours,
)
from embedforge.metrics.knn import knn_search
from measure import command_line, machine_line, write_report
from palettes import EMD_ARGUMENTS, markdown_table, yes_no

K = 10
TEST_SHARE = 0.2
HISTOGRAM_BINS = (5, 6, 6)  # L* over [0, 100]; a* and b* over [-90, 90], clipped
HISTOGRAM_RANGE = np.array([[0.0, 100.0], [-90.0, 90.0], [-90.0, 90.0]])
TARGET_RECALL, TARGET_RHO, TARGET_SPEED_UP = 0.7, 0.9, 1_000
QUERY_REPEATS = 5
EMBEDDER = "PaletteEmbedder (default, self-supervised)"
EMD_TRAINED = "PaletteEmbedder(objective='emd') (EMD-distilled)"
EMD_STEPS = 5_000
"""The EMD-trained embedder's training budget in optimizer steps, turned into epochs per
collection (:func:`emd_epochs_for`): on pypalettes' training palettes 16 epochs (830 steps)
found 0.58 of the EMD neighbours, 32 epochs 0.63, 64 epochs 0.69 (one trial each)."""
STATISTICS = "ratio-weighted colour statistics (mean, std of L*a*b*)"
HISTOGRAM = f"weighted CIELAB histogram ({'×'.join(map(str, HISTOGRAM_BINS))} bins)"


# ---------------------------------------------------------------------------- the data


def pypalettes_rows() -> pd.DataFrame:
    """pypalettes' palettes in the palette.csv layout, equal shares, from the installed file."""
    path = importlib.resources.files("pypalettes").joinpath("palettes.csv")
    with path.open(encoding="utf-8") as file:
        table = pd.read_csv(file)
    frames, seen = [], set()
    for name, text in zip(table["name"], table["palette"], strict=True):
        colours = [code.lstrip("#")[:6].lower() for code in ast.literal_eval(text)]  # no alpha
        if tuple(sorted(colours)) in seen:
            continue
        seen.add(tuple(sorted(colours)))
        if len(colours) > DEFAULT_MAX_ROWS:  # a long gradient: evenly spaced colours
            keep = np.linspace(0, len(colours) - 1, DEFAULT_MAX_ROWS).round().astype(int)
            colours = [colours[i] for i in keep]
        rgb = np.array([[int(c[i : i + 2], 16) for i in (0, 2, 4)] for c in colours])
        frames.append(
            pd.DataFrame(
                {
                    "ratio": 1.0 / len(colours),
                    "color_r": rgb[:, 0],
                    "color_g": rgb[:, 1],
                    "color_b": rgb[:, 2],
                    "object_id": name,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Collection:
    """A palette table split by object into training palettes (searched) and test palettes."""

    name: str
    description: str
    train_rows: pd.DataFrame
    test_rows: pd.DataFrame

    @classmethod
    def split(cls, name: str, description: str, rows: pd.DataFrame, seed: int) -> "Collection":
        ids = np.sort(rows["object_id"].unique())
        order = np.random.default_rng(seed).permutation(len(ids))
        test = set(ids[order[: round(len(ids) * TEST_SHARE)]])
        is_test = rows["object_id"].isin(test)
        return cls(name, description, rows[~is_test], rows[is_test])


# ---------------------------------------------------------------------------- baselines


def weighted_histogram(palettes: LabPalettes) -> np.ndarray:
    """``(n, bins)``: each palette's weights summed into a fixed grid of CIELAB cells."""
    low, high = HISTOGRAM_RANGE[:, 0], HISTOGRAM_RANGE[:, 1]
    counts = np.array(HISTOGRAM_BINS)
    cell = np.floor((palettes.colours - low) / (high - low) * counts).astype(int)  # (rows, 3)
    cell = np.clip(cell, 0, counts - 1)
    flat = np.ravel_multi_index(cell.T, HISTOGRAM_BINS)  # (rows,)
    owner = np.repeat(np.arange(len(palettes)), np.diff(palettes.starts))
    histogram = np.zeros((len(palettes), counts.prod()))
    np.add.at(histogram, (owner, flat), palettes.weights)
    return histogram


# ---------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Searched:
    """One representation on one collection: its embeddings and what they cost."""

    query: Tensor  # (q, d)
    collection: Tensor  # (n, d)
    query_seconds: float  # represent the q queries and find their k neighbours
    collection_seconds: float  # represent the collection once (an index's build)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def timed_median(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn``'s result and the median seconds of :data:`QUERY_REPEATS` calls after a warm-up."""
    fn()
    runs = [timed(fn) for _ in range(QUERY_REPEATS)]
    return runs[0][0], statistics.median(seconds for _, seconds in runs)


def search_features(
    features: Callable[[LabPalettes], np.ndarray], queries: LabPalettes, collection: LabPalettes
) -> Searched:
    """A hand-made representation, computed from the CIELAB palettes EMD also starts from."""
    reference, collection_seconds = timed(lambda: torch.from_numpy(features(collection)).float())

    def search() -> Tensor:
        query = torch.from_numpy(features(queries)).float()
        knn_search(query, reference, K)
        return query

    query, query_seconds = timed_median(search)
    return Searched(query, reference, query_seconds, collection_seconds)


def search_embedder(
    embedder: PaletteEmbedder, query_rows: pd.DataFrame, collection_rows: pd.DataFrame
) -> Searched:
    """The fitted embedder, from palette tables (reading them is part of ``transform``)."""
    embedding, collection_seconds = timed(lambda: embedder.transform(collection_rows))
    reference = torch.from_numpy(embedding.to_numpy(dtype=np.float32, copy=True))

    def search() -> Tensor:
        query = embedder.transform(query_rows).to_numpy(dtype=np.float32, copy=True)
        query = torch.from_numpy(query)
        knn_search(query, reference, K)
        return query

    query, query_seconds = timed_median(search)
    return Searched(query, reference, query_seconds, collection_seconds)


@dataclass(frozen=True)
class Measured:
    """Every row of one collection's table, with the numbers behind it."""

    collection: Collection
    queries: int
    collection_size: int
    emd_seconds: float  # all queries against the whole collection
    fits: dict[str, tuple[float, int]]  # embedder row -> fit seconds, epochs
    scores: dict[str, tuple[float, float, Searched]]  # name -> recall@k, rho, searched

    @property
    def emd_per_query(self) -> float:
        return self.emd_seconds / self.queries


def fitted(collection: Collection, seed: int, **arguments: object) -> tuple[PaletteEmbedder, float]:
    """A PaletteEmbedder fitted on the collection's training palettes, and its fit seconds."""
    embedder = PaletteEmbedder(random_state=seed, progress=True, **arguments)
    _, fit_seconds = timed(lambda: embedder.fit(collection.train_rows))
    print(f"  {arguments or 'default'}: fit {fit_seconds:.1f} s", flush=True)
    return embedder, fit_seconds


def emd_epochs_for(palettes: int) -> int:
    """Epochs that give :data:`EMD_STEPS` steps on ``palettes`` training palettes: the
    estimator holds min(1,000, a fifth) of them out for validation, and a step of batch 256
    seeds 256 / 8 near groups."""
    trained = palettes - min(1_000, palettes // 5)
    steps_per_epoch = trained // (EMD_ARGUMENTS["batch_size"] // 8)
    return math.ceil(EMD_STEPS / steps_per_epoch)


def measure(
    collection: Collection,
    *,
    queries: int,
    epochs: int | None,
    emd_epochs: int | None,
    seed: int,
) -> Measured:
    train = read_palettes(collection.train_rows)
    test = read_palettes(collection.test_rows)
    picked = np.sort(np.random.default_rng(seed).permutation(len(test))[:queries])
    query_ids = test.ids[picked]
    query_rows = collection.test_rows[collection.test_rows["object_id"].isin(query_ids)]
    query_lab = LabPalettes.from_sets(test.sets[picked], test.feature_names)
    collection_lab = LabPalettes.from_sets(train.sets, train.feature_names)
    print(f"{collection.name}: {len(picked)} queries × {len(train):,} palettes", flush=True)

    emd, emd_seconds = timed(lambda: emd_to_collection(query_lab, collection_lab, progress=True))
    print(f"  exact EMD {emd_seconds:.1f} s", flush=True)

    embedders = {
        EMBEDDER: fitted(collection, seed, **({} if epochs is None else {"epochs": epochs})),
        EMD_TRAINED: fitted(
            collection, seed, **EMD_ARGUMENTS, epochs=emd_epochs or emd_epochs_for(len(train))
        ),
    }
    searched = {
        **{
            name: search_embedder(embedder, query_rows, collection.train_rows)
            for name, (embedder, _) in embedders.items()
        },
        STATISTICS: search_features(LabPalettes.statistics, query_lab, collection_lab),
        HISTOGRAM: search_features(weighted_histogram, query_lab, collection_lab),
    }
    scores = {
        name: (
            recall_at_k_of_emd_neighbours(s.query, s.collection, emd, K),
            emd_spearman(s.query, s.collection, emd, seed=seed),
            s,
        )
        for name, s in searched.items()
    }
    fits = {name: (seconds, embedder.epochs) for name, (embedder, seconds) in embedders.items()}
    return Measured(collection, len(picked), len(train), emd_seconds, fits, scores)


# ---------------------------------------------------------------------------- report


def milliseconds(value: float) -> str:
    return f"{value * 1e3:,.1f}" if value >= 1e-3 else f"{value * 1e3:,.3f}"


def section(result: Measured) -> list[str]:
    q, n = result.queries, result.collection_size
    rows = [
        [
            "exact EMD (POT `ot.emd2`, the reference)",
            "1 (by definition)",
            "1 (by definition)",
            milliseconds(result.emd_per_query),
            "1×",
            "—",
        ]
    ]
    for name, (recall, rho, searched) in result.scores.items():
        per_query = searched.query_seconds / q
        rows.append(
            [
                name,
                f"{recall:.3f}",
                f"{rho:.3f}",
                milliseconds(per_query),
                f"{result.emd_per_query / per_query:,.0f}×",
                f"{searched.collection_seconds:.2f}",
            ]
        )
    others = [score for name, score in result.scores.items() if name != EMD_TRAINED]
    best_recall = max(recall for recall, _, _ in others)
    best_rho = max(rho for _, rho, _ in others)
    recall, rho, searched = result.scores[EMD_TRAINED]
    speed_up = result.emd_per_query / (searched.query_seconds / q)
    fits = "; ".join(
        f"{name}: {epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.0f} s"
        for name, (seconds, epochs) in result.fits.items()
    )
    return [
        f"## {result.collection.name}",
        "",
        f"{result.collection.description} {n:,} training palettes (the collection searched;"
        f" the embedders were fitted on them only: {fits}), {q} queries drawn from the"
        " held-out test palettes.",
        "",
        *markdown_table(
            [
                "representation",
                f"recall@{K} of EMD neighbours",
                "Spearman rho",
                "ms / query",
                "EMD / it",
                "s to represent the collection (once)",
            ],
            rows,
        ),
        "",
        "Targets for the EMD-trained embedding:"
        f" recall@{K} ≥ {TARGET_RECALL}: {recall:.3f}, {yes_no(recall >= TARGET_RECALL)};"
        f" rho ≥ {TARGET_RHO}: {rho:.3f}, {yes_no(rho >= TARGET_RHO)};"
        f" ≥ {TARGET_SPEED_UP:,}× faster than exact EMD: {speed_up:,.0f}×,"
        f" {yes_no(speed_up >= TARGET_SPEED_UP)}. Best of the other representations:"
        f" recall@{K} {best_recall:.3f}, rho {best_rho:.3f}.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 queries, 1,000 synthetic, 1 epoch")
    parser.add_argument("--queries", type=int, default=None, help="per collection (default 100)")
    parser.add_argument("--synthetic", type=int, default=None, help="objects (default 5,000)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the estimator's")
    parser.add_argument(
        "--emd-epochs",
        type=int,
        default=None,
        help=f"the EMD-trained one's (default: {EMD_STEPS:,} steps)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "palette_search.md"
    )
    args = parser.parse_args()
    queries = args.queries or (20 if args.quick else 100)
    n_synthetic = args.synthetic or (1_000 if args.quick else 5_000)
    epochs = args.epochs or (1 if args.quick else None)
    started = time.perf_counter()
    torch.manual_seed(args.seed)

    real = pypalettes_rows()
    collections = [
        Collection.split(
            "pypalettes (real palettes, unweighted)",
            f"{real['object_id'].nunique():,} distinct palettes of the pypalettes package, equal"
            " shares.",
            real,
            args.seed,
        ),
        Collection.split(
            "synthetic palettes (weighted)",
            f"`synthetic_palettes({n_synthetic}, seed={args.seed})`, weighted by their ratios.",
            synthetic_palettes(n_synthetic, seed=args.seed).rows,
            args.seed,
        ),
    ]
    emd_epochs = args.emd_epochs or (1 if args.quick else None)
    results = [
        measure(c, queries=queries, epochs=epochs, emd_epochs=emd_epochs, seed=args.seed)
        for c in collections
    ]
    wall = time.perf_counter() - started

    report = [
        "# Search by example: palette embeddings against exact EMD in CIELAB",
        "",
        f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
        f"Wall time of the run: {wall / 60:.1f} min. The machine was shared with other heavy"
        " work while this ran (2 cores, load well above 2): the times are inflated and noisy;"
        " read the ratios, which share the conditions, rather than the absolute values.",
        "",
        "The reference is the exact Earth Mover's Distance between two palettes' colours in"
        " CIELAB (ground cost: ΔE*ab, the Euclidean distance in unscaled L*a*b*; each colour"
        " weighted by its share, shares summing to 1; Rubner, Tomasi & Guibas 2000), solved by"
        " POT's network simplex for every (query, collection palette) pair. Each collection is"
        f" split by palette, seeded: {1 - TEST_SHARE:.0%} training palettes, which are the"
        " collection searched and all the embedder is fitted on, and"
        f" {TEST_SHARE:.0%} test palettes, from which the queries are drawn, so no query was"
        " seen in training. Every representation is searched by Euclidean distance (exact,"
        " `knn_search`).",
        "",
        f"* recall@{K} of EMD neighbours: the share of a query's {K} nearest palettes by the"
        f" representation that are among its {K} nearest by exact EMD (ties at the {K}th EMD"
        " count), averaged over the queries; 1 for EMD itself.",
        f"* Spearman rho: rank correlation of the representation's distance and EMD over"
        f" {DEFAULT_PAIRS:,} (query, collection palette) pairs sampled by seed (all pairs when"
        " there are fewer).",
        "* ms / query: the time to answer the queries over the whole collection, divided by"
        " their number. Exact EMD: every query against every collection palette, measured in"
        " full (not extrapolated), one solve per pair, from palettes already in CIELAB. The"
        " others: representing the queries (as one batch) and finding their"
        f" {K} nearest neighbours among the collection's vectors, computed beforehand (the last"
        " column, once per collection, not counted per query); the median of"
        f" {QUERY_REPEATS} such passes after a warm-up one. The embedder's time includes"
        " reading the queries' palette table (`transform` of a DataFrame); the hand-made"
        " features start from the CIELAB palettes, as EMD does. EMD / it: how many times"
        " faster than exact EMD.",
        "",
        f"Baselines: {STATISTICS}: 6 numbers per palette; {HISTOGRAM}: each colour's share in"
        " a fixed grid of cells, L* over [0, 100], a* and b* over [-90, 90] (outside colours"
        " clipped into the edge cells). The embedder: `PaletteEmbedder(random_state=seed)`"
        " with the estimator's defaults (Set Transformer, 64-d, NT-Xent between set views"
        " through a projection head, RGB input), fitted on the training palettes only.",
        "",
    ]
    for result in results:
        report += section(result)
    write_report(args.out, "\n".join(report))
    print("\n".join(report))
    print(f"wrote {args.out} ({wall / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
