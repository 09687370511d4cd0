"""Malformed palette tables, each met by a command that reads one: embed, index, search, train.

Every case writes one table into its folder and hands it to one command (and to that
command's Python twin); which command varies from case to case, as a table reaches the
library through all four. See :mod:`embedforge.data.palettes` for what a table may hold.
"""

import gzip
import io
import zipfile
from collections.abc import Callable

import pandas as pd

from embedforge.bad_inputs.case import Case, Entrance, Place
from embedforge.embed import PaletteRun
from embedforge.recipe import load_recipe
from embedforge.search import Searcher
from embedforge.train.trainer import train

HEADER = "ratio,color_r,color_g,color_b,object_id"
TRAIN_RECIPE = """\
data:
  source: palettes
  path: {table}
  validation_objects: 2
encoder: {{name: deep_sets, dim: 8, hidden: 16}}
train: {{epochs: 1, batch_size: 16}}
"""
"""A recipe training on the case's table (tiny, should the table wrongly pass)."""


ENTRANCES = {
    "embed": Entrance(
        needs=lambda at, table: at.copy(at.world.palette_run, "run"),
        argv=lambda at, table: ["embed", at("run"), table, "--out", at("embedded.parquet")],
        call=lambda at, table: PaletteRun.load(at("run")).embed(table, progress=False),
    ),
    "index build": Entrance(
        needs=lambda at, table: at.copy(at.world.palette_run, "run"),
        argv=lambda at, table: ["index", "build", at("run"), table, "--out", at("index")],
        call=lambda at, table: Searcher.build(at("run"), table, progress=False),
    ),
    "search": Entrance(
        needs=lambda at, table: at.copy(at.world.palette_index, "index"),
        argv=lambda at, table: ["search", at("index"), table, "--out", at("found.csv")],
        call=lambda at, table: Searcher.load(at("index")).search(table),
    ),
    "train": Entrance(
        needs=lambda at, table: at.write("recipe.yaml", TRAIN_RECIPE.format(table=table)),
        argv=lambda at, table: ["train", at("recipe.yaml"), "--out", at("run")],
        call=lambda at, table: train(load_recipe(at("recipe.yaml")), at("run"), progress=False),
    ),
}


def palette_case(
    name: str,
    content: Callable[[Place], str | bytes] | str | bytes,
    expected: str,
    *,
    through: str,
    file: str = "palette.csv",
) -> Case:
    """A table ``file`` holding ``content`` (or what ``content(at)`` returns), read by the
    ``through`` command; the message must name ``file``."""
    make, argv, call = ENTRANCES[through].meeting(
        file, lambda at: at.write(file, content(at) if callable(content) else content)
    )
    return Case(name, make, argv, call, expected=expected, path=file)


def _good(at: Place) -> bytes:
    return at.world.palette_csv.read_bytes()


