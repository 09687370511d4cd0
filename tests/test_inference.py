"""embedforge.inference: sets embedded in size-sorted chunks come back in input order."""

import pytest
import torch

from embedforge.build import build_palettes, build_set_encoder
from embedforge.inference import embed_sets, trim_padding
from embedforge.recipe import parse_recipe

CPU = torch.device("cpu")
SMALL_ENCODERS = {
    "deep_sets": {"name": "deep_sets", "dim": 8, "hidden": 16},
    "set_transformer": {"name": "set_transformer", "dim": 8, "hidden": 16, "blocks": 1},
    "raster_cnn": {"name": "raster_cnn", "dim": 8, "image_size": 8, "channels": 4},
}


def small(encoder: str = "deep_sets") -> dict:
    return {"data": {"source": "palettes", "size": 200}, "encoder": SMALL_ENCODERS[encoder]}


def test_trim_padding_keeps_every_real_row() -> None:
    recipe = parse_recipe(small())
    sets = build_palettes(recipe.data).sets[:5]
    trimmed = trim_padding(sets)
    assert trimmed.max_rows == int(sets.sizes.max()) and torch.equal(trimmed.sizes, sets.sizes)


@pytest.mark.parametrize("encoder", list(SMALL_ENCODERS))
def test_embed_sets_returns_rows_in_input_order_whatever_the_chunking(encoder: str) -> None:
    recipe = parse_recipe(small(encoder))
    sets = build_palettes(recipe.data).sets[:40]
    model = build_set_encoder(recipe.encoder, in_features=sets.num_features)
    assert len(set(sets.sizes.tolist())) > 2  # chunks sorted by size differ from input order
    one_by_one = torch.cat([embed_sets(model, sets[[i]], CPU) for i in range(len(sets))])
    torch.testing.assert_close(embed_sets(model, sets, CPU, batch=7), one_by_one)
