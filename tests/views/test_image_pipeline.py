"""ImageViews and its presets: one set of defaults for recipes and Python, every option
reachable from a recipe, presets named and overridden, BYOL's asymmetric second view."""

import pytest
import torch

from embedforge.errors import UserError
from embedforge.recipe import parse_recipe
from embedforge.registry import VIEWS
from embedforge.views.image_pipeline import ImageViews
from embedforge.views.presets import BYOLViews, SimCLRViews, TutorialAffineViews

SSL = {"loss": {"name": "ntxent"}, "train": {"self_supervised": True}}
# a value other than the default for every option, as it would be written in YAML
CHANGED = {
    "crop_scale": [0.2, 1.0],
    "crop_ratio": [0.5, 2.0],
    "degrees": 15.0,
    "translate": 0.1,
    "scale": [0.9, 1.1],
    "hflip": 0.5,
    "vflip": 0.5,
    "brightness": 0.2,
    "contrast": 0.2,
    "saturation": 0.2,
    "jitter_probability": 0.8,
    "grayscale": 0.2,
    "blur_sigma": [0.1, 2.0],
    "blur_probability": 0.9,
    "solarize": 0.1,
    "interpolation": "nearest",
    "pair": "one",
    "second": {"solarize": 0.3},
}


def test_an_empty_views_section_is_the_python_default_and_changes_nothing() -> None:
    recipe = parse_recipe({**SSL, "views": {}})
    assert recipe.views == ImageViews()
    x = torch.rand(3, 3, 8, 8)
    assert ImageViews()(x, torch.Generator()).equal(x)


def test_every_option_is_reachable_from_a_recipe() -> None:
    options = set(ImageViews.model_fields) - {"preset"}
    assert options == set(CHANGED), "a new option needs a CHANGED value here"
    for key, value in CHANGED.items():
        views = parse_recipe({**SSL, "views": {key: value}}).views
        assert getattr(views, key) != getattr(ImageViews(), key)


@pytest.mark.parametrize("preset", [TutorialAffineViews, SimCLRViews, BYOLViews])
def test_a_recipe_names_a_preset_and_overrides_its_keys(preset: type[ImageViews]) -> None:
    name = preset.model_fields["preset"].default
    assert VIEWS[name].target is preset
    assert parse_recipe({**SSL, "views": {"preset": name}}).views == preset()
    overridden = parse_recipe({**SSL, "views": {"preset": name, "hflip": 0.25}}).views
    assert isinstance(overridden, preset) and overridden.hflip == 0.25
    assert overridden == preset(hflip=0.25)  # the same in Python


def test_byol_views_are_asymmetric() -> None:
    views = BYOLViews()
    second = views.second_view()
    assert (views.blur_probability, views.solarize) == (1.0, 0.0)
    assert (second.blur_probability, second.solarize) == (0.1, 0.2)
    assert second.second_view() is second and SimCLRViews().second_view() == SimCLRViews()


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ({"preset": "nope"}, "key 'views.preset': unknown choice 'nope'"),
        ({"degree": 3}, "unknown key 'views.degree'"),
        ({"second": {"degree": 3}}, "views.second: unknown or fixed keys"),
        ({"second": {"pair": "one"}}, "views.second: unknown or fixed keys"),
        ({"hflip": 1.5}, "key 'views.hflip'"),
    ],
)
def test_bad_views_are_named(views: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_recipe({**SSL, "views": views})
