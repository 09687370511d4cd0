import json
from pathlib import Path

from embedforge.cli import main
from embedforge.evaluate.evaluate_run import evaluate_run
from embedforge.evaluate.retrieval import ALL_METRIC_NAMES
from embedforge.recipe import parse_recipe
from embedforge.train.trainer import train


def test_evaluate_writes_every_metric_of_an_image_run(tmp_path: Path, capsys) -> None:
    recipe = parse_recipe(
        {
            "loss": {"name": "triplet_margin", "margin": 0.2, "mining": "hard"},
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


def test_evaluate_refuses_palette_runs_and_missing_folders(
    run_dir: Path, tmp_path: Path, capsys
) -> None:
    assert main(["evaluate", str(run_dir)]) == 2
    assert "image runs" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "recipe file not found" in capsys.readouterr().err
