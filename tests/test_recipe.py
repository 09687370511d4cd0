from pathlib import Path

import pytest
import yaml

from embedforge.errors import UserError
from embedforge.recipe import bundled_recipe, load_recipe, parse_recipe

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
        (["loss.name=nope"], "key 'loss.name': unknown choice 'nope'; expected one of 'arcface'"),
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
    assert parse_recipe(yaml.safe_load(recipe.to_yaml())) == recipe


def test_softmax_vae_and_projection_sections() -> None:
    softmax = parse_recipe({"loss": {"name": "softmax"}})
    assert softmax.loss.bias is True and softmax.projection is None
    vae = parse_recipe({"loss": {"name": "vae"}})
    assert (vae.loss.latent_dim, vae.loss.beta) == (10, 1.0)
    simclr = parse_recipe(
        {
            "loss": {"name": "ntxent"},
            "projection": {"hidden_dim": 84, "dim": 32},
            "train": {"self_supervised": True},
        }
    )
    assert (simclr.projection.hidden_dim, simclr.projection.dim) == (84, 32)
    assert parse_recipe(yaml.safe_load(simclr.to_yaml())) == simclr


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"loss": {"name": "vae", "latent_dim": 0}}, "key 'loss.latent_dim'"),
        ({"loss": {"name": "vae", "beta": -1}}, "key 'loss.beta'"),
        ({"loss": {"name": "softmax", "margin": 1}}, "unknown key 'loss.margin'"),
        ({"projection": {"dim": 8}}, "key 'projection.hidden_dim'"),
        ({"projection": {"hidden_dim": 8, "dim": 8, "depth": 2}}, "unknown key 'projection.depth'"),
        (
            {"loss": {"name": "vae"}, "views": {"degrees": 10}},
            "section 'views' is unused by loss 'vae'",
        ),
        (
            {"loss": {"name": "vae"}, "projection": {"hidden_dim": 8, "dim": 8}},
            "section 'projection' is unused by loss 'vae'",
        ),
        (
            {"loss": {"name": "softmax"}, "train": {"self_supervised": True}},
            r"train.self_supervised needs a loss of two views "
            r"\(barlow_twins, ntxent, vicreg\), not 'softmax'",
        ),
        (
            {
                "data": {"source": "palettes"},
                "loss": {"name": "cosine_triplet"},
                "projection": {"hidden_dim": 8, "dim": 8},
            },
            "section 'projection' needs a loss of two views for palettes, not 'cosine_triplet'",
        ),
    ],
)
def test_bad_new_sections_are_named(raw: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_recipe(raw)


def test_setting_a_sections_name_switches_the_choice_and_drops_the_old_keys() -> None:
    # the command the reid recipe's header documents, whatever the order of the --set flags
    overrides = ["encoder.model_name=resnet50", "encoder.name=timm", "loss.name=supcon"]
    recipe = bundled_recipe("reid_arcface.yaml", overrides)
    assert recipe.encoder.model_dump() == {
        "name": "timm",
        "model_name": "resnet50",
        "weights": None,
    }
    assert recipe.loss.name == "supcon"  # ArcFace's margin and scale went with it
    same = bundled_recipe("reid_arcface.yaml", ["encoder.name=small_cnn"])
    assert same.encoder.feature_dim == 84  # the same name keeps the file's keys
