"""Every method through a recipe, on palettes and on images: trains, checkpoints its target
and queue with the run, resumes bit-identically after a kill, and evaluates from the run."""

import math
from pathlib import Path

import pytest
import torch
from tests.methods.test_methods import SMALL
from tests.train.killing import killed_after_first_resume_point

from embedforge.errors import UserError
from embedforge.files.run_folder import BEST, LAST
from embedforge.files.state import load_state
from embedforge.recipe import parse_recipe
from embedforge.registry import METHODS
from embedforge.run_items import load_run_embeddings
from embedforge.train.trainer import train

PALETTES = {
    "data": {"source": "palettes", "size": 96, "validation_objects": 16},
    "encoder": {"name": "deep_sets", "dim": 8, "hidden": 16},
    "train": {"epochs": 2, "batch_size": 16, "seed": 2, "checkpoint_interval_s": 0},
}
IMAGES = {
    "data": {"source": "digits"},
    "encoder": {"name": "small_cnn", "feature_dim": 16},
    "embedder": {"dim": 8},
    "views": {"preset": "simclr", "crop_scale": [0.6, 1.0]},
    "train": {"epochs": 1, "batch_size": 128, "seed": 2},
}


def _with_method(raw: dict, name: str) -> dict:
    return {**raw, "method": {"name": name, **SMALL[name]}}


@pytest.mark.parametrize("name", METHODS.names())
def test_method_trains_palettes_resumes_after_a_kill_and_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    recipe = parse_recipe(_with_method(PALETTES, name))
    whole = train(recipe, tmp_path / "whole", progress=False)
    assert all(math.isfinite(row["loss"]) for row in whole.history)
    with killed_after_first_resume_point(monkeypatch):
        train(recipe, tmp_path / "resumed", progress=False)
    resumed = train(recipe, tmp_path / "resumed", resume=True, progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    got, want = load_state(tmp_path / "resumed" / LAST), load_state(tmp_path / "whole" / LAST)
    for part in ("model", "loss"):  # the loss part holds heads, target, queue, centre, step
        assert got[part].keys() == want[part].keys()
        assert all(torch.equal(got[part][k], want[part][k]) for k in want[part]), part
    assert int(want["loss"]["step"]) == 2 * 5  # 80 training objects / 16 a batch, 2 epochs

    best = load_state(tmp_path / "whole" / BEST)
    logged = whole.history[best["epoch"]]["validation_loss"]
    embeddings = load_run_embeddings(tmp_path / "whole")  # evaluate reloads every part
    assert embeddings.query.shape == (16, 8)
    assert embeddings.view_matching["validation_loss"] == pytest.approx(logged, rel=1e-5)


@pytest.mark.parametrize("name", METHODS.names())
def test_method_trains_images_with_views(tmp_path: Path, name: str) -> None:
    result = train(parse_recipe(_with_method(IMAGES, name)), tmp_path, progress=False)
    row = result.history[0]
    assert math.isfinite(row["loss"]) and 0 <= row["precision_at_1"] <= 1
    # the collapse monitors every epoch (metrics.jsonl; the report draws a panel for each)
    assert 1.0 <= row["rankme"] <= 8.0 and row["uniformity"] <= 0 and row["dimension_std"] >= 0


def test_a_method_beside_a_loss_or_projection_is_refused() -> None:
    for extra in ({"loss": {"name": "ntxent"}}, {"projection": {"hidden_dim": 8, "dim": 4}}):
        with pytest.raises(UserError, match="conflicts with section 'method'"):
            parse_recipe({**_with_method(PALETTES, "byol"), **extra})


def test_a_method_recipe_is_written_without_the_unused_loss() -> None:
    recipe = parse_recipe(_with_method(PALETTES, "byol"))
    text = recipe.to_yaml()
    assert "method:" in text and "\nloss:" not in text
    assert parse_recipe(__import__("yaml").safe_load(text)) == recipe
