"""scikit-learn estimators: fit on a table of rows, transform into one embedding row per object.

:class:`PaletteEmbedder` builds a palette recipe in code and trains it with the one trainer
(:func:`embedforge.train.trainer.train`), so it behaves exactly like ``embedforge train``:
same run folder, same checkpoints, same reproducibility. It is a scikit-learn transformer
(``BaseEstimator`` + ``TransformerMixin``): ``__init__`` only stores its arguments, ``fit``
does the work and returns ``self``, what it learned ends in ``_``, and ``clone``, the repr,
``get_params`` / ``set_params`` and ``set_output`` are scikit-learn's own.
"""

import numbers
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from embedforge.devices import DeviceChoice, resolve_device
from embedforge.errors import UserError

if TYPE_CHECKING:  # the package import stays light: torch loads on fit
    from embedforge.recipe import Recipe

PaletteSource = str | os.PathLike[str] | pd.DataFrame

_SEED_BOUND = 2**31 - 1
"""A seed drawn for ``random_state=None`` lies in [0, 2**31 - 1) (any int is a valid seed)."""

_WHERE_THE_DATA_COMES_FROM = ("data.path", "data.size")
"""Recipe keys ``fit`` takes from its ``X`` rather than from the estimator's arguments."""


EMD_VALIDATIONS = 10
"""How many times a run of ``objective="emd"`` validates (every ``epochs // 10`` epochs)."""


class PaletteEmbedderNotFittedError(UserError, NotFittedError):
    """``transform`` (or ``save``, ``get_feature_names_out``) before ``fit`` or ``load``:
    scikit-learn's ``NotFittedError`` and our ``UserError`` (both ``ValueError``\\ s).

    >>> issubclass(PaletteEmbedderNotFittedError, NotFittedError)
    True
    """


