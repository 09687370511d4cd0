"""Malformed image lists and image files, met by a run trained on an image folder.

Every case writes a folder ``q/`` of images and a CSV naming them, ``q/list.csv``, and hands
the CSV (or the folder) to one command and its Python twin: embed, index build and search
read an ``image`` column, train reads ``image,label``. See :mod:`embedforge.data.image_folder`.
"""

import io
from collections.abc import Callable

import numpy as np

from embedforge.bad_inputs.case import Case, Entrance, Place
from embedforge.image_run import ImageRun
from embedforge.recipe import load_recipe
from embedforge.search import Searcher
from embedforge.train.trainer import train

LIST = "q/list.csv"
TRAIN_RECIPE = """\
data:
  source: image_folder
  root: {root}
  csv: {csv}
  image_size: 8
encoder: {{name: small_cnn, feature_dim: 8}}
embedder: {{dim: 8}}
train: {{epochs: 1, batch_size: 8}}
"""
"""A recipe training on the case's images (tiny, should they wrongly pass)."""


ENTRANCES = {
    "embed": Entrance(
        needs=lambda at, images: at.copy(at.world.image_run, "run"),
        argv=lambda at, images: ["embed", at("run"), images, "--out", at("embedded.parquet")],
        call=lambda at, images: ImageRun.load(at("run")).embed(images, progress=False),
    ),
    "index build": Entrance(
        needs=lambda at, images: at.copy(at.world.image_run, "run"),
        argv=lambda at, images: ["index", "build", at("run"), images, "--out", at("index")],
        call=lambda at, images: Searcher.build(at("run"), images, progress=False),
    ),
    "search": Entrance(
        needs=lambda at, images: at.copy(at.world.image_index, "index"),
        argv=lambda at, images: ["search", at("index"), images, "--out", at("found.csv")],
        call=lambda at, images: Searcher.load(at("index")).search(images),
    ),
    "train": Entrance(
        needs=lambda at, images: at.write(
            "recipe.yaml", TRAIN_RECIPE.format(root=at("q"), csv=images)
        ),
        argv=lambda at, images: ["train", at("recipe.yaml"), "--out", at("run")],
        call=lambda at, images: train(load_recipe(at("recipe.yaml")), at("run"), progress=False),
    ),
}

Content = bytes | Callable[[Place], bytes]


def good_image(at: Place) -> bytes:
    """A whole PNG of the world (8×8 pixels)."""
    return sorted(at.world.images.iterdir())[0].read_bytes()


def image_case(
    name: str,
    images: dict[str, Content],
    listed: str | None,
    expected: str,
    *,
    through: str,
    path: str = LIST,
) -> Case:
    """``images`` (file name in ``q/`` -> bytes) listed by ``q/list.csv`` holding ``listed``
    (None: no CSV, the command is handed the folder ``q`` itself), read by the ``through``
    command; the message must name ``path``."""
    given = LIST if listed is not None else "q"

    def write(at: Place) -> None:
        at.folder.joinpath("q").mkdir()
        for file, content in images.items():
            at.write(f"q/{file}", content(at) if callable(content) else content)
        if listed is not None:
            at.write(LIST, listed)

    make, argv, call = ENTRANCES[through].meeting(given, write)
    return Case(name, make, argv, call, expected=expected, path=path)


def _truncated(at: Place) -> bytes:
    """A noisy image cut to its first half: a download or copy that stopped midway."""
    return png(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))[:400]


def _one_pixel(at: Place) -> bytes:
    return png(np.zeros((1, 1, 3), dtype=np.uint8))


def png(pixels: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 pixels as the bytes of a PNG file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _outside(at: Place) -> bytes:
    at.write("x.png", good_image(at))  # beside q/, so ../x.png is a real file
    return good_image(at)


TWO = {"a.png": good_image, "b.png": good_image}
LABELLED = "image,label\na.png,whale_0\nb.png,whale_1\n"

CASES = [
    image_case(
        "images: a truncated file",
        {"a.png": good_image, "b.png": _truncated},
        "image\na.png\nb.png\n",
        "cannot read this image (image file is truncated); expected a whole image file",
        through="embed",
        path="q/b.png",
    ),
    image_case(
        "images: a file of zero bytes",
        {"a.png": good_image, "b.png": b""},
        "image\na.png\nb.png\n",
        "expected a whole image file that Pillow can decode; listed in",
        through="index build",
        path="q/b.png",
    ),
    image_case(
        "images: 1x1 pixels",
        {"a.png": good_image, "b.png": _one_pixel},
        LABELLED,
        "b.png: 1x1 pixels; expected at least 2 pixels on each side; listed in",
        through="train",
        path="q/b.png",
    ),
    image_case(
        "images: a listed file missing",
        {"a.png": good_image},
        "image\na.png\nb.png\n",
        "expected each listed image to be a file there",
        through="search",
    ),
    Case(
        "images: an image file given as the list",
        *ENTRANCES["embed"].meeting("q/a.png", lambda at: at.write("q/a.png", good_image(at))),
        expected="line 1: not a readable CSV header ('utf-8' codec can't decode byte 0x89 in "
        "position 0: invalid start byte); expected a header with columns image in a UTF-8 CSV",
        path="q/a.png",
    ),
    image_case(
        "images: a folder without images",
        {"notes.txt": b"no pictures here"},
        None,
        "no image files in this folder; expected at least one (.png",
        through="embed",
        path="q",
    ),
    image_case(
        "images: a path outside the root (../x.png)",
        {"a.png": _outside},
        "image\na.png\n../x.png\n",
        "expected images inside it",
        through="embed",
    ),
    image_case(
        "images: a CSV without the image column",
        TWO,
        "file,label\na.png,whale_0\n",
        "missing column(s) 'image'; expected a header with columns image",
        through="index build",
    ),
    image_case(
        "images: an image listed twice",
        TWO,
        LABELLED + "a.png,whale_0\n",
        "item 'a.png' is listed 2 times; expected each once",
        through="train",
    ),
    image_case(
        "images: an empty CSV",
        TWO,
        "",
        "the CSV file is empty; expected a header with columns image",
        through="search",
    ),
    image_case(
        "images: a label missing",
        TWO,
        "image,label\na.png,whale_0\nb.png,\n",
        "line 3, column 'label': empty value; expected a label",
        through="train",
    ),
]
"""Image lists and files that must be refused."""
