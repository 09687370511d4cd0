import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import ENCODERS

from embedforge.build import build_data
from embedforge.cli import main
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.embed import PaletteRun, write_embeddings
from embedforge.errors import UserError
from embedforge.image_run import ImageRun
from embedforge.recipe import parse_recipe
from embedforge.train.trainer import train


def embed(run_dir: Path, data: Path, out: Path) -> int:
    return main(["embed", str(run_dir), str(data), "--out", str(out), "--device", "cpu"])


def test_parquet_and_csv_have_one_row_per_object_and_the_same_vectors(
    run_dir: Path, palette_csv: Path, tmp_path: Path
) -> None:
    assert embed(run_dir, palette_csv, tmp_path / "e.parquet") == 0
    assert embed(run_dir, palette_csv, tmp_path / "e.csv") == 0
    parquet, csv = pd.read_parquet(tmp_path / "e.parquet"), pd.read_csv(tmp_path / "e.csv")
    expected = ["object_id", *(f"emb_{i}" for i in range(8))]
    assert list(parquet.columns) == expected == list(csv.columns)
    ids = pd.read_csv(palette_csv)["object_id"]  # objects in the order they first appear
    assert parquet["object_id"].tolist() == ids.unique().tolist() == csv["object_id"].tolist()
    assert parquet["emb_0"].dtype == np.float32
    np.testing.assert_allclose(parquet.iloc[:, 1:], csv.iloc[:, 1:], rtol=1e-6, atol=1e-7)


def test_shuffled_rows_give_the_same_vectors_end_to_end(
    run_dir: Path, palette_csv: Path, tmp_path: Path
) -> None:
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(palette_csv).sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    assert embed(run_dir, palette_csv, tmp_path / "a.parquet") == 0
    assert embed(run_dir, shuffled, tmp_path / "b.parquet") == 0
    a = pd.read_parquet(tmp_path / "a.parquet").set_index("object_id").sort_index()
    b = pd.read_parquet(tmp_path / "b.parquet").set_index("object_id").sort_index()
    assert a.index.equals(b.index)  # the same objects, each in the order it first appears
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_every_set_encoder_embeds_independently_of_row_order(encoder: str) -> None:
    recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": ENCODERS[encoder]})
    run = PaletteRun.from_recipe(recipe)
    rows = synthetic_palettes(30, seed=2).rows
    first = run.embed(rows, progress=False)
    second = run.embed(rows.sample(frac=1.0, random_state=0), progress=False)
    assert first.index.is_monotonic_increasing and first.index.equals(second.index)
    np.testing.assert_allclose(first.to_numpy(), second.to_numpy(), atol=1e-5, rtol=0)


