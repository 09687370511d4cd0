import json
import sys
from pathlib import Path

import pytest
import torch

from embedforge.build import build_data
from embedforge.cli import main
from embedforge.evaluate.evaluate_run import evaluate_run, summary_line
from embedforge.metrics.emd import LabPalettes, emd_to_collection
from embedforge.metrics.emd_agreement import emd_spearman, recall_at_k_of_emd_neighbours
from embedforge.metrics.retrieval import ALL_METRIC_NAMES
from embedforge.recipe import load_recipe, parse_recipe
from embedforge.run_items import load_run_embeddings
from embedforge.train.trainer import train


def test_evaluate_writes_every_metric_of_an_image_run(tmp_path: Path, capsys) -> None:
    recipe = parse_recipe(
        {
            "loss": {"name": "triplet_margin", "margin": 0.2, "mining": "batch_hard"},
            "sampler": {"p": 5, "k": 4},
            "train": {"epochs": 2},
        }
    )
    run = tmp_path / "run"
    result = train(recipe, run, progress=False)
    assert main(["evaluate", str(run)]) == 0
    assert "metrics.json" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["retrieval"]) == set(ALL_METRIC_NAMES)
    assert all(0.0 <= value <= 1.0 for value in metrics["retrieval"].values())
    best = result.history[result.best_epoch]  # the best checkpoint is what gets evaluated
    assert (
        abs(
            metrics["retrieval"]["mean_average_precision_at_r"]
            - best["mean_average_precision_at_r"]
        )
        < 1e-6
    )
    assert [point["fraction"] for point in metrics["few_shot"]] == [0.01, 0.02, 0.05, 0.1, 0.5, 1.0]
    assert metrics == evaluate_run(run)  # deterministic


def test_evaluate_a_synthetic_palette_run_by_views_and_hue_family(run_dir: Path) -> None:
    metrics = evaluate_run(run_dir)
    assert metrics["kind"] == "palettes" and metrics["labels"] == "hue family"
    assert metrics["queries"] == 20 and metrics["reference"] == 130  # SetTask's held-out split
    monitors = {"rankme", "uniformity", "dimension_std"}
    assert set(metrics["view_matching"]) == {
        "view_precision_at_1",
        "validation_loss",
        "alignment",
        *monitors,
    }
    assert set(metrics["collapse"]) == monitors  # of the held-out embeddings
    assert 1.0 <= metrics["collapse"]["rankme"] <= 8.0  # the run's 8-d embedding
    assert 0.0 <= metrics["retrieval"]["precision_at_1"] <= 1.0
    assert "open_set" not in metrics  # every hue family is in the training objects
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics


def test_evaluate_a_palette_run_on_a_users_table_by_views_only(
    palette_csv: Path, tmp_path: Path
) -> None:
    recipe = parse_recipe(
        {
            "data": {"source": "palettes", "path": str(palette_csv), "validation_objects": 8},
            "encoder": {"name": "deep_sets", "dim": 8, "hidden": 16},
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    train(recipe, tmp_path / "run", progress=False)
    metrics = evaluate_run(tmp_path / "run")
    assert set(metrics) == {
        "kind",
        "data",
        "queries",
        "reference",
        "k",
        "view_matching",
        "collapse",
        "emd",
    }
    assert metrics["data"] == "as trained"
    assert (metrics["emd"]["queries"], metrics["emd"]["reference"]) == (8, 32)


def test_a_palette_run_is_measured_against_exact_emd(run_dir: Path) -> None:
    """20 held-out palettes against 130 training ones: under the caps, so all of them."""
    emd = evaluate_run(run_dir)["emd"]
    assert (emd["k"], emd["queries"], emd["reference"], emd["pairs"]) == (10, 20, 130, 2600)
    run = load_run_embeddings(run_dir)
    exact = emd_to_collection(
        LabPalettes.from_sets(run.query_sets, run.feature_names),
        LabPalettes.from_sets(run.reference_sets, run.feature_names),
    )
    assert emd["recall_at_k"] == recall_at_k_of_emd_neighbours(run.query, run.reference, exact)
    assert emd["spearman"] == emd_spearman(run.query, run.reference, exact)
    assert f"EMD recall@10 {emd['recall_at_k']:.4f}" in summary_line(evaluate_run(run_dir))


def test_without_pot_a_palette_run_notes_the_extra(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ot", None)
    note = evaluate_run(run_dir)["emd"]["note"]
    assert note.endswith("which is not installed: pip install embedforge[emd]")


def test_evaluate_calibrates_the_open_set_threshold_when_new_individuals_are_held_out(
    reid_run: Path,
) -> None:
    split = build_data(load_recipe(reid_run / "recipe.yaml").data)
    unseen = ~torch.isin(split.test_labels, split.train_labels)
    assert unseen.any()  # the seeded split holds out some singletons
    open_set = evaluate_run(reid_run)["open_set"]
    assert open_set["new_queries"] == int(unseen.sum())
    assert len(open_set["thresholds"]) == len(open_set["scores"])
    assert open_set["map_at_5"] == max(open_set["scores"])
    assert open_set["map_at_5"] >= open_set["map_at_5_without_threshold"]


def test_evaluate_refuses_a_missing_folder(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