class PaletteEmbedder(TransformerMixin, BaseEstimator):
    """Self-supervised embeddings of palettes (sets of weighted colours), one row per object.

    **Input.** ``X`` is a table of rows, many per object: the palette.csv layout (``ratio,
    color_r, color_g, color_b, object_id``) or the color.csv layout (``object_id, percentage,
    hex``), as a DataFrame or a CSV/Parquet path, or any table of weighted rows when
    ``id_column``, ``weight_column`` and ``feature_columns`` name its columns. ``fit`` and
    ``transform`` read the columns by name, so ``transform`` takes either competition layout
    whichever one ``fit`` saw. ``y`` is ignored (the training is self-supervised); it is
    accepted so that a :class:`~sklearn.pipeline.Pipeline` can pass one, per object, to the
    steps after this one.

    **Output.** ``transform`` returns one row per object, objects sorted by id: a DataFrame
    indexed by the id column, columns ``emb_0 … emb_{dim-1}``
    (:meth:`get_feature_names_out`), when ``set_output`` is left alone or set to
    ``"pandas"``; a float32 numpy array ``(n_objects, dim)`` in the same row order under
    ``set_output(transform="default")``, scikit-learn's default container (the ids are then
    ``np.sort`` of the table's unique ids).

    **Training.** Every object but a small held-out subset (for the validation metric), two
    random views per object and NT-Xent over the batch; the best epoch's weights are kept.
    ``projection`` (default on) puts SimCLR's projection head (``dim`` -> ``2·dim`` ->
    ``dim``) between the embedding and the loss, for training only: the exported embedding
    keeps more of the colours (hue, saturation, lightness) that the loss would otherwise
    make it invariant to (measured in ``benchmarks/results/palettes.md``). The defaults train
    the Set Transformer (hidden 64) for 10 epochs of batches of 512 on ~24,000 palettes in
    under a minute on a 2-core CPU (measured: 51 s, view matching P@1 on held-out objects
    0.958). ``encoder="deep_sets"`` is about 3x faster (15 s) but keeps less of the colours.

    Parameters:
        encoder, dim, epochs, batch_size, lr, temperature, projection, colour_space,
            id_column, weight_column, feature_columns: the recipe's ``encoder.name``,
            ``encoder.dim``, ``train.epochs``, ``train.batch_size``, ``optimizer.lr``,
            ``loss.temperature``, ``projection``, and the ``data`` section's keys;
            ``encoder`` is any registered set encoder (``embedforge list encoders``).
        method: a self-supervised method (``embedforge list methods``: ``byol``,
            ``simsiam``, ``moco``, ``barlow_twins``, ``vicreg``, ``dino``, ``simclr``) at its
            registered defaults, in place of the NT-Xent loss; ``temperature`` and
            ``projection`` then do not apply (the method holds its own loss and heads).
        objective: ``"self_supervised"`` (the default: features for models and probes) or
            ``"emd"``: embedding distances trained to approximate the exact Earth Mover's
            Distance between palettes in CIELAB (the ``emd_distillation`` loss; pairs of
            views with their exact EMD as targets; validated about 10 times a run, and the
            best validation is the one whose held-out palettes find their EMD neighbours
            best), for search by example that agrees with the eye. It learns from many
            steps: an epoch is (training palettes) / 32 steps at ``batch_size=256``, and on
            2,083 real palettes its EMD recall@10 rose from 0.58 at 830 steps to 0.69 at
            3,300 (benchmarks/palette_search.py), so give a small collection many more
            epochs than 10 (about 5,000 steps). Needs POT
            (``embedforge[emd]``) and palettes of colours; not with ``method``;
            ``temperature`` and ``projection`` do not apply.
        random_state: the seed of everything random in training (the recipe's
            ``train.seed`` and ``data.seed``: initial weights, batches, views, the held-out
            subset). An int is used as it is. ``None`` (or a ``numpy.random.RandomState``)
            draws one seed from numpy's global RandomState (or from that one) at each
            ``fit``, as scikit-learn does; the seed is kept in ``seed_`` and in the run's
            recipe, so the run stays reproducible from its folder.
        device: the recipe's ``train.device``; also where ``transform`` runs.
        progress: tqdm bars and a one-line summary of ``fit``; off by default, so the
            estimator is quiet inside pipelines and searches.
        run_dir: where the run is written (default: a temporary folder that lives as long as
            the estimator); it must be new or empty, or one of our runs with ``overwrite``.
        overwrite: let ``fit`` replace the run already in ``run_dir``.

    Attributes:
        run_: the trained model with its recipe (:class:`~embedforge.embed.PaletteRun`).
        run_dir_: the run folder ``fit`` wrote (or ``load`` read).
        seed_: the seed the run was trained with (``random_state``, or the one drawn).
        history_: one dict per epoch (loss, validation metric, seconds).
        best_epoch_: the epoch whose weights were kept.
        n_objects_: the number of objects ``fit`` saw.
        n_features_in_: the number of columns of the input table ``fit`` read (rows of
            colours, not objects: ``ratio, color_r, color_g, color_b, object_id`` is 5).
        feature_names_in_: those columns' names, when they are all strings (always, for a
            file), as scikit-learn defines it for a DataFrame.
        fit_seconds_: how long ``fit`` took.

    **Saving.** The run keeps a copy of the training table (``data/``) and its split, so
    ``save(DIR)`` writes a folder that :meth:`load`, ``embedforge embed``, ``evaluate`` and
    ``report`` read from any directory, after this process is gone. :meth:`load` restores
    every argument the run's recipe determines, ``device`` included, so
    ``clone(PaletteEmbedder.load(DIR)).fit(X)`` trains the same model as the original
    ``fit(X)`` (on the CPU, where seeded runs are reproducible). No recipe holds the other
    three: ``run_dir`` comes back as None (a refit writes a fresh temporary run, never over
    the loaded one), ``overwrite`` and ``progress`` as False.

    **scikit-learn's estimator checks** (``sklearn.utils.estimator_checks``, run in
    ``tests/test_estimators.py``). Those that apply pass: cloning, the repr, tags, no
    attributes set in ``__init__``, ``get_params`` / ``set_params``, defaults that construct,
    mixin order, errors only at ``fit``, ``NotFittedError`` before ``fit``, a clear refusal
    of sparse input. The others feed a random numeric array of shape ``(n, f)`` (or a 1-d,
    empty, complex, read-only or array-API one) and expect ``n`` rows back; they cannot apply
    to an estimator that maps a table of palette rows to one row per object, and fail where
    ``fit`` refuses the array (the tests check what they stand for on palette tables):
    check_estimators_dtypes, check_complex_data, check_dtype_object,
    check_estimators_empty_data_messages, check_pipeline_consistency,
    check_estimators_nan_inf, check_estimators_pickle, check_f_contiguous_array_estimator,
    check_estimators_overwrite_params, check_dont_overwrite_parameters,
    check_estimators_fit_returns_self, check_readonly_memmap_input,
    check_n_features_in_after_fitting, check_positive_only_tag_during_fit,
    check_fit_score_takes_y, check_transformer_data_not_an_array, check_transformer_general,
    check_methods_sample_order_invariance, check_methods_subset_invariance,
    check_fit2d_1sample, check_fit2d_1feature, check_dict_unchanged, check_fit_idempotent,
    check_fit_check_is_fitted, check_n_features_in, check_fit1d, check_fit2d_predict1d,
    check_array_api_input.

    Example (training takes a while, so it is not run here)::

        from embedforge import PaletteEmbedder
        model = PaletteEmbedder(random_state=0).fit(df)
        features = model.transform(df)  # index object_id, columns emb_0 ... emb_63

    >>> PaletteEmbedder(dim=32)
    PaletteEmbedder(dim=32)
    >>> PaletteEmbedder(dim=32).get_params()["random_state"]
    0
    """

    def __init__(
        self,
        *,
        encoder: str = "set_transformer",
        method: str | None = None,
        objective: Literal["self_supervised", "emd"] = "self_supervised",
        dim: int = 64,
        epochs: int = 10,
        batch_size: int = 512,
        lr: float = 2e-3,
        temperature: float = 0.1,
        projection: bool = True,
        colour_space: Literal["rgb", "lab"] = "rgb",
        id_column: str | None = None,
        weight_column: str | None = None,
        feature_columns: list[str] | None = None,
        random_state: int | np.random.RandomState | None = 0,
        device: DeviceChoice = "auto",
        progress: bool = False,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.encoder = encoder
        self.method = method
        self.objective = objective
        self.dim = dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.projection = projection
        self.colour_space = colour_space
        self.id_column = id_column
        self.weight_column = weight_column
        self.feature_columns = feature_columns
        self.random_state = random_state
        self.device = device
        self.progress = progress
        self.run_dir = run_dir
        self.overwrite = overwrite

    def fit(self, X: PaletteSource, y: Any = None) -> "PaletteEmbedder":
        """Train on every object of ``X`` (DataFrame or CSV/Parquet path); returns ``self``.

        ``y`` is ignored (self-supervised training).
        """
        from embedforge.data.palettes import read_palettes
        from embedforge.embed import PaletteRun
        from embedforge.train.trainer import train

        started = time.perf_counter()
        _check_table(X)
        seed = self._draw_seed()
        palettes = read_palettes(X, colour_space=self.colour_space, **self._columns())  # early
        if self.run_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="embedforge-")
            run_dir = Path(self._scratch.name) / "run"
        else:
            run_dir = Path(self.run_dir)
        result = train(
            self._recipe(seed), run_dir, overwrite=self.overwrite, progress=self.progress, table=X
        )

        self.run_dir_ = run_dir
        self.seed_ = seed
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_objects_ = len(palettes)
        self._set_features_in(palettes.columns)
        self.run_ = PaletteRun.load(run_dir)
        self.fit_seconds_ = time.perf_counter() - started
        if self.progress:
            last = result.history[-1]
            print(
                f"PaletteEmbedder: {self.encoder} on {self.n_objects_:,} objects, "
                f"{result.epochs_run} epochs in {self.fit_seconds_:.0f} s; final loss "
                f"{last['loss']:.4f}, best {self.run_.recipe.train.best_metric} "
                f"{result.best_value:.4f} "
                f"(epoch {result.best_epoch})"
            )
        return self

    def transform(self, X: PaletteSource) -> pd.DataFrame | np.ndarray:
        """One row per object of ``X``, sorted by id: a DataFrame (index: the id column,
        columns ``emb_0 … emb_{dim-1}``), or under ``set_output(transform="default")`` a
        float32 array ``(n_objects, dim)`` in the same order."""
        self._check_fitted()
        _check_table(X)
        frame = self.run_.embed(X, device=self._device(), progress=self.progress)
        return frame.to_numpy() if self._wants_arrays() else frame

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``emb_0 … emb_{dim-1}``: the output columns. They do not depend on the input's
        names; ``input_features``, when given, must be ``feature_names_in_`` (as in
        scikit-learn, for pipelines)."""
        self._check_fitted()
        known = list(getattr(self, "feature_names_in_", []))
        if input_features is not None and list(input_features) != known:
            raise ValueError(
                f"input_features should be the columns fit saw, {known}; got {list(input_features)}"
            )
        return np.asarray([f"emb_{i}" for i in range(self.run_.recipe.encoder.dim)], dtype=object)

    def set_output(self, *, transform: str | None = None) -> "PaletteEmbedder":
        """Choose ``transform``'s container: ``"pandas"`` (the DataFrame indexed by object id,
        as when this is never called), ``"default"`` (a numpy array, rows in sorted-id
        order), or None (unchanged)."""
        return super().set_output(transform=transform)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy the fitted run folder (recipe, checkpoints, history, split, the training
        table) to ``path``: it loads, embeds, evaluates and reports from there on its own.

        ``path`` must be new or empty, or one of our run folders with ``overwrite``.
        """
        from embedforge.files.atomic import staged_folder
        from embedforge.files.markers import prepare_folder
        from embedforge.files.run_folder import RUN

        self._check_fitted()
        path, source = Path(path), Path(self.run_dir_)
        if path.resolve() == source.resolve():
            return path
        prepare_folder(path, RUN, overwrite=overwrite, hint="pass overwrite=True to replace it")
        with staged_folder(path) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "PaletteEmbedder":
        """A fitted embedder from a run folder (``save``'s, or ``embedforge train``'s).

        Every argument the run's recipe determines is restored (``random_state`` as the
        seed the run used, ``device`` as its ``train.device``); ``run_dir`` is None,
        ``overwrite`` and ``progress`` False. Restored are ``run_``, ``run_dir_`` (``path``),
        ``seed_`` and ``history_``; what ``fit`` measured on its table (``n_objects_``,
        ``n_features_in_``, ``feature_names_in_``, ``best_epoch_``, ``fit_seconds_``) is not.
        A run whose recipe these arguments cannot express (one ``embedforge train`` wrote
        from another recipe) still loads and embeds with its own model, with a warning
        naming the keys: refitting would train the estimator's recipe, not the run's.
        """
        from embedforge.embed import PaletteRun
        from embedforge.files.run_folder import read_history
        from embedforge.recipe import recipe_differences

        run = PaletteRun.load(path)
        recipe = run.recipe
        estimator = cls(
            encoder=recipe.encoder.name,
            method=recipe.method.name if recipe.method is not None else None,
            objective="emd" if recipe.loss.name == "emd_distillation" else "self_supervised",
            dim=recipe.encoder.dim,
            epochs=recipe.train.epochs,
            batch_size=recipe.train.batch_size,
            lr=recipe.optimizer.lr,
            temperature=getattr(recipe.loss, "temperature", cls().temperature),
            projection=recipe.projection is not None,
            colour_space=recipe.data.colour_space,
            id_column=recipe.data.id_column,
            weight_column=recipe.data.weight_column,
            feature_columns=recipe.data.feature_columns,
            random_state=recipe.train.seed,
            device=recipe.train.device,
        )
        rebuilt = estimator._recipe(recipe.train.seed)
        differences = [
            line
            for line in recipe_differences(rebuilt, recipe)
            if line.partition(":")[0] not in _WHERE_THE_DATA_COMES_FROM
        ]
        if differences:
            warnings.warn(
                f"{path}: PaletteEmbedder's arguments cannot express this run's recipe "
                f"({'; '.join(differences)}; as the arguments give it -> as the run has it): "
                "it embeds with the run's model, but fit on it or on its clone trains the "
                "arguments' recipe",
                UserWarning,
                stacklevel=2,
            )
        estimator.run_, estimator.run_dir_ = run, Path(path)
        estimator.seed_ = recipe.train.seed
        estimator.history_ = read_history(path)
        return estimator

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # color.csv's hex column; text ids
        tags.transformer_tags.preserves_dtype = []  # float32 embeddings whatever the input
        return tags

    def _recipe(self, seed: int) -> "Recipe":
        """The recipe ``fit`` trains: these arguments over the palette defaults, with
        ``seed`` (``fit`` passes its table to the trainer, which keeps a copy in the run)."""
        from embedforge.recipe import parse_recipe
        from embedforge.registry import METHODS, SET_ENCODERS

        if self.encoder not in SET_ENCODERS:
            raise UserError(
                f"PaletteEmbedder: encoder {self.encoder!r} is not a set encoder; expected one "
                f"of {', '.join(SET_ENCODERS.names())}"
            )
        if self.method is not None and self.method not in METHODS:
            raise UserError(
                f"PaletteEmbedder: method {self.method!r} is not a registered method; expected "
                f"one of {', '.join(METHODS.names())} (or None: NT-Xent)"
            )
        if self.objective not in ("self_supervised", "emd"):
            raise UserError(
                f"PaletteEmbedder: objective {self.objective!r} is not one of "
                "'self_supervised', 'emd'"
            )
        if self.objective == "emd" and self.method is not None:
            raise UserError(
                f"PaletteEmbedder: objective 'emd' trains its own loss; it cannot be combined "
                f"with method {self.method!r} (set method=None)"
            )
        validations = {}
        if self.objective == "emd":
            objective = {"loss": {"name": "emd_distillation"}, "projection": None}
            # distillation needs many more steps than epochs of a small collection give, so
            # it validates (against exact EMD) about EMD_VALIDATIONS times, not every epoch
            validations = {"validate_every": max(1, self.epochs // EMD_VALIDATIONS)}
        elif self.method is None:
            objective = {
                "loss": {"name": "ntxent", "temperature": self.temperature},
                "projection": (
                    {"hidden_dim": 2 * self.dim, "dim": self.dim} if self.projection else None
                ),
            }
        else:  # the method's own loss and heads, at its registered defaults
            objective = {"method": {"name": self.method}}
        return parse_recipe(
            {
                "data": {
                    "source": "palettes",
                    "colour_space": self.colour_space,
                    **self._columns(),
                    "seed": seed,
                },
                "encoder": {"name": self.encoder, "dim": self.dim},
                **objective,
                "optimizer": {"name": "adamw", "lr": self.lr, "weight_decay": 1e-4},
                "schedule": {"name": "cosine", "warmup_epochs": min(1.0, self.epochs / 5)},
                "train": {
                    "epochs": self.epochs,
                    "batch_size": self.batch_size,
                    "seed": seed,
                    "device": self.device,
                    **validations,
                },
            },
            origin="PaletteEmbedder",
        )

    def _draw_seed(self) -> int:
        """``random_state`` as the run's seed: an int as it is, else one draw from it."""
        state = self.random_state
        if isinstance(state, numbers.Integral):
            return int(state)
        if state is not None and not isinstance(state, np.random.RandomState):
            raise UserError(
                "PaletteEmbedder random_state must be an int, None or a numpy RandomState; "
                f"got {state!r}"
            )
        return int(check_random_state(state).randint(_SEED_BOUND))

    def _set_features_in(self, columns: tuple[Any, ...]) -> None:
        """``n_features_in_`` and ``feature_names_in_`` as scikit-learn sets them."""
        self.n_features_in_ = len(columns)
        if columns and all(isinstance(name, str) for name in columns):
            self.feature_names_in_ = np.asarray(columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):  # a refit on a table without string names
            del self.feature_names_in_

    def _wants_arrays(self) -> bool:
        """Whether ``set_output(transform="default")`` was asked for on this estimator
        (``_sklearn_output_config`` is where scikit-learn's ``set_output`` records it, and
        what ``clone`` copies); left unset, transform keeps its ids in a DataFrame."""
        return getattr(self, "_sklearn_output_config", {}).get("transform") == "default"

    def _columns(self) -> dict[str, Any]:
        """The generic layout's column names (all None: a competition layout)."""
        return {
            "id_column": self.id_column,
            "weight_column": self.weight_column,
            "feature_columns": self.feature_columns,
        }

    def _device(self) -> str:
        return resolve_device(self.device, "PaletteEmbedder device")

    def _check_fitted(self) -> None:
        if not hasattr(self, "run_"):
            raise PaletteEmbedderNotFittedError(
                "this PaletteEmbedder is not fitted yet: call fit() or load() first"
            )


def _check_table(X: Any) -> None:
    """Refuse what is not a table of rows: a numpy array or a sparse matrix has no column
    names to tell ids, weights and colours apart."""
    if isinstance(X, pd.DataFrame | str | os.PathLike):
        return
    from scipy.sparse import issparse

    shape = getattr(X, "shape", None)
    got = f"{type(X).__name__}" + (f" of shape {shape}" if shape is not None else "")
    sparse = "sparse input is not supported; " if issparse(X) else ""
    raise TypeError(
        f"PaletteEmbedder reads a table of palette rows, many per object: {sparse}expected a "
        "DataFrame or a CSV/Parquet path (the palette.csv or color.csv layout, or the columns "
        f"id_column, weight_column and feature_columns name), got {got}"
    )


__all__ = ["PaletteEmbedder", "PaletteEmbedderNotFittedError"]
