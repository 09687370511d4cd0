"""``embedforge quickstart``: the whole pipeline on the bundled data, in a few minutes.

A new user's first command, so it shows every stage once on data that needs no
download, and says where each file went:

* palettes: synthetic palettes written as a ``palette.csv`` (with their ``likes``
  target beside it, for a gradient-boosting model); a Set Transformer trained
  self-supervised (NT-Xent between two views of each palette); the embeddings of
  every object as Parquet; metrics; a FAISS index of the collection and a search
  by example; the HTML report;
* digits: scikit-learn's handwritten digits, a small CNN trained with batch-hard
  triplet loss (the demo's recipe); the embeddings of the training and held-out
  images; metrics; the HTML report.

Everything lands in one folder, built in a hidden sibling and renamed into place when
it is whole, so every path printed is the final one. An earlier quickstart folder is
replaced only with ``--overwrite`` (and only if it holds nothing but what the quickstart
wrote); any other non-empty folder is refused before anything runs.
"""

import json
import time
from pathlib import Path

from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.demo import demo_recipe
from embedforge.embed import PaletteRun, own_items_frame, write_embeddings
from embedforge.evaluate.evaluate_run import summary_line
from embedforge.evaluate.report import require_report_packages, write_report
from embedforge.files.atomic import atomic_write, staged_folder
from embedforge.files.markers import FolderKind, prepare_folder, write_marker
from embedforge.files.run_folder import METRICS
from embedforge.recipe import Recipe, bundled_recipe
from embedforge.run_items import load_run_embeddings
from embedforge.search import Searcher
from embedforge.train.trainer import train

PALETTE_OBJECTS = 6000
QUERY_OBJECTS = 5
SEED = 0
QUICKSTART = FolderKind("quickstart", frozenset({"palettes", "digits"}))


def palette_recipe(*, objects: int = PALETTE_OBJECTS, epochs: int = 10) -> Recipe:
    """configs/palette.yaml at a quickstart size: fewer objects, the same model and loss."""
    overrides = [f"data.size={objects}", "data.validation_objects=500", f"train.epochs={epochs}"]
    return bundled_recipe("palette.yaml", [*overrides, f"data.seed={SEED}", f"train.seed={SEED}"])


def run_quickstart(
    out: Path, *, overwrite: bool = False, palette_objects: int = PALETTE_OBJECTS,
    palette_epochs: int = 10, digits_epochs: int = 100,
) -> dict[str, Path]:  # fmt: skip
    """Run every stage into ``out``; the files written, by what they are."""
    start = time.perf_counter()
    require_report_packages()  # before any work: the reports come last
    prepare_folder(out, QUICKSTART, overwrite=overwrite, hint="pass --overwrite to redo it")
    with staged_folder(out) as staged:
        write_marker(staged, QUICKSTART)
        files = _palettes(staged / "palettes", palette_objects, palette_epochs)
        files |= _digits(staged / "digits", digits_epochs)
    files = {name: out / path.relative_to(staged) for name, path in files.items()}
    print(f"\nquickstart done in {time.perf_counter() - start:.0f} s; files in {out}:")
    width = max(map(len, files))
    for name, path in files.items():
        print(f"  {name:<{width}}  {path}")
    return files


def _palettes(folder: Path, objects: int, epochs: int) -> dict[str, Path]:
    print(f"palettes: {objects} synthetic objects, Set Transformer + NT-Xent")
    folder.mkdir(parents=True)
    data = synthetic_palettes(objects, SEED)
    table, likes, queries = folder / "palette.csv", folder / "likes.csv", folder / "queries.csv"
    data.write_csv(table)
    atomic_write(likes, lambda tmp: data.likes.rename("likes").to_csv(tmp))
    first = data.rows["object_id"].isin(data.likes.index[:QUERY_OBJECTS])
    atomic_write(queries, lambda tmp: data.rows[first].to_csv(tmp, index=False))

    run = folder / "run"
    train(palette_recipe(objects=objects, epochs=epochs), run)  # the same objects as the table
    embeddings = folder / "embeddings.parquet"
    palette_run = PaletteRun.load(run)
    frame = palette_run.embed(table)
    write_embeddings(frame, embeddings)
    searcher = Searcher.from_embeddings(palette_run, frame)
    index = searcher.save(folder / "index")
    neighbours = folder / "neighbours.csv"
    write_embeddings(searcher.search(queries, k=5).set_index("query_id"), neighbours)
    report = _report(run)
    return {
        "palette table": table,
        "palette likes (a target)": likes,
        "palette run": run,
        "palette embeddings": embeddings,
        "palette metrics": run / METRICS,
        "palette index": index,
        "palette search results": neighbours,
        "palette report": report,
    }


def _digits(folder: Path, epochs: int) -> dict[str, Path]:
    print("digits: small CNN + batch-hard triplet loss")
    run = folder / "run"
    train(demo_recipe(epochs=epochs, seed=SEED), run)
    embeddings = folder / "embeddings.parquet"
    write_embeddings(own_items_frame(load_run_embeddings(run)), embeddings)
    report = _report(run)
    return {
        "digits run": run,
        "digits embeddings": embeddings,
        "digits metrics": run / METRICS,
        "digits report": report,
    }


def _report(run: Path) -> Path:
    """The run's report; it evaluates the fresh run (metrics.json) on the same embeddings."""
    report = write_report(run)
    print(summary_line(json.loads((run / METRICS).read_text())))
    return report
