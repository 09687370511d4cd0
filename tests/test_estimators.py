import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedforge import PaletteEmbedder
from embedforge.cli import main
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.errors import UserError

SMALL = {"dim": 8, "epochs": 2, "batch_size": 64, "seed": 4, "progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return synthetic_palettes(150, seed=9).rows


@pytest.fixture(scope="module")
def fitted(rows: pd.DataFrame) -> PaletteEmbedder:
    return PaletteEmbedder(**SMALL).fit(rows)


def as_color_layout(rows: pd.DataFrame) -> pd.DataFrame:
    """The same palettes in the color.csv layout (percentage, hex)."""
    channels = rows[["color_r", "color_g", "color_b"]].to_numpy()
    hexes = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in channels]
    return pd.DataFrame(
        {"object_id": rows["object_id"], "percentage": rows["ratio"] * 100, "hex": hexes}
    )


def test_transform_is_indexed_by_sorted_object_id(
    fitted: PaletteEmbedder, rows: pd.DataFrame
) -> None:
    frame = fitted.transform(rows)
    assert frame.index.name == "object_id" and frame.index.is_monotonic_increasing
    assert list(frame.index) == sorted(rows["object_id"].unique())
    assert list(frame.columns) == [f"emb_{i}" for i in range(8)]
    assert fitted.run_dir_.is_dir() and len(fitted.history_) == 2 and fitted.n_objects_ == 150


def test_either_layout_gives_the_same_vectors(fitted: PaletteEmbedder, rows: pd.DataFrame) -> None:
    np.testing.assert_allclose(
        fitted.transform(rows), fitted.transform(as_color_layout(rows)), atol=1e-5, rtol=0
    )


def test_seeded_fit_is_reproducible_and_fits_from_a_path(
    fitted: PaletteEmbedder, rows: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "palette.csv"
    rows.to_csv(path, index=False)
    again = PaletteEmbedder(**SMALL).fit_transform(path)
    pd.testing.assert_frame_equal(again, fitted.transform(rows))


def test_save_load_and_the_embed_command_give_identical_vectors(
    fitted: PaletteEmbedder, rows: pd.DataFrame, tmp_path: Path
) -> None:
    saved = fitted.save(tmp_path / "model")
    loaded = PaletteEmbedder.load(saved)
    expected = fitted.transform(rows)
    pd.testing.assert_frame_equal(loaded.transform(rows), expected)
    assert loaded.get_params()["dim"] == 8 and loaded.history_ == fitted.history_

    data, out = tmp_path / "palette.csv", tmp_path / "emb.parquet"
    rows.to_csv(data, index=False)
    assert main(["embed", str(saved), str(data), "--out", str(out), "--device", "cpu"]) == 0
    written = pd.read_parquet(out).set_index("object_id")
    pd.testing.assert_frame_equal(written, expected)


def test_bad_input_and_unfitted_use_are_user_errors(rows: pd.DataFrame) -> None:
    with pytest.raises(UserError, match="not fitted"):
        PaletteEmbedder().transform(rows)
    with pytest.raises(UserError, match="column 'ratio'"):
        PaletteEmbedder(**SMALL).fit(rows.assign(ratio=-1.0))
    with pytest.raises(UserError, match="encoder"):
        PaletteEmbedder(**{**SMALL, "encoder": "nope"}).fit(rows)


def test_init_only_stores_arguments() -> None:
    model = PaletteEmbedder(encoder="deep_sets", lr=0.01)
    assert model.get_params()["encoder"] == "deep_sets" and not hasattr(model, "run_")
    assert model.set_params(dim=16).dim == 16


def test_a_generic_table_is_read_by_the_columns_it_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "artwork": np.repeat([f"a{i}" for i in range(30)], 3),
            "share": rng.uniform(0.1, 1.0, 90),
            "f1": rng.normal(size=90),
            "f2": rng.normal(size=90),
        }
    )
    columns = {"id_column": "artwork", "weight_column": "share", "feature_columns": ["f1", "f2"]}
    model = PaletteEmbedder(
        encoder="deep_sets", dim=4, epochs=1, batch_size=8, progress=False, **columns
    ).fit(table)
    features = model.transform(table)
    assert features.index.name == "artwork" and features.shape == (30, 4)
    loaded = PaletteEmbedder.load(model.save(tmp_path / "run"))
    assert {name: loaded.get_params()[name] for name in columns} == columns
    pd.testing.assert_frame_equal(loaded.transform(table), features)


def test_a_saved_run_evaluates_from_anywhere_once_its_process_is_gone(
    rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run keeps its table; its metrics are the same every time and its validation loss is
    the one training logged for the best epoch (the projection head is reloaded, eval mode)."""
    from embedforge.evaluate.evaluate_run import evaluate_run
    from embedforge.evaluate.projection import Projection

    model = PaletteEmbedder(**SMALL, run_dir=tmp_path / "fitted").fit(rows)
    saved = model.save(tmp_path / "saved")
    logged = model.history_[model.best_epoch_]["validation_loss"]
    del model
    shutil.rmtree(tmp_path / "fitted")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # the report's UMAP map (10-40 s compiling numba on a first call) is tested in
    # tests/evaluate; a stand-in keeps this file fast
    monkeypatch.setattr(
        "embedforge.evaluate.report.umap_2d",
        lambda x, seed: Projection(x[:, :2].numpy(), np.arange(len(x))),
    )
    first, second = evaluate_run(saved), evaluate_run(saved)
    assert first == second
    assert first["view_matching"]["validation_loss"] == pytest.approx(logged, rel=1e-6)
    assert main(["report", str(saved)]) == 0


def test_fit_into_a_run_folder_of_ours_needs_overwrite(rows: pd.DataFrame, tmp_path: Path) -> None:
    PaletteEmbedder(**{**SMALL, "epochs": 1}, run_dir=tmp_path / "run").fit(rows)
    with pytest.raises(UserError, match="already holds an embedforge run"):
        PaletteEmbedder(**{**SMALL, "epochs": 1}, run_dir=tmp_path / "run").fit(rows)
    refit = PaletteEmbedder(**{**SMALL, "epochs": 1}, run_dir=tmp_path / "run", overwrite=True)
    assert refit.fit(rows).n_objects_ == 150
