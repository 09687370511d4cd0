"""Inputs that look odd but are right: each must work, through the command and in Python.

The table of refusals is only half a promise: a reader that refused these would pass it.
Each is met the way a bad one is (:meth:`~embedforge.bad_inputs.case.Entrance.meeting`);
the command must exit 0 with nothing on stderr and write its output, the call must return.
"""

import gzip

import numpy as np

from embedforge.bad_inputs import image_cases, palette_cases
from embedforge.bad_inputs.case import Accepted, Make, Place
from embedforge.recipe import load_recipe
from embedforge.train.trainer import train

HEADER = palette_cases.HEADER


def _palette(name: str, content: str | bytes, *, through: str, file: str, writes: str) -> Accepted:
    def write(at: Place) -> None:
        at.write(file, content)

    make, argv, call = palette_cases.ENTRANCES[through].meeting(file, write)
    return Accepted(name, make, argv, call, writes=writes)


def _two_by_two(at: Place) -> None:
    at.folder.joinpath("q").mkdir()
    at.write("q/a.png", image_cases.good_image(at))
    at.write("q/tiny.png", image_cases.png(np.zeros((2, 2, 3), dtype=np.uint8)))
    at.write(image_cases.LIST, "image\na.png\ntiny.png\n")


def _images(name: str, write: Make, *, through: str, writes: str) -> Accepted:
    make, argv, call = image_cases.ENTRANCES[through].meeting(image_cases.LIST, write)
    return Accepted(name, make, argv, call, writes=writes)


def _recipe_with_crlf_and_comments(at: Place) -> None:
    at.copy(at.world.palette_csv, "palette.csv")
    recipe = palette_cases.TRAIN_RECIPE.format(table=at("palette.csv"))
    at.write("recipe.yaml", "# a tiny run\r\n" + recipe.replace("\n", "  # set\r\n"))


ACCEPTED = [
    Accepted(
        "recipe: CRLF line ends and comments (one epoch trained)",
        make=_recipe_with_crlf_and_comments,
        argv=lambda at: ["train", at("recipe.yaml"), "--out", at("run")],
        call=lambda at: train(load_recipe(at("recipe.yaml")), at("run"), progress=False),
        writes="run/checkpoints/best.safetensors",
    ),
    _palette(
        "palette: a byte-order mark and CRLF line ends",
        f"\ufeff{HEADER}\r\n0.5,10,20,30,a\r\n0.5,40,50,60,a\r\n1,70,80,90,b\r\n",
        through="embed",
        file="palette.csv",
        writes="embedded.parquet",
    ),
    _palette(
        "palette: numbers in quotes, blank lines, ids like 007 and NA",
        f'{HEADER}\n"0.5","10","20","30",007\n\n0.5,40,50,60,007\n1,70,80,90,NA\n',
        through="index build",
        file="palette.csv",
        writes="index",
    ),
    _palette(
        "color.csv, gzip-compressed",
        gzip.compress(b"object_id,percentage,hex\na,60,#a1b2c3\na,40,0000ff\nb,100,#FFFFFF\n"),
        through="search",
        file="color.csv.gz",
        writes="found.csv",
    ),
    _images(
        "images: 2x2 pixels, the smallest side",
        _two_by_two,
        through="embed",
        writes="embedded.parquet",
    ),
]
"""Inputs that must work."""
