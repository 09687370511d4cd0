"""Damaged run folders, met by every command that reads a run: evaluate, report, embed, index
build, and train --resume.

Each case copies the world's palette run into its folder as ``run/`` and damages the copy
(a checkpoint cut short, a recipe edited, the data it was trained on changed), so the
checksums the case compares cover the run itself: a refusal must not write into it either.
See :mod:`embedforge.files.run_folder` and :mod:`embedforge.files.data_pin`.
"""

import os
from collections.abc import Callable
from pathlib import Path

from embedforge.bad_inputs.case import Case, Entrance, Place
from embedforge.embed import PaletteRun
from embedforge.evaluate.evaluate_run import evaluate_run
from embedforge.evaluate.report import write_report
from embedforge.recipe import load_recipe
from embedforge.search import Searcher
from embedforge.train.trainer import train

BEST = "run/checkpoints/best.safetensors"


def _table(at: Place) -> str:
    return str(at.copy(at.world.palette_csv, "palette.csv"))


def _edited_recipe(at: Place) -> str:
    """The run's recipe with another learning rate and the run's table named by full path
    (a relative path in a recipe file is read from the current folder)."""
    recipe = (at.folder / "run/recipe.yaml").read_text()
    recipe = recipe.replace("lr: 0.001", "lr: 0.01")
    recipe = recipe.replace("path: data/palettes.csv", f"path: {at('run/data/palettes.csv')}")
    return str(at.write("edited.yaml", recipe))


ENTRANCES = {
    "evaluate": Entrance(
        needs=lambda at, run: None,
        argv=lambda at, run: ["evaluate", run],
        call=lambda at, run: evaluate_run(run),
    ),
    "report": Entrance(
        needs=lambda at, run: None,
        argv=lambda at, run: ["report", run],
        call=lambda at, run: write_report(run),
    ),
    "embed": Entrance(
        needs=lambda at, run: _table(at),
        argv=lambda at, run: ["embed", run, at("palette.csv"), "--out", at("embedded.parquet")],
        call=lambda at, run: PaletteRun.load(run).embed(at("palette.csv"), progress=False),
    ),
    "index build": Entrance(
        needs=lambda at, run: _table(at),
        argv=lambda at, run: ["index", "build", run, at("palette.csv"), "--out", at("index")],
        call=lambda at, run: Searcher.build(run, at("palette.csv"), progress=False),
    ),
    "train --resume": Entrance(
        needs=lambda at, run: _edited_recipe(at),
        argv=lambda at, run: ["train", at("edited.yaml"), "--out", run, "--resume"],
        call=lambda at, run: train(load_recipe(at("edited.yaml")), run, resume=True),
    ),
}


def run_case(
    name: str,
    damage: Callable[[Path], object],
    expected: str,
    *,
    through: str,
    path: str = "run",
) -> Case:
    """The world's palette run copied to ``run/``, ``damage(run)`` done to it, read by the
    ``through`` command; the message must name ``path``."""
    make, argv, call = ENTRANCES[through].meeting(
        "run", lambda at: damage(at.copy(at.world.palette_run, "run"))
    )
    return Case(name, make, argv, call, expected=expected, path=path)


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _another_encoder(run: Path) -> None:
    recipe = run / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("name: deep_sets", "name: set_transformer"))


def _edit_first_ratio(run: Path) -> None:
    table = run / "data/palettes.csv"
    lines = table.read_text().splitlines(keepends=True)
    lines[1] = "0.5" + lines[1][lines[1].index(",") :]  # line 2's ratio, same columns
    table.write_text("".join(lines))


CASES = [
    Case(
        "run: the folder missing",
        make=lambda at: None,
        argv=lambda at: ["evaluate", at("run")],
        call=lambda at: evaluate_run(at("run")),
        expected="not a run folder: it does not exist (expected .embedforge.json",
        path="run",
    ),
    Case(
        "run: a file, not a folder",
        make=lambda at: at.copy(at.world.palette_csv, "palette.csv"),
        argv=lambda at: ["report", at("palette.csv")],
        call=lambda at: write_report(at("palette.csv")),
        expected="not a run folder: it is a file (expected .embedforge.json",
        path="palette.csv",
    ),
    run_case(
        "run: not a run (no marker)",
        lambda run: (run / ".embedforge.json").unlink(),
        "not a run folder (expected .embedforge.json, recipe.yaml and",
        through="report",
    ),
    run_case(
        "run: no best checkpoint",
        lambda run: (run / "checkpoints/best.safetensors").unlink(),
        "the run has no checkpoints/best.safetensors (expected",
        through="embed",
    ),
    run_case(
        "run: its split.parquet truncated",
        lambda run: _cut_in_half(run / "split.parquet"),
        "expected them as 'embedforge train' wrote them",
        through="evaluate",
    ),
    run_case(
        "run: a truncated checkpoint",
        lambda run: _cut_in_half(run / "checkpoints/best.safetensors"),
        "not a whole embedforge checkpoint",
        through="evaluate",
        path=BEST,
    ),
    run_case(
        "run: a checkpoint of random bytes",
        lambda run: (run / "checkpoints/best.safetensors").write_bytes(os.urandom(4096)),
        "not a whole embedforge checkpoint",
        through="index build",
        path=BEST,
    ),
    run_case(
        "run: recipe edited to another encoder",
        _another_encoder,
        "unexpected (first 'phi.0.weight')); expected the weights of the model recipe.yaml",
        through="embed",
        path=BEST,
    ),
    run_case(
        "run: its recipe.yaml not valid YAML",
        lambda run: (run / "recipe.yaml").write_text("data:\n  source: [palettes\n"),
        "not valid YAML (while parsing a flow sequence, expected ',' or ']'",
        through="evaluate",
        path="run/recipe.yaml",
    ),
    run_case(
        "run: its data file changed since training",
        _edit_first_ratio,
        "; to score the run on the data as it is now, pass --allow-changed-data",
        through="evaluate",
        path="run/data/palettes.csv",
    ),
    run_case(
        "run: its data file gone",
        lambda run: (run / "data/palettes.csv").unlink(),
        "the file the run was trained on (data.path) is gone; expected it where the run",
        through="report",
        path="run/data/palettes.csv",
    ),
    run_case(
        "run: a cut line in the middle of metrics.jsonl",
        lambda run: (run / "metrics.jsonl").write_text('{"epoch": 0}\n{"epo\n{"epoch": 1}\n'),
        "line 2: not a JSON object",
        through="report",
        path="run/metrics.jsonl",
    ),
    run_case(
        "train --resume with an edited recipe",
        lambda run: None,
        "cannot resume: the recipe differs from the run's recipe.yaml (optimizer.lr: 0.001 -> "
        "0.01); resume with the run's own recipe",
        through="train --resume",
    ),
]
"""Run folders that must be refused."""
