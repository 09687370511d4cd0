import functools
import re
import shutil
import unittest
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from embedforge import PaletteEmbedder
from embedforge.cli import main
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.errors import UserError

SMALL = {"dim": 8, "epochs": 2, "batch_size": 64, "random_state": 4, "device": "cpu"}
TINY = {"epochs": 1, "dim": 4, "batch_size": 16, "device": "cpu"}


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
    model = PaletteEmbedder(**SMALL)
    pd.testing.assert_frame_equal(model.fit_transform(path), fitted.transform(rows))
    assert model.n_features_in_ == 5 and list(model.feature_names_in_) == list(rows.columns)


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
    assert written.index.tolist() == rows["object_id"].unique().tolist()  # as they first appear
    pd.testing.assert_frame_equal(written.loc[expected.index], expected)


def test_bad_input_and_unfitted_use_are_user_errors(rows: pd.DataFrame) -> None:
    for unfitted in (
        lambda: PaletteEmbedder().transform(rows),
        lambda: PaletteEmbedder().get_feature_names_out(),
    ):
        with pytest.raises(UserError, match="not fitted") as info:
            unfitted()
        assert isinstance(info.value, NotFittedError)  # what scikit-learn's callers catch
    with pytest.raises(UserError, match="random_state must be an int, None or a numpy"):
        PaletteEmbedder(**SMALL).set_params(random_state="7").fit(rows)
    with pytest.raises(TypeError, match=r"reads a table of palette rows.*got ndarray"):
        PaletteEmbedder(**SMALL).fit(rows.to_numpy())
    with pytest.raises(UserError, match="column 'ratio'"):
        PaletteEmbedder(**SMALL).fit(rows.assign(ratio=-1.0))
    with pytest.raises(UserError, match="encoder"):
        PaletteEmbedder(**{**SMALL, "encoder": "nope"}).fit(rows)


def test_init_only_stores_arguments_and_clones_like_any_estimator() -> None:
    model = PaletteEmbedder(encoder="deep_sets", lr=0.01, random_state=None)
    assert model.get_params()["encoder"] == "deep_sets" and not hasattr(model, "run_")
    assert model.set_params(dim=16).dim == 16
    assert repr(model) == "PaletteEmbedder(dim=16, encoder='deep_sets', lr=0.01, random_state=None)"
    assert clone(model).get_params() == model.get_params()
    assert PaletteEmbedder().get_params()["progress"] is False  # quiet inside pipelines
    with pytest.raises(ValueError, match="Invalid parameter 'seed'"):
        model.set_params(seed=1)  # one seed argument: random_state


def test_a_generic_table_is_read_by_the_columns_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    model = PaletteEmbedder(encoder="deep_sets", dim=4, epochs=1, batch_size=8, **columns)
    features = model.fit(table).transform(table)
    assert capsys.readouterr() == ("", "")  # no bars, no summary: progress is off by default
    assert features.index.name == "artwork" and features.shape == (30, 4)
    assert model.n_features_in_ == 4
    assert list(model.feature_names_in_) == ["artwork", "share", "f1", "f2"]
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


