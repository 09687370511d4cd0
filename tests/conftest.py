"""Shared fixtures: the device (CUDA only when present), a small trained palette run, data."""

from pathlib import Path

import pytest
import torch

from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.recipe import parse_recipe
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
