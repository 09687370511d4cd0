import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from embedforge.build import build_palettes
from embedforge.cli import main
from embedforge.data.set_batch import SetBatch
from embedforge.errors import UserError
from embedforge.inference import embed_sets
from embedforge.losses.projected import Projected
from embedforge.recipe import parse_recipe
from embedforge.train import set_task
from embedforge.train.set_task import SetTask
from embedforge.train.trainer import train

CONFIGS = Path(__file__).parents[2] / "configs"
CPU = torch.device("cpu")
SMALL_ENCODERS = {
    "deep_sets": {"name": "deep_sets", "dim": 8, "hidden": 16},
    "set_transformer": {"name": "set_transformer", "dim": 8, "hidden": 16, "blocks": 1},
    "raster_cnn": {"name": "raster_cnn", "dim": 8, "image_size": 8, "channels": 4},
}


def small(encoder: str = "deep_sets", loss: str = "ntxent", **train: object) -> dict:
    return {
        "data": {"source": "palettes", "size": 200, "validation_objects": 30},
        "encoder": SMALL_ENCODERS[encoder],
        "loss": {"name": loss},
        "train": {"epochs": 2, "batch_size": 64, "seed": 3, **train},
    }


def test_palette_recipes_default_to_set_transformer_ntxent_and_views() -> None:
    recipe = parse_recipe({"data": {"source": "palettes"}})
    assert recipe.encoder.name == "set_transformer" and recipe.loss.name == "ntxent"
    assert recipe.set_views is not None and recipe.train.best_metric == "view_precision_at_1"
    assert recipe.data.size == 24_000


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"data": {"source": "palettes"}, "embedder": {"dim": 8}}, "'embedder' is for images"),
        ({"data": {"source": "palettes"}, "encoder": {"name": "small_cnn"}}, "encoder.name"),
        (
            {"data": {"source": "palettes"}, "loss": {"name": "supcon"}},
            "loss.name 'supcon' cannot train palettes",
        ),
        ({"data": {"source": "palettes", "colour": "lab"}}, "unknown key 'data.colour'"),
        ({"data": {"source": "palettes"}, "encoder": {"name": "deep_sets", "heads": 2}}, "heads"),
        ({"set_views": {}}, "'set_views' is for data.source 'palettes'"),
        ({"encoder": {"name": "deep_sets"}}, "is for data.source 'palettes'"),
        ({"loss": {"name": "cosine_triplet"}}, "is for data.source 'palettes'"),
    ],
)
def test_recipes_mixing_sets_and_images_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_recipe(raw)


def test_held_out_objects_are_disjoint_and_batches_follow_seed_and_epoch() -> None:
    recipe = parse_recipe(small())
    task = SetTask(recipe, build_palettes(recipe.data), torch.device("cpu"))
    held, trained = set(task.validation_index.tolist()), set(task.train_index.tolist())
    assert len(held) == 30 and not held & trained and held | trained == set(range(200))
    assert task.num_batches() == 170 // 64
    first = [b.values for b in task.batches(1)]
    again = [b.values for b in task.batches(1)]
    other = [b.values for b in task.batches(2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_each_rank_encodes_its_rows_of_the_views_one_process_makes(
    as_rank: Callable[[int, int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every rank makes the views of the whole global batch (their draws depend on its padded
    width, and the gamma sampler cannot be sliced) and encodes its own rows of them."""
    recipe = parse_recipe(small(batch_size=12))
    palettes = build_palettes(recipe.data)
    encoded: list[SetBatch] = []
    forward_by_size = set_task.forward_by_size

    def recording(model: torch.nn.Module, sets: SetBatch, **options: object) -> torch.Tensor:
        encoded.append(sets)
        return forward_by_size(model, sets, **options)

    monkeypatch.setattr(set_task, "forward_by_size", recording)

    def views(rank: int, world_size: int) -> list[SetBatch]:
        as_rank(rank, world_size)
        task = SetTask(recipe, palettes, CPU)
        encoded.clear()
        task.batch_loss(next(iter(task.batches(0))), torch.Generator().manual_seed(0))
        return list(encoded)  # the two views, B_local sets each

    whole = views(0, 1)
    parts = [views(rank, 3) for rank in range(3)]
    for view, rank_views in zip(whole, zip(*parts, strict=True), strict=True):
        assert torch.equal(torch.cat([part.values for part in rank_views]), view.values)
        assert torch.equal(torch.cat([part.mask for part in rank_views]), view.mask)


@pytest.mark.parametrize("loss", ["ntxent", "cosine_triplet"])
@pytest.mark.parametrize("encoder", list(SMALL_ENCODERS))
def test_batch_loss_is_finite_with_a_gradient_on_every_parameter(encoder: str, loss: str) -> None:
    torch.manual_seed(0)
    recipe = parse_recipe(small(encoder, loss))
    task = SetTask(recipe, build_palettes(recipe.data), torch.device("cpu"))
    batch = next(iter(task.batches(0)))
    value = task.batch_loss(batch, torch.Generator().manual_seed(0))
    value.backward()
    assert torch.isfinite(value)
    for name, parameter in task.model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    metrics = task.validate()
    assert 0.0 <= metrics["view_precision_at_1"] <= 1.0
    assert task.validate() == metrics  # fixed validation views


def test_projection_head_trains_on_the_set_embedding_which_stays_the_output() -> None:
    recipe = parse_recipe(small("set_transformer") | {"projection": {"hidden_dim": 12, "dim": 5}})
    task = SetTask(recipe, build_palettes(recipe.data), CPU)
    assert isinstance(task.loss_fn, Projected)
    batch = next(iter(task.batches(0)))
    task.batch_loss(batch, torch.Generator().manual_seed(0)).backward()
    for name, parameter in task.loss_fn.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert embed_sets(task.model, task.validation_sets, CPU).shape == (30, 8)  # encoder.dim


def test_seeded_palette_runs_are_identical(tmp_path: Path) -> None:
    recipe = parse_recipe(small("set_transformer"))
    first = train(recipe, tmp_path / "a", progress=False)
    second = train(recipe, tmp_path / "b", progress=False)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in second.history]
    assert {"loss", "view_precision_at_1", "validation_loss"} <= set(first.history[0])


def test_train_command_runs_the_palette_config(tmp_path: Path) -> None:
    overrides = [
        "data.size=150",
        "data.validation_objects=20",
        "encoder.hidden=16",
        "encoder.blocks=1",
        "train.epochs=1",
        "train.batch_size=64",
    ]
    argv = ["train", str(CONFIGS / "palette.yaml"), "--out", str(tmp_path / "run")]
    assert main([*argv, *[arg for o in overrides for arg in ("--set", o)]]) == 0
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert "view_precision_at_1" in json.loads(rows[0])
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()
