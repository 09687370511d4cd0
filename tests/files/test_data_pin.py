"""Tests for embedforge.files.data_pin: a run records its data and split; later commands hold
to them, and changed data is one clear error (or, asked for, a re-score on what is left)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from embedforge.build import build_data
from embedforge.cli import main
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.errors import UserError
from embedforge.evaluate.evaluate_run import evaluate_run
from embedforge.files.data_pin import read_pin
from embedforge.files.run_folder import INPUTS, RECIPE, SPLIT
from embedforge.recipe import BUNDLED, load_recipe, parse_recipe
from embedforge.run_items import load_run_embeddings
from embedforge.train.trainer import train


@pytest.fixture
def folder_run(reid_folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A re-id run on a copy of the re-id folder (its CSV is edited by the tests)."""
    data = tmp_path / "reid"
    shutil.copytree(reid_folder, data)
    overrides = [
        f"data.root={data / 'images'}",
        f"data.csv={data / 'train.csv'}",
        "data.image_size=32",
        "data.test_fraction=0.4",
        "train.epochs=1",
        "train.batch_size=16",
    ]
    recipe = load_recipe(BUNDLED / "reid_arcface.yaml", overrides)
    train(recipe, tmp_path / "run", progress=False)
    return tmp_path / "run", data / "train.csv"


def test_the_split_is_recorded_by_item_id(folder_run: tuple[Path, Path]) -> None:
    run, csv = folder_run
    split = pd.read_parquet(run / SPLIT)
    assert set(split["split"]) == {"train", "test"}
    listed = pd.read_csv(csv, dtype=str)["image"]
    assert sorted(split["id"]) == sorted(listed)  # every image once, by its file name
    inputs = json.loads((run / INPUTS).read_text())
    assert inputs["files"]["data.csv"]["path"] == str(csv.resolve())
    assert inputs["files"]["data.csv"]["bytes"] == csv.stat().st_size


def test_an_appended_row_is_refused_with_the_way_to_rescore(
    folder_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run, csv = folder_run
    first_row = csv.read_text().splitlines()[1]
    csv.write_text(csv.read_text() + first_row + "\n")  # the same image listed again
    assert main(["evaluate", str(run)]) == 2
    error = capsys.readouterr().err
    assert f"{csv.resolve()}: changed since the run was trained on it (data.csv" in error
    assert "--allow-changed-data" in error and error.count("\n") == 1
    with pytest.raises(UserError, match="listed 2 times"):  # a repeat could leak across sides
        load_run_embeddings(run, allow_changed_data=True)


def test_a_new_image_leaves_the_recorded_split_as_it_was(folder_run: tuple[Path, Path]) -> None:
    run, csv = folder_run
    before = read_pin(run).held_out
    images = csv.parent / "images"
    shutil.copyfile(next(images.iterdir()), images / "new_photo.png")
    csv.write_text(csv.read_text() + "new_photo.png,whale_0\n")
    with pytest.raises(UserError, match="changed since the run was trained"):
        evaluate_run(run)
    rescored = load_run_embeddings(run, allow_changed_data=True)
    assert rescored.query_ids.tolist() == before.test_ids.tolist()
    assert rescored.reference_ids.tolist() == before.train_ids.tolist()
    assert evaluate_run(run, allow_changed_data=True)["data"] == "changed since training"


def test_a_removed_image_is_named_and_dropped_on_a_rescore(folder_run: tuple[Path, Path]) -> None:
    run, csv = folder_run
    held = read_pin(run).held_out
    gone = str(held.test_ids[0])
    kept = [line for line in csv.read_text().splitlines() if not line.startswith(f"{gone},")]
    csv.write_text("\n".join(kept) + "\n")
    rescored = load_run_embeddings(run, allow_changed_data=True)
    assert rescored.query_ids.tolist() == held.test_ids[1:].tolist()


def test_generated_data_is_checked_by_its_items(tmp_path: Path) -> None:
    recipe = parse_recipe({"embedder": {"dim": 8}, "train": {"epochs": 1}})
    train(recipe, tmp_path / "run", progress=False)
    recorded = read_pin(tmp_path / "run").held_out
    assert recorded.test_ids.tolist() == build_data(recipe.data).test_ids.tolist()
    assert evaluate_run(tmp_path / "run")["data"] == "as trained"
    inputs = json.loads((tmp_path / "run" / INPUTS).read_text())
    inputs["items"]["sha256"] = "0" * 64  # as if the generator had changed
    (tmp_path / "run" / INPUTS).write_text(json.dumps(inputs))
    with pytest.raises(UserError, match="not what its data gives now"):
        evaluate_run(tmp_path / "run")


def test_a_palette_table_that_changed_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "palette.csv"
    synthetic_palettes(60, seed=1).rows.to_csv(table, index=False)
    recipe = parse_recipe(
        {
            "data": {"source": "palettes", "path": str(table), "validation_objects": 10},
            "encoder": {"name": "deep_sets", "dim": 8, "hidden": 8},
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    train(recipe, tmp_path / "run", progress=False)
    evaluate_run(tmp_path / "run")
    table.write_text(table.read_text().replace("\n", "\r\n", 1))
    with pytest.raises(UserError, match=r"palette\.csv: changed since the run was trained"):
        evaluate_run(tmp_path / "run")


def test_a_run_records_paths_that_mean_the_same_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    synthetic_palettes(60, seed=1).rows.to_csv("palette.csv", index=False)
    recipe = parse_recipe(
        {
            "data": {"source": "palettes", "path": "palette.csv", "validation_objects": 10},
            "encoder": {"name": "deep_sets", "dim": 8, "hidden": 8},
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    train(recipe, "run", progress=False)
    assert load_recipe(tmp_path / "run" / RECIPE).data.path == str(tmp_path / "palette.csv")
    monkeypatch.chdir(tmp_path.parent)
    assert evaluate_run(tmp_path / "run")["kind"] == "palettes"