def _truncated_gzip(at: Place) -> bytes:
    whole = gzip.compress(_good(at))
    return whole[: len(whole) // 2]


def _truncated_parquet(at: Place) -> bytes:
    buffer = io.BytesIO()
    pd.read_csv(at.world.palette_csv).to_parquet(buffer)
    return buffer.getvalue()[: buffer.tell() // 2]


def _two_files_zipped(at: Place) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("palette.csv", _good(at))
        archive.writestr("notes.txt", "two files")
    return buffer.getvalue()


CASES = [
    palette_case(
        "palette: empty file",
        b"",
        "empty file (0 bytes); expected a header line and rows",
        through="embed",
    ),
    palette_case(
        "palette: header only",
        HEADER + "\n",
        "no data rows; expected one row per colour under the header",
        through="index build",
    ),
    palette_case(
        "palette: ';' between columns",
        HEADER.replace(",", ";") + "\n0.5;1;2;3;a\n",
        "expected commas between columns",
        through="search",
    ),
    palette_case(
        "palette: a column named twice",
        "ratio,ratio,color_g,color_b,object_id\n0.5,1,2,3,a\n",
        "appears 2 times in the header; expected each column once",
        through="embed",
    ),
    palette_case(
        "palette: NaN weight",
        f"{HEADER}\nNaN,1,2,3,a\n",
        "column 'ratio': expected a finite number, got 'NaN'",
        through="train",
    ),
    palette_case(
        "palette: inf colour",
        f"{HEADER}\n0.5,inf,2,3,a\n",
        "column 'color_r': expected a finite number, got inf",
        through="embed",
    ),
    palette_case(
        "palette: negative weight",
        f"{HEADER}\n-0.5,1,2,3,a\n",
        "column 'ratio': expected a non-negative weight, got -0.5",
        through="index build",
    ),
    palette_case(
        "palette: all weights of an object 0",
        f"{HEADER}\n0,1,2,3,a\n0,4,5,6,a\n1,1,2,3,b\n",
        "every weight of object 'a' is 0; expected at least one positive weight",
        through="search",
    ),
    palette_case(
        "palette: weight above 1",
        f"{HEADER}\n1.5,1,2,3,a\n",
        "expected a share between 0 and 1, got 1.5",
        through="embed",
    ),
    palette_case(
        "palette: colour above 255",
        f"{HEADER}\n0.5,300,2,3,a\n",
        "expected a colour value between 0 and 255, got 300",
        through="train",
    ),
    palette_case(
        "palette: text in a number column",
        f"{HEADER}\nabc,1,2,3,a\n",
        "column 'ratio': expected a number, got 'abc'",
        through="index build",
    ),
    palette_case(
        "palette: a missing column",
        "ratio,color_r,color_g,object_id\n0.5,1,2,a\n",
        "missing column(s) 'color_b' for the palette layout; found 'ratio', 'color_r', "
        "'color_g', 'object_id'; accepted layouts: palette.csv (ratio, color_r, color_g, "
        "color_b, object_id)",
        through="train",
    ),
    palette_case(
        "palette: ids mixing empty cells",
        f"{HEADER}\n0.5,1,2,3,a\n0.5,1,2,3,\n",
        "line 3, column 'object_id': expected a value, got an empty cell",
        through="search",
    ),
    palette_case(
        "palette: a row with a field too few",
        f"{HEADER}\n0.5,1,2,3,a\n0.5,1,3,b\n",
        "line 3: 4 fields; expected 5, one per header column",
        through="embed",
    ),
    palette_case(
        "palette: a row with a field too many",
        f"{HEADER}\n0.5,1,2,3,a\n0.5,1,2,3,b,9\n",
        "line 3: 6 fields; expected 5, one per header column",
        through="embed",
    ),
    palette_case(
        "palette: a first row with a field too many",
        f"{HEADER}\n0.5,1,2,3,a,9\n0.5,1,2,3,b\n",
        "line 2: 6 fields; expected 5, one per header column",
        through="train",
    ),
    palette_case(
        "palette: not UTF-8 (latin-1)",
        f"{HEADER}\n0.5,10,20,30,café\n0.5,10,20,30,b\n".encode("latin-1"),
        "line 2: byte 0xe9 is not UTF-8; expected a UTF-8 file",
        through="index build",
    ),
    palette_case(
        "palette: truncated gzip",
        _truncated_gzip,
        "expected a complete .gz file",
        through="embed",
        file="palette.csv.gz",
    ),
    Case(
        "palette: the file missing",
        *ENTRANCES["embed"].meeting("missing.csv", lambda at: None),
        expected="file not found; expected a palette table there",
        path="missing.csv",
    ),
    palette_case(
        "palette: truncated Parquet",
        _truncated_parquet,
        "); expected a complete Parquet file",
        through="index build",
        file="palette.parquet",
    ),
    palette_case(
        "palette: zip holding two files",
        _two_files_zipped,
        "it holds 2 files; expected one CSV file",
        through="search",
        file="palette.zip",
    ),
    palette_case(
        "color.csv: a colour that is not hex",
        "object_id,percentage,hex\na,50,#zzzzzz\n",
        "expected a colour like '#a1b2c3' (6 hex digits)",
        through="embed",
        file="color.csv",
    ),
    palette_case(
        "color.csv: percentage above 100",
        "object_id,percentage,hex\na,150,#a1b2c3\n",
        "expected a percentage 0-100, got 150",
        through="index build",
        file="color.csv",
    ),
]
"""Palette tables that must be refused."""
