"""What the report's neighbour sections cost: their build time beside the whole report's.

Trains two small runs in a temporary folder, one epoch each (what the sections draw does not
depend on quality): the bundled digits with ``configs/digits_triplet.yaml`` (1,797 images,
30% held out) and the synthetic palettes with ``configs/palette.yaml`` (``--palettes``
objects, 20% held out). For each it times, median of ``--repeats`` calls after one warm-up,
the new section alone (``palette_neighbours``: a 6 × 5 kNN and 30 exact EMD solves;
``image_neighbours``: a 6 × 5 kNN and 36 PNG thumbnails) and the whole ``write_report``
(which also evaluates, draws UMAP and the other plots), and writes
benchmarks/results/report_sections.md.

    python benchmarks/report_sections.py
    python benchmarks/report_sections.py --palettes 500 --repeats 1   # a smoke run
"""

import argparse
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from embedforge.evaluate.image_neighbours import image_neighbours
from embedforge.evaluate.palette_swatches import palette_neighbours
from embedforge.evaluate.report import write_report as write_html_report
from embedforge.recipe import load_recipe
from embedforge.run_items import load_run_embeddings
from embedforge.train.trainer import train
from measure import command_line, machine_line, median_seconds, write_report

CONFIGS = Path(__file__).parents[1] / "configs"
RESULTS = Path(__file__).parent / "results" / "report_sections.md"


def trained(folder: Path, config: str, overrides: list[str]) -> Path:
    path = folder / config
    train(load_recipe(CONFIGS / config, ["train.epochs=1", *overrides]), path, progress=False)
    return path


def measure(run: Path, section: Callable[..., str], repeats: int) -> tuple[float, float, int]:
    """(section seconds, whole report seconds, report bytes)."""
    embeddings = load_run_embeddings(run)
    section_s = median_seconds(lambda: section(embeddings), repeats=repeats)
    out = run.parent / f"{run.name}.html"
    report_s = median_seconds(
        lambda: write_html_report(run, out=out, overwrite=True), repeats=repeats
    )
    return section_s, report_s, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--palettes", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        palette_run = trained(
            folder,
            "palette.yaml",
            [
                f"data.size={args.palettes}",
                f"data.validation_objects={args.palettes // 5}",
                "train.batch_size=256",
            ],
        )
        digits_run = trained(folder, "digits_triplet.yaml", [])
        rows = [
            (
                f"palettes ({args.palettes:,} objects)",
                "palette_neighbours",
                *measure(palette_run, palette_neighbours, args.repeats),
            ),
            (
                "digits (1,797 images)",
                "image_neighbours",
                *measure(digits_run, image_neighbours, args.repeats),
            ),
        ]
    lines = [
        "# The report's neighbour sections: build time beside the whole report",
        "",
        f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
        "",
        "Each run trained one epoch (quality does not change what is drawn). Median of "
        f"{args.repeats} calls after one warm-up. The section: 6 held-out items, their 5 "
        "nearest training items (exact kNN), then for palettes 30 exact EMD solves (POT) "
        "and 36 swatches, for images 36 PNG thumbnails. The whole report re-reads the run, "
        "embeds its items, evaluates (metrics.json older than the checkpoint is rewritten "
        "once, then reused), draws the plots and UMAP, and writes report.html.",
        "",
        "The machine is shared (2 CPU cores, 2-3 other sessions running tests): read the "
        "share, not the absolute times.",
        "",
        "| run | section | section s | whole report s | section share | report.html KiB |",
        "|---|---|---|---|---|---|",
    ]
    for run, section, section_s, report_s, size in rows:
        lines.append(
            f"| {run} | `{section}` | {section_s:.3f} | {report_s:.2f} | "
            f"{section_s / report_s:.1%} | {size / 1024:.0f} |"
        )
    write_report(RESULTS, "\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
