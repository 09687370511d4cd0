"""Embedding palette tables at scale: the streaming ``embedforge embed`` against the
in-memory path and the encoder's bare forward passes, time and peak memory.

Synthetic palettes (``synthetic_palettes``, generated 100,000 objects at a time, each
batch's rows grouped by object as the competition files are) are written to a temporary
CSV of N objects (about 8 rows each). Each measurement runs in a fresh process, so its
peak resident memory (``ru_maxrss``: everything, the interpreter and torch included) is its
own:

* stream: ``embed_file`` (what ``embedforge embed RUN DATA --out X.parquet`` runs): chunks
  read and packed by a background thread, embedded, written as Parquet row groups;
* in memory: ``PaletteRun.embed`` (the whole table read and packed, then embedded) and
  ``write_embeddings``: the path ``embedforge embed`` took before streaming;
* bare forward: the table read in memory first (not timed), then only ``embed_sets`` over
  all its sets: the encoder's forward passes, the floor the other two approach.

The model is the default palette encoder (``set_transformer``, as ``parse_recipe`` builds
it for ``data.source: palettes``), untrained: the weights do not change the work.

    python benchmarks/embed_scale.py                 # 100,000 and 1,000,000 objects
    python benchmarks/embed_scale.py --sizes 20000   # a smoke run
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from embedforge.data.palette_stream import DEFAULT_CHUNK_ROWS
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.embed import PaletteRun, embed_file, write_embeddings
from embedforge.inference import embed_sets
from embedforge.recipe import parse_recipe
from measure import MIB, command_line, machine_line, write_report

GENERATE_AT_ONCE = 100_000
PATHS = ("stream", "in memory", "bare forward")
TARGET = 1.25


def write_table(n: int, path: Path) -> int:
    """A palette.csv of ``n`` synthetic objects, written in batches; its number of rows."""
    rows = 0
    with path.open("w") as handle:
        for batch, start in enumerate(range(0, n, GENERATE_AT_ONCE)):
            size = min(GENERATE_AT_ONCE, n - start)
            table = synthetic_palettes(size, seed=batch).rows.sort_values("object_id")
            table.to_csv(handle, index=False, header=batch == 0)
            rows += len(table)
    return rows


def measure(path: str, run_dir: Path, table: Path, out: Path) -> dict[str, float]:
    """One measurement, in this process: seconds, and the process's peak MiB."""
    run = PaletteRun.load(run_dir)
    if path == "stream":
        start = time.perf_counter()
        embed_file(run_dir, table, out, device="cpu", progress=False, overwrite=True)
    elif path == "in memory":
        start = time.perf_counter()
        write_embeddings(run.embed(table, progress=False), out, overwrite=True)
    else:
        from embedforge.build import build_palettes

        sets = build_palettes(run.recipe.data, table).sets
        start = time.perf_counter()
        embed_sets(run.model, sets, torch.device("cpu"))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB
    return {"seconds": seconds, "peak_mib": peak}


def in_child(path: str, run_dir: Path, table: Path, out: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", path, str(run_dir), str(table), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embed_scale.md"))
    parser.add_argument("--measure", nargs=4, metavar=("PATH", "RUN", "TABLE", "OUT"))
    args = parser.parse_args()
    if args.measure:
        path, run_dir, table, out = args.measure
        print(json.dumps(measure(path, Path(run_dir), Path(table), Path(out))))
        return

    began = time.perf_counter()
    torch.manual_seed(0)
    cores = torch.get_num_threads()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        PaletteRun.from_recipe(parse_recipe({"data": {"source": "palettes"}})).save(run_dir)
        for n in args.sizes:
            table = Path(folder) / f"palettes_{n}.csv"
            rows = write_table(n, table)
            megabytes = table.stat().st_size / 1e6
            for path in PATHS:
                found = in_child(path, run_dir, table, Path(folder) / "out.parquet")
                results.append({"n": n, "rows": rows, "mb": megabytes, "path": path, **found})
                print(results[-1], flush=True)
            table.unlink()

    forward = {r["n"]: r["seconds"] for r in results if r["path"] == "bare forward"}
    lines = [
        "# Embedding palette tables at scale: streaming, in memory, bare forward",
        "",
        f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
        f"Wall time of the run: {(time.perf_counter() - began) / 60:.1f} min.",
        "",
        "Data: synthetic palettes in the palette.csv layout, generated 100,000 objects at a "
        "time (each batch's rows grouped by object, as the competition files are), written to "
        "one CSV. Model: the default palette encoder (`set_transformer`), untrained. Each row "
        "is one fresh process; peak MiB is its `ru_maxrss` (interpreter, torch and all). "
        f"Stream: `embed_file` to Parquet, {DEFAULT_CHUNK_ROWS:,} rows a chunk (the default). "
        "In memory: `PaletteRun.embed` + `write_embeddings`. Bare forward: `embed_sets` over "
        "all the sets, read beforehand (untimed). The machine is shared by other work, so "
        "times carry its noise.",
        "",
        "| objects | rows | CSV MB | path | seconds | rows/s per core | peak MiB | / forward |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["seconds"] / forward[r["n"]]
        lines.append(
            f"| {r['n']:,} | {r['rows']:,} | {r['mb']:.0f} | {r['path']} | {r['seconds']:.1f} | "
            f"{r['rows'] / r['seconds'] / cores:,.0f} | {r['peak_mib']:.0f} | {ratio:.2f}× |"
        )
    streams = [r for r in results if r["path"] == "stream"]
    worst = max(r["seconds"] / forward[r["n"]] for r in streams)
    verdict = "**met**" if worst <= TARGET else "**missed**"
    peaks = ", ".join(f"{r['peak_mib']:.0f} MiB at {r['n']:,}" for r in streams)
    lines += [
        "",
        f"Target: the stream within {TARGET}× the bare forward: worst {worst:.2f}×, {verdict}. "
        f"Stream peak memory (target under 1 GB and flat in N): {peaks}.",
    ]
    write_report(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