def test_load_restores_every_argument_so_a_clone_refits_the_same_model(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    """random_state=None draws a seed at fit, kept in seed_ and the recipe: the saved run
    names it, so a clone of the loaded estimator trains the same model again."""
    arguments = {**SMALL, "epochs": 1, "random_state": None, "temperature": 0.2, "lr": 3e-3}
    model = PaletteEmbedder(**arguments).fit(rows)
    assert isinstance(model.seed_, int)
    assert model.run_.recipe.train.seed == model.run_.recipe.data.seed == model.seed_
    loaded = PaletteEmbedder.load(model.save(tmp_path / "saved"))
    assert loaded.get_params() == {**model.get_params(), "random_state": model.seed_}
    assert loaded.seed_ == model.seed_ and loaded.run_dir_ == tmp_path / "saved"
    again = clone(loaded).fit(rows)
    assert again.run_dir_ != loaded.run_dir_  # a refit never writes over the loaded run
    pd.testing.assert_frame_equal(again.transform(rows), model.transform(rows))


def test_a_numpy_random_state_gives_the_seed_it_draws(rows: pd.DataFrame) -> None:
    model = PaletteEmbedder(**{**TINY, "random_state": np.random.RandomState(3)})
    model.fit(rows.head(200))
    assert model.seed_ == np.random.RandomState(3).randint(2**31 - 1)
    assert model.run_.recipe.train.seed == model.seed_


def test_load_warns_when_the_arguments_cannot_express_the_runs_recipe(run_dir: Path) -> None:
    """A run `embedforge train` wrote from its own recipe embeds, but a refit would differ."""
    with pytest.warns(UserWarning, match="cannot express this run's recipe.*validation_objects"):
        loaded = PaletteEmbedder.load(run_dir)
    assert loaded.get_params()["epochs"] == 1 and loaded.get_params()["run_dir"] is None


def test_output_containers_follow_set_output(fitted: PaletteEmbedder, rows: pd.DataFrame) -> None:
    """Unset or "pandas": the DataFrame indexed by object id; "default": scikit-learn's
    default container, a float32 array in sorted-id order."""
    frame = fitted.transform(rows)
    names = [f"emb_{i}" for i in range(8)]
    assert list(fitted.get_feature_names_out()) == names
    assert list(fitted.get_feature_names_out(list(rows.columns))) == names
    with pytest.raises(ValueError, match="input_features should be the columns fit saw"):
        fitted.get_feature_names_out(["a", "b"])
    arrays = clone(fitted).set_output(transform="default")
    assert clone(arrays)._sklearn_output_config == {"transform": "default"}  # clone keeps it
    arrays.run_ = fitted.run_  # the fitted model, without fitting again
    array = arrays.transform(rows)
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    np.testing.assert_array_equal(array, frame.to_numpy())
    arrays.set_output(transform="pandas")
    pd.testing.assert_frame_equal(arrays.transform(rows), frame)
    with sklearn.config_context(transform_output="pandas"):
        pd.testing.assert_frame_equal(fitted.transform(rows), frame)


def test_in_a_pipeline_the_next_steps_see_one_row_per_object(
    fitted: PaletteEmbedder, rows: pd.DataFrame
) -> None:
    """fit_transform through a scaler (pandas output keeps the ids), and a regressor whose
    y has one value per object, in sorted-id order."""
    pipeline = make_pipeline(PaletteEmbedder(**SMALL), StandardScaler())
    scaled = pipeline.set_output(transform="pandas").fit_transform(rows)
    embedded = fitted.transform(rows)
    pd.testing.assert_index_equal(scaled.index, embedded.index)
    assert list(scaled.columns) == list(pipeline.get_feature_names_out())
    expected = StandardScaler().fit_transform(embedded)
    np.testing.assert_allclose(scaled.to_numpy(), expected, rtol=0, atol=1e-5)

    likes = synthetic_palettes(150, seed=9).likes.sort_index()  # one value per object
    regression = make_pipeline(PaletteEmbedder(**TINY), StandardScaler(), Ridge())
    assert regression.fit(rows, likes.to_numpy()).predict(rows).shape == (150,)


# scikit-learn's estimator checks that cannot apply: each feeds a random numeric array
# (n, f) -- or a 1-d one, or a sparse one -- and expects n rows back, where PaletteEmbedder
# maps a table of palette rows to one row per object. The test below requires each of them
# to fail because fit refused the array, and every other check to pass. In brackets: what
# stands for them on palette tables.
ARRAYS = "fits on a random numeric array (n, f), expecting n rows back"
DO_NOT_APPLY = {
    "check_estimators_dtypes": f"{ARRAYS}, in float32/int32/int64",
    "check_complex_data": f"{ARRAYS} of complex numbers",
    "check_dtype_object": f"{ARRAYS} of dtype object",
    "check_estimators_empty_data_messages": "an empty array (an empty table: 'no rows')",
    "check_pipeline_consistency": f"{ARRAYS} (the pipeline test above)",
    "check_estimators_nan_inf": "an array with NaN and inf (a table's NaN is named by cell)",
    "check_estimators_pickle": f"{ARRAYS} (runs are saved as folders: save / load)",
    "check_f_contiguous_array_estimator": "a Fortran-ordered array",
    "check_estimators_overwrite_params": ARRAYS,
    "check_dont_overwrite_parameters": ARRAYS,
    "check_estimators_fit_returns_self": ARRAYS,
    "check_readonly_memmap_input": "a read-only memory-mapped array",
    "check_n_features_in_after_fitting": f"{ARRAYS} (n_features_in_: the table's columns)",
    "check_positive_only_tag_during_fit": "the iris array, centred",
    "check_fit_score_takes_y": ARRAYS,
    "check_transformer_data_not_an_array": "an array-like wrapper of a numeric array",
    "check_transformer_general": ARRAYS,
    "check_methods_sample_order_invariance": f"{ARRAYS} (row order: test_embed.py)",
    "check_methods_subset_invariance": ARRAYS,
    "check_fit2d_1sample": "a (1, f) array",
    "check_fit2d_1feature": "an (n, 1) array",
    "check_dict_unchanged": ARRAYS,
    "check_fit_idempotent": f"{ARRAYS} (a seeded refit: the reproducibility test above)",
    "check_fit_check_is_fitted": ARRAYS,
    "check_n_features_in": ARRAYS,
    "check_fit1d": "a 1-d array",
    "check_fit2d_predict1d": f"{ARRAYS}, then a 1-d one",
    "check_array_api_input": "array-API arrays (skipped unless SCIPY_ARRAY_API is set)",
}


def _check_name(check: Callable) -> str:
    while isinstance(check, functools.partial):
        check = check.func
    return check.__name__


def _refused_the_array(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, TypeError) and "reads a table of palette rows" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


@parametrize_with_checks([PaletteEmbedder(**TINY)])
def test_scikit_learn_estimator_checks(estimator: PaletteEmbedder, check: Callable) -> None:
    if _check_name(check) not in DO_NOT_APPLY:
        check(estimator)
        return
    try:
        check(estimator)
    except unittest.SkipTest:
        raise
    except Exception as error:  # the check's own error: it must come from refusing an array
        assert _refused_the_array(error), f"failed for another reason: {error!r}"
    else:
        pytest.fail(f"{_check_name(check)} passes: take it off DO_NOT_APPLY")


def test_the_class_docstring_lists_the_checks_that_do_not_apply() -> None:
    assert set(re.findall(r"\bcheck_\w+", PaletteEmbedder.__doc__ or "")) == set(DO_NOT_APPLY)


def test_the_encoder_names_it_accepts_are_the_set_encoder_registry(rows: pd.DataFrame) -> None:
    from embedforge.registry import SET_ENCODERS

    with pytest.raises(UserError, match="encoder 'small_cnn' is not a set encoder") as error:
        PaletteEmbedder(encoder="small_cnn", epochs=1).fit(rows)
    assert all(name in str(error.value) for name in SET_ENCODERS.names())
    for name in SET_ENCODERS.names():
        assert PaletteEmbedder(encoder=name)._recipe(seed=0).encoder.name == name


def test_a_method_trains_saves_and_loads_back_as_the_same_estimator(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    """``method=`` trains that method in place of NT-Xent; ``load`` gives it back, without the
    warning of a recipe the arguments cannot express."""
    model = PaletteEmbedder(**SMALL, encoder="deep_sets", method="byol").fit(rows)
    assert model.run_.recipe.method.name == "byol" and model.run_.recipe.projection is None
    saved = model.save(tmp_path / "byol")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = PaletteEmbedder.load(saved)
    assert loaded.get_params()["method"] == "byol"
    pd.testing.assert_frame_equal(loaded.transform(rows), model.transform(rows))
    with pytest.raises(UserError, match="method 'byl' is not a registered method"):
        PaletteEmbedder(**SMALL, method="byl").fit(rows)


def test_the_emd_objective_trains_saves_and_loads_back(rows: pd.DataFrame, tmp_path: Path) -> None:
    """``objective="emd"`` trains EMD distillation, keeps the epoch with the best EMD recall,
    and ``load`` gives the objective back without a warning."""
    pytest.importorskip("ot")
    model = PaletteEmbedder(**SMALL, encoder="deep_sets", objective="emd").fit(rows)
    recipe = model.run_.recipe
    assert recipe.loss.name == "emd_distillation" and recipe.projection is None
    assert recipe.train.best_metric == "emd_recall_at_10"
    assert all("emd_recall_at_10" in epoch for epoch in model.history_)
    saved = model.save(tmp_path / "emd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = PaletteEmbedder.load(saved)
    assert loaded.get_params()["objective"] == "emd"
    pd.testing.assert_frame_equal(loaded.transform(rows), model.transform(rows))
    with pytest.raises(UserError, match="objective 'emd' trains its own loss"):
        PaletteEmbedder(**SMALL, objective="emd", method="byol").fit(rows)
    with pytest.raises(UserError, match="objective 'emdd' is not one of"):
        PaletteEmbedder(**SMALL, objective="emdd").fit(rows)
