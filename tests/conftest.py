"""Shared fixtures: the device (CUDA only when present), a small trained palette run, data,
and the world the bad-input cases copy from (kept here: a tests/bad_inputs/conftest.py is
imported as the module ``conftest`` before --doctest-modules collects this file, which then
fails as a mismatch)."""

from pathlib import Path

import pytest
import torch

from embedforge.bad_inputs.case import Place
from embedforge.bad_inputs.world import World, build_world
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.recipe import load_recipe, parse_recipe
from embedforge.train.trainer import train

ENCODERS = {
    "deep_sets": {"name": "deep_sets", "dim": 8, "hidden": 16},
    "set_transformer": {"name": "set_transformer", "dim": 8, "hidden": 16, "blocks": 1},
    "raster_cnn": {"name": "raster_cnn", "dim": 8, "image_size": 8, "channels": 4},
}


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A palette run trained for one short epoch (what embedding needs, not quality)."""
    recipe = parse_recipe(
        {
            "data": {"source": "palettes", "size": 150, "validation_objects": 20},
            "encoder": ENCODERS["set_transformer"],
            "train": {"epochs": 1, "batch_size": 64},
        }
    )
    path = tmp_path_factory.mktemp("run") / "run"
    train(recipe, path, progress=False)
    return path


@pytest.fixture(scope="session")
def palette_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "palette.csv"
    synthetic_palettes(40, seed=5).rows.to_csv(path, index=False)
    return path


REID_INDIVIDUALS, REID_SINGLETONS = 6, 3


@pytest.fixture(scope="session")
def reid_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small re-id data (``images/`` + ``train.csv``): 6 individuals of 8 images, each a colour
    pattern shown as noisy, shifted copies, and 3 individuals seen once (new individuals when
    their image is held out)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("reid")
    rng = torch.Generator().manual_seed(0)
    lines = ["image,label"]
    (root / "images").mkdir()
    counts = [8] * REID_INDIVIDUALS + [1] * REID_SINGLETONS
    for individual, count in enumerate(counts):
        pattern = torch.rand(3, 8, 8, generator=rng)
        for i in range(count):
            image = pattern.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (3, 32, 32)
            image = torch.roll(image, shifts=i % 3, dims=2)
            image = (image + 0.1 * torch.randn(3, 32, 32, generator=rng)).clamp(0, 1)
            name = f"whale{individual}_{i}.png"
            pixels = (image.permute(1, 2, 0) * 255).byte().numpy()
            Image.fromarray(pixels).save(root / "images" / name)
            lines.append(f"{name},whale_{individual}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def reid_run(reid_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/reid_arcface.yaml trained one short epoch on ``reid_folder``; 40% held out, so
    some singletons are held-out individuals with no training image."""
    overrides = [
        f"data.root={reid_folder / 'images'}",
        f"data.csv={reid_folder / 'train.csv'}",
        "data.image_size=32",
        "data.test_fraction=0.4",
        "train.epochs=1",
        "train.batch_size=16",
    ]
    recipe = load_recipe(Path(__file__).parents[1] / "configs" / "reid_arcface.yaml", overrides)
    path = tmp_path_factory.mktemp("reid_run") / "run"
    train(recipe, path, progress=False)
    return path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The small trained runs, data and indexes every bad-input case copies from."""
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def at(tmp_path: Path, world: World) -> Place:
    """A bad-input case's own empty folder."""
    folder = tmp_path / "case"
    folder.mkdir()
    return Place(folder, world)