def test_ids_come_back_as_written_through_embed_and_both_output_formats(tmp_path: Path) -> None:
    ids = ["007", "0x1F", "1e3", "NA", "null", "鯨-07", "café", "0012", " 42"]
    table = tmp_path / "color.csv"
    rows = "".join(f"{object_id},100,#ff0000\n" for object_id in ids)
    table.write_text("object_id,percentage,hex\n" + rows, encoding="utf-8")
    recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": {"name": "deep_sets"}})
    frame = PaletteRun.from_recipe(recipe).embed(table, progress=False)
    assert frame.index.name == "object_id" and frame.index.tolist() == sorted(ids)
    write_embeddings(frame, tmp_path / "e.csv")
    write_embeddings(frame, tmp_path / "e.parquet")
    csv = pd.read_csv(tmp_path / "e.csv", dtype={"object_id": str}, keep_default_na=False)
    parquet = pd.read_parquet(tmp_path / "e.parquet")
    assert csv["object_id"].tolist() == sorted(ids) == parquet["object_id"].tolist()
    np.testing.assert_allclose(csv.iloc[:, 1:], frame.to_numpy(), rtol=1e-6, atol=1e-7)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "content,message",
    [
        (
            "ratio,color_r,color_g,color_b,object_id\n1.0,12,300,4,a\n",
            "line 2, column 'color_g': expected a colour value between 0 and 255, got 300",
        ),
        ("ratio,color_r,color_g,object_id\n1.0,12,30,a\n", "missing column(s) 'color_b'"),
        ("", "empty file"),
        ("object_id,percentage,hex\n7,100,#12345\n", "column 'hex'"),
        ("object_id;percentage;hex\n7;100;#123456\n", "line 1: the header is one column"),
        ("object_id,hex,hex\n7,#123456,#123456\n", "line 1: column 'hex' appears 2 times"),
    ],
    ids=["bad-colour", "missing-column", "empty-file", "bad-hex", "semicolons", "repeated-column"],
)
def test_bad_input_exits_2_with_one_line_and_no_output(
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    data = write(tmp_path / "bad.csv", content)
    out = tmp_path / "out.parquet"
    assert embed(run_dir, data, out) == 2
    error = capsys.readouterr().err
    assert message in error and str(data) in error and len(error.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [data]


def test_unknown_extension_and_missing_run_are_user_errors(
    run_dir: Path, palette_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert embed(run_dir, palette_csv, tmp_path / "out.xlsx") == 2
    assert "unknown output extension '.xlsx'" in capsys.readouterr().err
    assert embed(tmp_path / "nowhere", palette_csv, tmp_path / "out.csv") == 2
    assert "not a run folder" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_image_runs_are_refused() -> None:
    with pytest.raises(UserError, match="expected 'palettes'"):
        PaletteRun.from_recipe(parse_recipe({}))


def test_without_data_a_run_exports_its_own_items(tmp_path: Path, capsys) -> None:
    recipe = parse_recipe({"embedder": {"dim": 8}, "train": {"epochs": 1}})
    train(recipe, tmp_path / "run", progress=False)
    out = tmp_path / "digits.parquet"
    assert main(["embed", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert "into 8 dimensions" in capsys.readouterr().out
    frame = pd.read_parquet(out).set_index("id")
    split = build_data(recipe.data)
    assert list(frame.columns) == ["split", "label", *(f"emb_{i}" for i in range(8))]
    assert (frame["split"] == "train").sum() == len(split.train_labels)
    test = frame[frame["split"] == "test"]
    assert test.index.tolist() == split.test_ids.tolist()  # positions among scikit-learn's
    assert test["label"].tolist() == split.test_labels.tolist()


def test_an_image_folder_run_embeds_a_folder_of_new_images(
    reid_run: Path, reid_folder: Path, tmp_path: Path
) -> None:
    images = reid_folder / "images"
    out = tmp_path / "images.parquet"
    assert embed(reid_run, images, out) == 0
    frame = pd.read_parquet(out).set_index("image")
    assert sorted(frame.index) == sorted(path.name for path in images.iterdir())
    own = ImageRun.load(reid_run).embed(images, progress=False)  # the same model in Python
    np.testing.assert_allclose(frame.loc[own.index].to_numpy(), own.to_numpy(), rtol=1e-6)


def test_an_image_folder_run_follows_its_recipe_on_images_outside_the_csv_folder(
    reid_run: Path, reid_folder: Path, tmp_path: Path
) -> None:
    image = reid_folder / "images" / "whale0_0.png"
    queries = write(tmp_path / "queries.csv", f"image\n{image}\n")  # outside tmp_path
    run = ImageRun.load(reid_run)
    with pytest.raises(UserError, match=r"queries\.csv, line 2, column 'image': .* outside the"):
        run.embed(queries, progress=False)
    data = run.recipe.data.model_copy(update={"allow_outside_root": True})
    run.recipe = run.recipe.model_copy(update={"data": data})
    frame = run.embed(queries, progress=False)
    own = ImageRun.load(reid_run).embed(reid_folder / "images", progress=False)
    assert frame.index.tolist() == [str(image)]
    expected = own.loc["whale0_0.png"].to_numpy()  # embedded in a batch of 51: float rounding
    np.testing.assert_allclose(frame.to_numpy()[0], expected, rtol=1e-5, atol=1e-7)


def test_image_files_with_a_digits_run_are_one_clear_error(tmp_path: Path, capsys) -> None:
    recipe = parse_recipe({"embedder": {"dim": 8}, "train": {"epochs": 1}})
    train(recipe, tmp_path / "run", progress=False)
    assert embed(tmp_path / "run", tmp_path, tmp_path / "out.parquet") == 2
    assert "image_folder" in capsys.readouterr().err
    assert not (tmp_path / "out.parquet").exists()


def test_the_console_script_prints_no_traceback(run_dir: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "bad.csv", "ratio,color_r,color_g,color_b,object_id\n1.0,x,1,1,a\n")
    command = [sys.executable, "-m", "embedforge", "embed", str(run_dir), str(data)]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "o.csv")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "column 'color_r': expected a number, got 'x'" in done.stderr
    assert not (tmp_path / "o.csv").exists()


def grouped_csv(path: Path, n: int = 30) -> Path:
    """A palette.csv whose objects' rows are together (as the competition files are)."""
    synthetic_palettes(n, seed=4).rows.sort_values("object_id").to_csv(path, index=False)
    return path


@pytest.mark.parametrize("chunk_rows", ["1", "5", "1000"])
def test_the_stream_gives_the_in_memory_embeddings_by_id(
    run_dir: Path, tmp_path: Path, chunk_rows: str
) -> None:
    table = grouped_csv(tmp_path / "palette.csv")
    out = tmp_path / "e.parquet"
    argv = ["embed", str(run_dir), str(table), "--out", str(out), "--chunk-rows", chunk_rows]
    assert main([*argv, "--device", "cpu"]) == 0
    streamed = pd.read_parquet(out)
    expected = PaletteRun.load(run_dir).embed(table, progress=False)
    assert streamed["object_id"].tolist() == pd.read_csv(table)["object_id"].unique().tolist()
    streamed = streamed.set_index("object_id").loc[expected.index]
    np.testing.assert_allclose(streamed.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)


def test_a_folder_of_parquet_parts_embeds_as_one_table(run_dir: Path, tmp_path: Path) -> None:
    rows = synthetic_palettes(30, seed=4).rows.sort_values("object_id")
    parts = tmp_path / "parts"
    parts.mkdir()
    ids = rows["object_id"].unique()
    for k, part in enumerate(np.array_split(ids, 3)):
        rows[rows["object_id"].isin(part)].to_parquet(parts / f"part-{k}.parquet", index=False)
    assert embed(run_dir, parts, tmp_path / "e.csv") == 0
    streamed = pd.read_csv(tmp_path / "e.csv").set_index("object_id")
    expected = PaletteRun.load(run_dir).embed(rows, progress=False)
    assert streamed.index.tolist() == ids.tolist()
    np.testing.assert_allclose(streamed.loc[expected.index], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "lines,message",
    [
        (
            ["1,1,2,3,a", "1,1,2,3,b", "1,1,2,3,c", "1,1,2,3,a"],
            "line 5, column 'object_id': object 'a' appears again after other objects' rows",
        ),
        (
            ["1,1,2,3,a", "1,1,2,3,b", "1,1,2,3,c", "1,1,2,x,d"],
            "line 5, column 'color_b': expected a number, got 'x'",
        ),
    ],
    ids=["rows-apart", "bad-cell"],
)
def test_a_refusal_in_a_later_chunk_writes_nothing(
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lines: list[str],
    message: str,
) -> None:
    data = write(tmp_path / "bad.csv", "ratio,color_r,color_g,color_b,object_id\n")
    data.write_text(data.read_text() + "\n".join(lines) + "\n")
    out = tmp_path / "out.parquet"
    argv = ["embed", str(run_dir), str(data), "--out", str(out), "--chunk-rows", "1"]
    assert main([*argv, "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert f"{data}, {message}" in error and len(error.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [data]
