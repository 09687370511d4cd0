"""ImageTask's generative (VAE) branch and the projection head, trained through ``train``."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from embedforge.build import build_data
from embedforge.files.run_folder import LAST
from embedforge.files.state import load_state
from embedforge.losses import Projected, VAELoss
from embedforge.recipe import parse_recipe
from embedforge.train.trainer import build_task, train

DSPRITES = {"source": "dsprites", "size": 200, "test_fraction": 0.2}
VAE = {
    "data": DSPRITES,
    "embedder": {"dim": 84, "normalize": False},
    "loss": {"name": "vae", "latent_dim": 4},
    "optimizer": {"name": "adam", "lr": 0.001},
    "train": {"epochs": 3, "batch_size": 40, "seed": 3},
}


def weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_state(run / LAST)
    return {f"{part}.{k}": v for part in ("model", "loss") for k, v in state[part].items()}


def test_vae_recipe_trains_and_checkpoints_its_decoder(tmp_path: Path) -> None:
    recipe = parse_recipe(VAE)
    result = train(recipe, tmp_path / "run", progress=False)
    losses = [row["loss"] for row in result.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert 0.0 <= result.history[-1]["precision_at_1"] <= 1.0  # retrieval by shape still runs
    task = build_task(recipe, torch.device("cpu"))
    assert isinstance(task.loss_fn, VAELoss)
    state = load_state(tmp_path / "run" / LAST)
    assert state["loss"].keys() == task.loss_fn.state_dict().keys()
    assert state["model"].keys() == task.model.state_dict().keys()  # model(x): trunk + embedder


def test_vae_batch_loss_is_the_loss_of_the_batch_images() -> None:
    recipe = parse_recipe(VAE)
    torch.manual_seed(0)
    task = build_task(recipe, torch.device("cpu"))
    images, labels = next(iter(task.batches(0)))
    got = task.batch_loss((images, labels), torch.Generator().manual_seed(1))
    z = task.model(images)
    expected = task.loss_fn(z, images, torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, expected)


def test_vae_runs_are_reproducible_and_resume_to_the_same_weights(tmp_path: Path) -> None:
    whole = train(parse_recipe(VAE), tmp_path / "whole", progress=False)
    again = train(parse_recipe(VAE), tmp_path / "again", progress=False)
    assert [r["loss"] for r in whole.history] == [r["loss"] for r in again.history]
    one_epoch = {**VAE, "train": {**VAE["train"], "epochs": 1}}
    train(parse_recipe(one_epoch), tmp_path / "resumed", progress=False)
    resumed = train(parse_recipe(VAE), tmp_path / "resumed", resume=True, progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    expected, got = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)


@pytest.mark.parametrize("projection", [None, {"hidden_dim": 64, "dim": 32}])
def test_simclr_trains_with_and_without_a_projection_head(
    tmp_path: Path, projection: dict | None
) -> None:
    recipe = parse_recipe(
        {
            "data": DSPRITES,
            "embedder": {"dim": 84, "normalize": False},
            "loss": {"name": "ntxent", "temperature": 0.5},
            "projection": projection,
            "views": {"degrees": 90, "translate": 0.2, "scale": [0.8, 1.2]},
            "train": {"epochs": 2, "batch_size": 40, "self_supervised": True},
        }
    )
    result = train(recipe, tmp_path / "run", progress=False)
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in result.history)
    torch.manual_seed(recipe.train.seed)  # as train() does before building
    task = build_task(recipe, torch.device("cpu"))
    state = load_state(tmp_path / "run" / LAST)
    assert state["model"].keys() == task.model.state_dict().keys()  # model(x) stays h
    if projection is None:
        assert not state["loss"]
        return
    assert isinstance(task.loss_fn, Projected)
    head = {k: v for k, v in state["loss"].items() if k.startswith("head.")}
    assert head.keys() == {f"head.{k}" for k in task.loss_fn.head.state_dict()}
    initial = task.loss_fn.head.layers[0].weight
    assert not torch.allclose(head["head.layers.0.weight"], initial)  # the head was trained


@pytest.mark.parametrize("pair", ["both", "one"])
def test_a_self_supervised_pair_is_two_views_or_the_image_and_one_view(pair: str) -> None:
    recipe = parse_recipe(
        {
            "data": DSPRITES,
            "loss": {"name": "ntxent", "temperature": 0.5},
            "views": {"degrees": 90, "translate": 0.2, "pair": pair},
            "train": {"batch_size": 40, "self_supervised": True},
        }
    )
    task = build_task(recipe, torch.device("cpu"))
    seen: list[torch.Tensor] = []
    task.model.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    images, labels = next(iter(task.batches(0)))
    task.batch_loss((images, labels), torch.Generator().manual_seed(0))
    first, second = seen
    assert not torch.equal(second, images)  # the second is always a random view
    assert torch.equal(first, images) == (pair == "one")


def test_each_rank_views_its_rows_as_one_process_would(as_rank: Callable[[int, int], None]) -> None:
    """Rank r's images get the views one process gives the same rows of the global batch: the
    views' draws cover the global batch (rank 1 used to repeat rank 0's)."""
    recipe = parse_recipe(
        {
            "data": DSPRITES,
            "loss": {"name": "ntxent", "temperature": 0.5},
            "views": {"degrees": 90, "translate": 0.2, "hflip": 0.5},
            "train": {"batch_size": 12, "self_supervised": True},
        }
    )
    data = build_data(recipe.data)

    def model_inputs(rank: int, world_size: int) -> list[torch.Tensor]:
        as_rank(rank, world_size)
        task = build_task(recipe, torch.device("cpu"), data)
        seen: list[torch.Tensor] = []
        task.model.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
        task.batch_loss(next(iter(task.batches(0))), torch.Generator().manual_seed(0))
        return seen  # the two views, (B_local, C, H, W) each

    whole = model_inputs(0, 1)
    parts = [model_inputs(rank, 3) for rank in range(3)]
    for view, rank_views in zip(whole, zip(*parts, strict=True), strict=True):
        assert torch.equal(torch.cat(rank_views), view)
