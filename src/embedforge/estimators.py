"""scikit-learn style estimators: fit on a DataFrame, transform into embedding columns.

:class:`PaletteEmbedder` builds a palette recipe in code and trains it with the one trainer
(:func:`embedforge.train.trainer.train`), so it behaves exactly like ``embedforge train``:
same run folder, same checkpoints, same reproducibility. Following scikit-learn's habits,
``__init__`` only stores its arguments, ``fit`` does the work and returns ``self``, and what
it learned ends in ``_``.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from embedforge.devices import DeviceChoice, resolve_device
from embedforge.errors import UserError

if TYPE_CHECKING:  # the package import stays light: torch loads on fit
    from embedforge.recipe import Recipe

PaletteSource = str | os.PathLike[str] | pd.DataFrame


class PaletteEmbedder:
    """Self-supervised embeddings of palettes (sets of weighted colours), one row per object.

    ``fit`` accepts the palette.csv layout (``ratio, color_r, color_g, color_b, object_id``)
    or the color.csv layout (``object_id, percentage, hex``), as a DataFrame or a CSV/Parquet
    path, or any table of weighted rows when ``id_column``, ``weight_column`` and
    ``feature_columns`` name its columns (``transform`` then indexes by ``id_column``).
    Training uses every object but a small held-out subset (for the validation metric), two
    random views per object and NT-Xent over the batch; the best epoch's weights are kept.
    ``projection`` (default on) puts SimCLR's projection head (``dim`` -> ``2·dim`` ->
    ``dim``) between the embedding and the loss, for training only: the exported embedding
    keeps more of the colours (hue, saturation, lightness) that the loss would otherwise
    make it invariant to (measured in ``benchmarks/results/palettes.md``).

    The defaults train the Set Transformer (hidden 64) for 10 epochs of batches of 512 on
    ~24,000 palettes in under a minute on a 2-core CPU (measured: 51 s, view matching P@1
    on held-out objects 0.958). ``encoder="deep_sets"`` is about 3x faster (15 s) but keeps
    less of the colours (``benchmarks/results/palettes.md``).

    ``run_dir``: where the run is written (default: a temporary folder that lives as long as
    the estimator); it must be new or empty, or one of our runs with ``overwrite=True``. The
    run keeps a copy of the training table (``data/``) and its split, so ``save(DIR)``
    writes a folder that :meth:`load`, ``embedforge embed``, ``evaluate`` and ``report``
    read from any directory, after this process is gone.

    Example (training takes a while, so it is not run here)::

        from embedforge import PaletteEmbedder
        model = PaletteEmbedder(seed=0).fit(df)
        features = model.transform(df)  # index object_id, columns emb_0 ... emb_63

    >>> PaletteEmbedder(dim=32).get_params()["dim"]
    32
    """

    def __init__(
        self,
        encoder: Literal["set_transformer", "deep_sets", "raster_cnn"] = "set_transformer",
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
        seed: int = 0,
        device: DeviceChoice = "auto",
        progress: bool = True,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.encoder = encoder
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
        self.seed = seed
        self.device = device
        self.progress = progress
        self.run_dir = run_dir
        self.overwrite = overwrite

    _PARAMS = (
        "encoder",
        "dim",
        "epochs",
        "batch_size",
        "lr",
        "temperature",
        "projection",
        "colour_space",
        "id_column",
        "weight_column",
        "feature_columns",
        "seed",
        "device",
        "progress",
        "run_dir",
        "overwrite",
    )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> "PaletteEmbedder":
        """Change constructor arguments (scikit-learn's ``set_params``); refit to apply."""
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"unknown parameter {name!r}; expected one of {self._PARAMS}")
            setattr(self, name, value)
        return self

    def recipe(self, data_path: str | os.PathLike[str] | None = None) -> "Recipe":
        """The recipe ``fit`` trains: these arguments over the palette defaults (``fit``
        passes its table to the trainer, which keeps a copy in the run: no ``data_path``)."""
        from embedforge.recipe import parse_recipe

        return parse_recipe(
            {
                "data": {
                    "source": "palettes",
                    "path": None if data_path is None else str(data_path),
                    "colour_space": self.colour_space,
                    **self._columns(),
                    "seed": self.seed,
                },
                "encoder": {"name": self.encoder, "dim": self.dim},
                "loss": {"name": "ntxent", "temperature": self.temperature},
                "projection": (
                    {"hidden_dim": 2 * self.dim, "dim": self.dim} if self.projection else None
                ),
                "optimizer": {"name": "adamw", "lr": self.lr, "weight_decay": 1e-4},
                "schedule": {"name": "cosine", "warmup_epochs": min(1.0, self.epochs / 5)},
                "train": {
                    "epochs": self.epochs,
                    "batch_size": self.batch_size,
                    "seed": self.seed,
                    "device": self.device,
                },
            },
            origin="PaletteEmbedder",
        )

    def fit(self, X: PaletteSource, y: Any = None) -> "PaletteEmbedder":
        """Train on every object of ``X`` (DataFrame or CSV/Parquet path); returns ``self``."""
        from embedforge.data.palettes import read_palettes
        from embedforge.embed import PaletteRun
        from embedforge.train.trainer import train

        started = time.perf_counter()
        palettes = read_palettes(X, colour_space=self.colour_space, **self._columns())  # early
        if self.run_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="embedforge-")
            run_dir = Path(self._scratch.name) / "run"
        else:
            run_dir = Path(self.run_dir)
        result = train(
            self.recipe(), run_dir, overwrite=self.overwrite, progress=self.progress, table=X
        )

        self.run_dir_ = run_dir
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_objects_ = len(palettes)
        self.run_ = PaletteRun.load(run_dir)
        self.fit_seconds_ = time.perf_counter() - started
        if self.progress:
            last = result.history[-1]
            print(
                f"PaletteEmbedder: {self.encoder} on {self.n_objects_:,} objects, "
                f"{result.epochs_run} epochs in {self.fit_seconds_:.0f} s; final loss "
                f"{last['loss']:.4f}, best view_precision_at_1 {result.best_value:.4f} "
                f"(epoch {result.best_epoch})"
            )
        return self

    def transform(self, X: PaletteSource) -> pd.DataFrame:
        """Embeddings: index ``object_id`` (sorted), columns ``emb_0 … emb_{dim-1}``."""
        self._check_fitted()
        return self.run_.embed(X, device=self._device(), progress=self.progress)

    def fit_transform(self, X: PaletteSource, y: Any = None) -> pd.DataFrame:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

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
        """A fitted embedder from a run folder (``save``'s, or ``embedforge train``'s)."""
        from embedforge.embed import PaletteRun
        from embedforge.files.run_folder import read_history

        run = PaletteRun.load(path)
        recipe = run.recipe
        loss = recipe.loss
        estimator = cls(
            encoder=recipe.encoder.name,
            dim=recipe.encoder.dim,
            epochs=recipe.train.epochs,
            batch_size=recipe.train.batch_size,
            lr=recipe.optimizer.lr,
            temperature=getattr(loss, "temperature", cls().temperature),
            projection=recipe.projection is not None,
            colour_space=recipe.data.colour_space,
            id_column=recipe.data.id_column,
            weight_column=recipe.data.weight_column,
            feature_columns=recipe.data.feature_columns,
            seed=recipe.train.seed,
            device=recipe.train.device,
            run_dir=path,
        )
        estimator.run_, estimator.run_dir_ = run, Path(path)
        estimator.history_ = read_history(path)
        return estimator

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
            raise UserError("this PaletteEmbedder is not fitted yet: call fit() or load() first")


__all__ = ["PaletteEmbedder"]
