"""Bad places to write and bad options: an ``--out`` that must not be written, flags that
contradict each other.

What is already there must survive: a user's file or folder named as ``--out`` is refused
before any work (see :mod:`embedforge.files.markers`), so the checksums of every file in the
case's folder, the user's included, hold.
"""

from pathlib import Path

from embedforge.bad_inputs.case import Case, Make, Place, steps
from embedforge.embed import check_output_path, embed_file
from embedforge.evaluate.report import write_report
from embedforge.quickstart import run_quickstart
from embedforge.ray_embed import embed_with_ray
from embedforge.recipe import load_recipe
from embedforge.search import Searcher
from embedforge.train.trainer import train

RECIPE = """\
data:
  source: palettes
  path: {table}
  validation_objects: 8
encoder: {{name: deep_sets, dim: 8, hidden: 16}}
train: {{epochs: 1, batch_size: 16}}
"""
"""A good palette recipe on the case's copy of the world's table."""


def _run(at: Place) -> None:
    at.copy(at.world.palette_run, "run")


def _table(at: Place) -> None:
    at.copy(at.world.palette_csv, "palette.csv")


def _index(at: Place) -> None:
    at.copy(at.world.palette_index, "index")


def _recipe(at: Place) -> None:
    _table(at)
    at.write("recipe.yaml", RECIPE.format(table=at("palette.csv")))


def _users_folder(at: Place) -> None:
    """A folder of the user's own: what no command may write into, or replace."""
    at.write("mine/notes.txt", "my notes\n")
    at.write("mine/results.csv", "id,score\n007,0.91\n")


def _users_file(name: str, content: str) -> Make:
    return lambda at: at.write(name, content)


def _train_into(at: Place, out: str, **options: bool) -> object:
    return train(load_recipe(at("recipe.yaml")), at(out), progress=False, **options)


CASES = [
    Case(
        "embed --out with an unknown extension",
        make=steps(_run, _table),
        argv=lambda at: ["embed", at("run"), at("palette.csv"), "--out", at("embedded.txt")],
        call=lambda at: embed_file(at("run"), at("palette.csv"), at("embedded.txt")),
        expected="unknown output extension '.txt'; expected one of .parquet, .csv",
        path="embedded.txt",
    ),
    Case(
        "search --out with an unknown extension",
        make=steps(_index, _table),
        argv=lambda at: ["search", at("index"), at("palette.csv"), "--out", at("found.json")],
        call=lambda at: check_output_path(at("found.json")),
        expected="unknown output extension '.json'; expected one of .parquet, .csv",
        path="found.json",
    ),
    Case(
        "embed --out an existing file, without --overwrite",
        make=steps(_run, _table, _users_file("mine.parquet", "the user's own file")),
        argv=lambda at: ["embed", at("run"), at("palette.csv"), "--out", at("mine.parquet")],
        call=lambda at: embed_file(at("run"), at("palette.csv"), at("mine.parquet")),
        expected="exists; pass --overwrite to replace it",
        path="mine.parquet",
    ),
    Case(
        "report --out an existing file, without --overwrite",
        make=steps(_run, _users_file("mine.html", "<p>the user's own page</p>")),
        argv=lambda at: ["report", at("run"), "--out", at("mine.html")],
        call=lambda at: write_report(at("run"), out=at("mine.html")),
        expected="exists; pass --overwrite to replace it",
        path="mine.html",
    ),
    Case(
        "train --out a user's non-empty folder",
        make=steps(_recipe, _users_folder),
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("mine")],
        call=lambda at: _train_into(at, "mine"),
        expected="holds files embedforge did not write (notes.txt, results.csv); it never "
        "writes into such a folder: choose a new or empty folder for the run",
        path="mine",
    ),
    Case(
        "train --out a user's non-empty folder, with --overwrite",
        make=steps(_recipe, _users_folder),
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("mine"), "--overwrite"],
        call=lambda at: _train_into(at, "mine", overwrite=True),
        expected="choose a new or empty folder for the run",
        path="mine",
    ),
    Case(
        "index build --out a user's non-empty folder",
        make=steps(_run, _table, _users_folder),
        argv=lambda at: ["index", "build", at("run"), at("palette.csv"), "--out", at("mine")],
        call=lambda at: Searcher.build(at("run"), at("palette.csv"), progress=False).save(
            at("mine")
        ),
        expected="choose a new or empty folder for the search",
        path="mine",
    ),
    Case(
        "embed --engine ray --out a user's non-empty folder",
        make=steps(_run, _table, _users_folder),
        argv=lambda at: [
            "embed",
            at("run"),
            at("palette.csv"),
            "--out",
            at("mine"),
            "--engine",
            "ray",
        ],
        call=lambda at: embed_with_ray(at("run"), at("palette.csv"), at("mine")),
        expected="choose a new or empty folder for the embeddings",
        path="mine",
    ),
    Case(
        "embed --engine ray with --workers 0",
        make=steps(_run, _table),
        argv=lambda at: [
            "embed",
            at("run"),
            at("palette.csv"),
            "--out",
            at("out"),
            "--engine",
            "ray",
            "--workers",
            "0",
        ],
        call=lambda at: embed_with_ray(at("run"), at("palette.csv"), at("out"), workers=0),
        expected="expected at least 1 Ray actor",
        key="--workers",
    ),
    Case(
        "quickstart --out a user's non-empty folder",
        make=_users_folder,
        argv=lambda at: ["quickstart", "--out", at("mine"), "--overwrite"],
        call=lambda at: run_quickstart(Path(at("mine")), overwrite=True),
        expected="choose a new or empty folder for the quickstart",
        path="mine",
    ),
    Case(
        "train --resume together with --overwrite",
        make=steps(_recipe, _run),
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("run"), "--resume", "--overwrite"],
        call=lambda at: _train_into(at, "run", resume=True, overwrite=True),
        expected="expected one of them, not both",
        path="run",
        key="--resume",
    ),
    Case(
        "search -k 0",
        make=steps(_index, _table),
        argv=lambda at: ["search", at("index"), at("palette.csv"), "-k", "0"],
        call=lambda at: Searcher.load(at("index")).search(at("palette.csv"), k=0),
        expected="k must be at least 1 (neighbours per query, search -k); got 0",
        key="-k",
    ),
    Case(
        "train --out a file",
        make=steps(_recipe, _users_folder),
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("mine/notes.txt")],
        call=lambda at: _train_into(at, "mine/notes.txt"),
        expected="is a file; expected a folder to write the run into",
        path="mine/notes.txt",
    ),
    Case(
        "train --out an existing run, without --resume or --overwrite",
        make=steps(_recipe, _run),
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("run")],
        call=lambda at: _train_into(at, "run"),
        expected="already holds an embedforge run; pass --resume to continue it or --overwrite "
        "to start it again",
        path="run",
    ),
    Case(
        "train --out an index folder",
        make=steps(_recipe, _index),
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("index"), "--overwrite"],
        call=lambda at: _train_into(at, "index", overwrite=True),
        expected="is an embedforge search folder, not a run folder; choose another folder",
        path="index",
    ),
    Case(
        "index build --out an existing index, without --overwrite",
        make=steps(_run, _table, _index),
        argv=lambda at: ["index", "build", at("run"), at("palette.csv"), "--out", at("index")],
        call=lambda at: Searcher.build(at("run"), at("palette.csv"), progress=False).save(
            at("index")
        ),
        expected="already holds an embedforge search; pass --overwrite to replace it",
        path="index",
    ),
]
"""Outputs and options that must be refused."""
