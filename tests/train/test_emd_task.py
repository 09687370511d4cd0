"""The EMD-distilled palette task: partners, exact targets on the views, validation against
exact EMD, and its place in recipes and the trainer."""

from pathlib import Path

import numpy as np
import pytest
import torch

from embedforge.build import build_palettes
from embedforge.data.set_batch import SetBatch
from embedforge.errors import UserError
from embedforge.metrics.emd import LabPalettes, palette_emd
from embedforge.recipe import parse_recipe
from embedforge.train import emd_task
from embedforge.train.emd_task import EMDPairTask, group_pairs, near_candidates
from embedforge.train.trainer import train

pytest.importorskip("ot")
CPU = torch.device("cpu")


def small(**train: object) -> dict:
    return {
        "data": {"source": "palettes", "size": 120, "validation_objects": 30},
        "encoder": {"name": "deep_sets", "dim": 8, "hidden": 16},
        "loss": {"name": "emd_distillation", "near": 6, "group": 4},
        "train": {"epochs": 2, "batch_size": 32, "seed": 3, **train},
    }


def task_of(raw: dict) -> EMDPairTask:
    recipe = parse_recipe(raw)
    return EMDPairTask(recipe, build_palettes(recipe.data), CPU)


def test_near_candidates_are_the_nearest_others_by_colour_statistics() -> None:
    recipe = parse_recipe(small())
    palettes = build_palettes(recipe.data)
    lab = LabPalettes.from_sets(palettes.sets, palettes.feature_names)
    candidates = near_candidates(lab, 5)
    statistics = lab.statistics()
    for i in range(0, len(lab), 17):
        distances = np.linalg.norm(statistics - statistics[i], axis=1)
        distances[i] = np.inf  # never its own candidate
        assert set(candidates[i].tolist()) == set(np.argsort(distances, kind="stable")[:5])


def test_group_pairs_are_every_pair_in_a_group_and_one_across() -> None:
    first, second = group_pairs(3, 4, 12, CPU)
    pairs = set(zip(first.tolist(), second.tolist(), strict=True))
    inside = {(g * 4 + i, g * 4 + j) for g in range(3) for i in range(4) for j in range(i + 1, 4)}
    across = {(r, (r + 4) % 12) for r in range(12)}
    assert pairs == inside | across and len(first) == len(inside) + len(across)
    cut = group_pairs(3, 4, 10, CPU)  # rows cut for the ranks: no pair reaches past them
    assert max(cut[0].max(), cut[1].max()) < 10


def test_targets_are_the_exact_emd_of_the_views_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    task = task_of(small())
    seen = {}

    def spy(first: torch.Tensor, second: torch.Tensor, emd: torch.Tensor) -> torch.Tensor:
        seen.update(first=first, second=second, emd=emd)
        return (first - second).pow(2).sum()

    monkeypatch.setattr(task, "loss_fn", spy)
    encoded = []

    def encode(model: torch.nn.Module, sets: SetBatch) -> torch.Tensor:
        encoded.append(sets)
        return model(sets.values, sets.mask)

    monkeypatch.setattr(emd_task, "encode_global", encode)
    seeds = next(iter(task.batches(0)))
    assert len(seeds) == task.groups == 32 // 4  # batch 32 in near groups of loss.group 4
    task.batch_loss(seeds, torch.Generator().manual_seed(0))
    (views,) = encoded  # the batch's views, encoded once
    assert len(views) == task.batch_size == 32
    lab = LabPalettes.from_sets(views, task.feature_names)
    first, second = task.pairs
    for p in (0, 5, len(first) - 1):
        i, j = int(first[p]), int(second[p])
        assert seen["emd"][p].item() == pytest.approx(
            palette_emd(*lab.palette(i), *lab.palette(j)), rel=1e-5
        )
    assert seen["first"].shape == seen["second"].shape == (len(first), 8)


def test_a_group_is_its_seed_and_distinct_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    task = task_of(small())
    drawn = []
    monkeypatch.setattr(task, "_sets", lambda index: drawn.append(index) or task.train_sets[index])
    monkeypatch.setattr(task, "_paired_emd", lambda first, second: torch.zeros(len(first)))
    seeds = next(iter(task.batches(0)))
    task.batch_loss(seeds, torch.Generator().manual_seed(0))
    groups = drawn[0].reshape(len(seeds), task.group)
    assert groups[:, 0].tolist() == seeds.tolist()
    for seed, others in zip(seeds.tolist(), groups[:, 1:].tolist(), strict=True):
        assert len(set(others)) == len(others)
        assert set(others) <= set(task.candidates[seed].tolist())


def test_batch_loss_is_reproducible_from_the_generator() -> None:
    task = task_of(small())
    seeds = next(iter(task.batches(0)))
    values = [task.batch_loss(seeds, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert values[0].item() == values[1].item() and torch.isfinite(values[0])


def test_validation_scores_the_held_out_queries_against_exact_emd() -> None:
    task = task_of(small())
    queries, collection = task.validation_queries, task.validation_collection
    held = len(task.validation_index)  # 24: at most a fifth of the 120 objects
    assert len(queries) == held // 2 and len(collection) == held - held // 2
    lab = LabPalettes.from_sets(task.validation_sets, task.feature_names)
    i, j = int(queries[3]), int(collection[4])
    assert task.validation_emd[3, 4] == pytest.approx(palette_emd(*lab.palette(i), *lab.palette(j)))
    metrics = task.validate()
    assert 0 <= metrics["emd_recall_at_10"] <= 1 and -1 <= metrics["emd_spearman"] <= 1
    assert np.isfinite(metrics["validation_loss"]) and "view_precision_at_1" in metrics


def test_training_lowers_the_loss_and_keeps_the_best_emd_recall(tmp_path: Path) -> None:
    result = train(parse_recipe(small(epochs=4)), tmp_path / "run")
    losses = [epoch["loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    recalls = [epoch["emd_recall_at_10"] for epoch in result.history]
    assert result.best_value == max(recalls) and result.best_epoch == int(np.argmax(recalls))


def test_a_batch_too_small_for_two_groups_is_refused() -> None:
    with pytest.raises(UserError, match=r"fewer than 2 near groups of loss\.group 4"):
        task_of({**small(), "train": {"batch_size": 7, "seed": 3}})


def test_recipes_default_to_emd_recall_and_refuse_what_does_not_fit() -> None:
    assert parse_recipe(small()).train.best_metric == "emd_recall_at_10"
    with pytest.raises(ValueError, match=r"best_metric must be one of .'view_precision_at_1',."):
        parse_recipe({"data": {"source": "palettes"}, "train": {"best_metric": "emd_recall_at_10"}})
    with pytest.raises(ValueError, match="'projection' needs a loss of two views"):
        parse_recipe({**small(), "projection": {"hidden_dim": 16, "dim": 8}})


def test_a_table_without_colours_is_refused(tmp_path: Path) -> None:
    rows = [(f"o{i // 3}", 1.0, float(i % 3), float(i % 5)) for i in range(120)]
    table = tmp_path / "sets.csv"
    table.write_text("id,w,x,y\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    raw = small()
    raw["data"] = {
        "source": "palettes",
        "path": str(table),
        "id_column": "id",
        "weight_column": "w",
        "feature_columns": ["x", "y"],
        "validation_objects": 8,
    }
    recipe = parse_recipe(raw)
    with pytest.raises(UserError, match="needs palettes of colours"):
        EMDPairTask(recipe, build_palettes(recipe.data), CPU)
