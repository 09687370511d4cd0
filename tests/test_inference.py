"""embedforge.inference: sets embedded in size-sorted chunks come back in input order."""

import pytest
import torch

from embedforge.build import build_palettes, build_set_encoder
from embedforge.inference import batch_bounds, embed_sets, trim_padding
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


@pytest.mark.parametrize("n", [0, 1, 7, 1024, 1025, 2047, 5000])
def test_batch_bounds_cover_every_set_once_in_full_batches_then_powers_of_two(n: int) -> None:
    bounds = batch_bounds(n, 1024, remainder_in_powers_of_two=True)
    starts, stops = [b[0] for b in bounds], [b[1] for b in bounds]
    assert starts == [0, *stops][: len(bounds)] and [0, *stops][-1] == n
    counts = [stop - start for start, stop in bounds]
    full, rest = counts[: n // 1024], counts[n // 1024 :]
    assert full == [1024] * (n // 1024)
    assert all(c & (c - 1) == 0 for c in rest) and rest == sorted(set(rest), reverse=True)


@pytest.mark.parametrize("n", [0, 1, 7, 1024, 1025, 2047, 5000])
def test_batch_bounds_keep_one_remainder_batch_unless_asked(n: int) -> None:
    bounds = batch_bounds(n, 1024, remainder_in_powers_of_two=False)
    assert bounds == [(start, min(start + 1024, n)) for start in range(0, n, 1024)]


def test_chunks_of_one_size_give_repeated_batch_counts() -> None:
    """The point of the powers of two: a stream's chunks, whatever their number of sets,
    leave few distinct batch shapes (oneDNN caches a kernel per shape)."""
    counts = {
        stop - start
        for n in range(15_000, 17_000)
        for start, stop in batch_bounds(n, 1024, remainder_in_powers_of_two=True)
    }
    assert len(counts) <= 11  # 1024 and the powers of two below it


@pytest.mark.parametrize("encoder", list(SMALL_ENCODERS))
def test_embed_sets_returns_rows_in_input_order_whatever_the_chunking(encoder: str) -> None:
    recipe = parse_recipe(small(encoder))
    sets = build_palettes(recipe.data).sets[:40]
    model = build_set_encoder(recipe.encoder, in_features=sets.num_features)
    assert len(set(sets.sizes.tolist())) > 2  # chunks sorted by size differ from input order
    one_by_one = torch.cat([embed_sets(model, sets[[i]], CPU) for i in range(len(sets))])
    torch.testing.assert_close(embed_sets(model, sets, CPU, batch=7), one_by_one)
