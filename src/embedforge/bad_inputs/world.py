"""The good things bad inputs are made from: small trained runs, their data and indexes.

Built once (a few seconds on a CPU) and never written to afterwards: a case copies what
it needs into its own folder before it breaks it, so the checksums a case compares cover the
run it damages, and no case sees another's damage.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PALETTE_OBJECTS = 40
IMAGE_INDIVIDUALS, IMAGES_EACH, IMAGE_SIDE = 4, 4, 8


@dataclass(frozen=True)
class World:
    """Paths of the good inputs every case starts from.

    Attributes:
        palette_csv: a palette.csv of synthetic palettes.
        palette_run: a palette run trained one epoch on ``palette_csv``; it keeps its own
            copy of the table (``data/``), so a copied run is whole without the original.
        palette_index: an index folder over ``palette_csv`` (``embedforge index build``).
        images: a folder of small PNG images.
        images_csv: ``image,label`` naming every file of ``images``.
        image_run: a run trained one epoch on ``images`` + ``images_csv``.
        image_index: an index folder over ``images``.
    """

    palette_csv: Path
    palette_run: Path
    palette_index: Path
    images: Path
    images_csv: Path
    image_run: Path
    image_index: Path


def build_world(folder: Path) -> World:
    """Generate the data, train both runs and build both indexes inside ``folder``."""
    from PIL import Image

    from embedforge.data.synthetic_palettes import synthetic_palettes
    from embedforge.recipe import parse_recipe
    from embedforge.search import Searcher
    from embedforge.train.trainer import train

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    world = World(
        palette_csv=folder / "palette.csv",
        palette_run=folder / "palette_run",
        palette_index=folder / "palette_index",
        images=folder / "images",
        images_csv=folder / "images.csv",
        image_run=folder / "image_run",
        image_index=folder / "image_index",
    )
    synthetic_palettes(PALETTE_OBJECTS, seed=5).write_csv(world.palette_csv)
    palettes = parse_recipe(
        {
            "data": {"source": "palettes", "path": str(world.palette_csv), "validation_objects": 8},
            "encoder": {"name": "deep_sets", "dim": 8, "hidden": 16},
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    train(palettes, world.palette_run, progress=False, table=world.palette_csv)
    Searcher.build(world.palette_run, world.palette_csv, progress=False).save(world.palette_index)

    world.images.mkdir()
    rng = np.random.default_rng(0)
    lines = ["image,label"]
    for individual in range(IMAGE_INDIVIDUALS):
        for i in range(IMAGES_EACH):
            name = f"whale{individual}_{i}.png"
            pixels = rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(world.images / name)
            lines.append(f"{name},whale_{individual}")
    world.images_csv.write_text("\n".join(lines) + "\n")
    images = parse_recipe(
        {
            "data": {
                "source": "image_folder",
                "root": str(world.images),
                "csv": str(world.images_csv),
                "image_size": IMAGE_SIDE,
                "test_fraction": 0.25,
            },
            "encoder": {"name": "small_cnn", "feature_dim": 8},
            "embedder": {"dim": 8},
            "loss": {"name": "arcface"},
            "train": {"epochs": 1, "batch_size": 8, "best_metric": "precision_at_1"},
        }
    )
    train(images, world.image_run, progress=False)
    Searcher.build(world.image_run, world.images, progress=False).save(world.image_index)
    return world


def copy_into(source: Path, target: Path) -> Path:
    """Copy a file or folder of the world to ``target`` (a case's own copy); ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    return target
