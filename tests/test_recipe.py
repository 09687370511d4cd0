from pathlib import Path

import pytest

from embedforge.errors import UserError
from embedforge.recipe import load_recipe, parse_recipe

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_bundled_recipe_validates(path: Path) -> None:
    load_recipe(path)


def test_overrides_are_typed_and_reach_nested_sections(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("loss:\n  name: triplet_margin\n")
    recipe = load_recipe(path, ["train.epochs=3", "loss.margin=0.3", "sampler.p=4", "sampler.k=2"])
    assert recipe.train.epochs == 3 and recipe.loss.margin == 0.3 and recipe.sampler.p == 4


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.epoch=3"], "unknown key 'train.epoch'"),
        (["train.epochs=three"], "key 'train.epochs'"),
        (["loss.margn=1"], "unknown key 'loss.margn'"),
        (["loss.name=nope"], "key 'loss'"),
        (["train.epochs"], "key=value"),
        (["train.epochs.x=1"], "is a value, not a section"),
    ],
)
def test_bad_overrides_name_the_key(tmp_path: Path, overrides: list[str], message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("loss:\n  name: triplet_margin\ntrain:\n  epochs: 2\n")
    with pytest.raises(UserError, match=message):
        load_recipe(path, overrides)


def test_missing_and_malformed_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="mapping of sections"):
        load_recipe(bad)


def test_recipe_round_trips_through_yaml() -> None:
    recipe = parse_recipe({"loss": {"name": "arcface", "margin": 20.0}, "train": {"epochs": 2}})
    import yaml

    assert parse_recipe(yaml.safe_load(recipe.to_yaml())) == recipe
