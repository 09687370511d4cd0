import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.conftest import ENCODERS

from embedforge.build import build_data, build_model
from embedforge.cli import main
from embedforge.embed import PaletteRun
from embedforge.files.run_folder import save_best_model
from embedforge.onnx_encoder import OnnxEncoder
from embedforge.onnx_export import TOLERANCE
from embedforge.recipe import parse_recipe

pytest.importorskip("onnxruntime")


def palette_run(encoder: str, folder: Path) -> Path:
    """A run folder of a freshly built (untrained) palette model."""
    torch.manual_seed(0)
    recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": ENCODERS[encoder]})
    PaletteRun.from_recipe(recipe).save(folder)
    return folder


def embed(run_dir: Path, data: Path, out: Path, *options: str) -> pd.DataFrame:
    assert main(["embed", str(run_dir), str(data), "--out", str(out), *options]) == 0
    return pd.read_parquet(out)


def assert_same_embeddings(torch_frame: pd.DataFrame, onnx_frame: pd.DataFrame) -> None:
    assert torch_frame.iloc[:, 0].equals(onnx_frame.iloc[:, 0])  # the same ids, in order
    difference = np.abs(torch_frame.iloc[:, 1:].to_numpy() - onnx_frame.iloc[:, 1:].to_numpy())
    assert difference.max() <= TOLERANCE


@pytest.fixture
def one_row_palettes(palette_csv: Path, tmp_path: Path) -> Path:
    """The test palettes plus an object of one colour (the smallest set)."""
    rows = pd.read_csv(palette_csv)
    single = rows.iloc[:1].assign(object_id="one colour", ratio=1.0)
    path = tmp_path / "palettes.csv"
    pd.concat([rows, single]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("encoder", ["deep_sets", "set_transformer"])
def test_embed_with_the_onnx_backend_gives_the_torch_embeddings(
    encoder: str, one_row_palettes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = palette_run(encoder, tmp_path / "run")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert (
        f"{run / 'model.onnx'}: onnxruntime gives PyTorch's embeddings" in capsys.readouterr().out
    )
    with_torch = embed(run, one_row_palettes, tmp_path / "torch.parquet")
    with_onnx = embed(run, one_row_palettes, tmp_path / "onnx.parquet", "--backend", "onnx")
    assert_same_embeddings(with_torch, with_onnx)


def test_a_trained_run_exports_to_out(run_dir: Path, palette_csv: Path, tmp_path: Path) -> None:
    run = shutil.copytree(run_dir, tmp_path / "run")
    out = tmp_path / "deploy" / "palettes.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert out.is_file() and not (run / "model.onnx").exists()
    assert [p.name for p in out.parent.iterdir()] == ["palettes.onnx"]  # no temporary left
    sets = PaletteRun.load(run)
    frame = sets.embed(palette_csv, progress=False)
    sets.model = OnnxEncoder(out)
    np.testing.assert_allclose(sets.embed(palette_csv, progress=False), frame, atol=TOLERANCE)


def test_a_digits_run_exports_its_image_model(tmp_path: Path) -> None:
    recipe = parse_recipe({"embedder": {"dim": 8}})
    model = build_model(recipe, image_size=8, in_channels=1).eval()
    save_best_model(tmp_path / "run", recipe.to_yaml(), model)
    assert main(["export", str(tmp_path / "run")]) == 0
    images = build_data(recipe.data).test_images[:50]  # (50, 1, 8, 8)
    with torch.no_grad():
        expected = model(images)
    found = OnnxEncoder(tmp_path / "run" / "model.onnx")(images)
    torch.testing.assert_close(found, expected, atol=TOLERANCE, rtol=0)


def test_an_image_folder_run_embeds_with_the_onnx_backend(
    reid_run: Path, reid_folder: Path, tmp_path: Path
) -> None:
    run = shutil.copytree(reid_run, tmp_path / "run")
    assert main(["export", str(run)]) == 0
    images = reid_folder / "images"
    with_torch = embed(run, images, tmp_path / "torch.parquet")
    assert_same_embeddings(
        with_torch, embed(run, images, tmp_path / "onnx.parquet", "--backend", "onnx")
    )


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error
    return error


def test_bad_exports_are_one_line_errors_that_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = palette_run("deep_sets", tmp_path / "run")
    before = sorted(path.name for path in run.iterdir())
    assert main(["export", str(run), "--format", "tflite"]) == 2
    assert "--format 'tflite': unknown export format; expected one of onnx" in one_line_error(
        capsys
    )
    assert main(["export", str(run), "--out", str(tmp_path / "model.pt")]) == 2
    assert "unknown output extension '.pt'" in one_line_error(capsys)
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert "not a run folder" in one_line_error(capsys)
    raster = palette_run("raster_cnn", tmp_path / "raster")
    assert main(["export", str(raster)]) == 2
    assert "(raster_cnn): RasterCNN cannot be exported to ONNX" in one_line_error(capsys)
    assert sorted(path.name for path in run.iterdir()) == before
    assert not (raster / "model.onnx").exists()


def test_an_existing_model_is_replaced_only_with_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = palette_run("deep_sets", tmp_path / "run")
    assert main(["export", str(run)]) == 0
    written = (run / "model.onnx").read_bytes()
    assert main(["export", str(run)]) == 2
    assert "model.onnx: exists; pass --overwrite to replace it" in one_line_error(capsys)
    assert (run / "model.onnx").read_bytes() == written
    assert main(["export", str(run), "--overwrite"]) == 0


def test_the_onnx_backend_refuses_a_missing_or_stale_model(
    one_row_palettes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = palette_run("deep_sets", tmp_path / "run")
    out = tmp_path / "out.parquet"
    command = ["embed", str(run), str(one_row_palettes), "--out", str(out), "--backend", "onnx"]
    assert main(command) == 2
    assert f"missing; --backend onnx runs the run's exported model: embedforge export {run}" in (
        one_line_error(capsys)
    )
    assert main(["export", str(run)]) == 0
    torch.manual_seed(1)  # trained further: a new best checkpoint
    recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": ENCODERS["deep_sets"]})
    PaletteRun.from_recipe(recipe).save(run)
    capsys.readouterr()
    assert main(command) == 2
    assert "exported from another checkpoint" in one_line_error(capsys)
    assert main(["embed", str(run), "--out", str(out), "--backend", "onnx"]) == 2
    assert "--backend onnx embeds DATA" in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "package,command",
    [("onnx", ["export"]), ("onnxruntime", ["embed", "DATA", "--out", "OUT", "--backend", "onnx"])],
)
def test_a_missing_package_names_the_onnx_extra(
    package: str,
    command: list[str],
    one_row_palettes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = palette_run("deep_sets", tmp_path / "run")
    if package == "onnxruntime":
        assert main(["export", str(run)]) == 0
    monkeypatch.setitem(sys.modules, package, None)  # import raises ModuleNotFoundError
    places = {"DATA": str(one_row_palettes), "OUT": str(tmp_path / "out.parquet")}
    arguments = [command[0], str(run), *(places.get(word, word) for word in command[1:])]
    assert main(arguments) == 2
    error = one_line_error(capsys)
    assert f"with {package}, which is not installed: pip install embedforge[onnx]" in error
    assert not (tmp_path / "out.parquet").exists()
