"""Embed data with a trained run: one row per object or image, written to Parquet or CSV.

A run folder holds ``recipe.yaml`` and ``checkpoints/best.safetensors``; the model is
rebuilt from the recipe and its weights read with
:func:`~embedforge.files.state.load_state` (safetensors: nothing is unpickled). The
table is read with the recipe's own settings (colour space, columns), so it is encoded the
way the model was trained. Embedding is deterministic: eval mode, no random view, objects
sorted by id, and set encoders that ignore row order, so shuffling the table's rows gives
the same vectors (up to float rounding). The output is written atomically (a temporary
file renamed over the target), so a failure leaves no file behind.
"""

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
from torch import nn

from embedforge.build import build_palettes, build_set_encoder
from embedforge.data.palettes import PALETTE_COLUMNS
from embedforge.data.source import SetDataConfig
from embedforge.devices import DeviceChoice, resolve_device
from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write
from embedforge.files.output_file import check_output_file
from embedforge.files.run_folder import load_best, load_run_recipe, save_best_model
from embedforge.image_run import ImageRun
from embedforge.inference import embed_sets
from embedforge.onnx_encoder import load_run_onnx
from embedforge.recipe import Recipe
from embedforge.run_items import RunEmbeddings, load_run_embeddings

OUTPUT_FORMATS = (".parquet", ".csv")
Backend = Literal["torch", "onnx"]


def set_features(data: SetDataConfig) -> int:
    """Features per row of the recipe's sets: the weight, then the colour or feature columns."""
    return 1 + (len(data.feature_columns) if data.feature_columns else 3)


@dataclass
class PaletteRun:
    """A trained palette model with the recipe that built it.

    >>> from embedforge.recipe import parse_recipe
    >>> recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": {"name": "deep_sets"}})
    >>> run = PaletteRun.from_recipe(recipe)
    >>> frame = run.embed(pd.DataFrame({"object_id": [3, 3], "percentage": [60, 40],
    ...                                  "hex": ["#ff0000", "#0000ff"]}), progress=False)
    >>> frame.shape, frame.index.name, list(frame.columns[:2])
    ((1, 64), 'object_id', ['emb_0', 'emb_1'])
    """

    recipe: Recipe
    model: nn.Module

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> "PaletteRun":
        """An untrained model as the recipe describes it (weights as initialised)."""
        data = recipe.data
        if not isinstance(data, SetDataConfig):
            raise UserError(f"the recipe's data.source is {data.source!r}; expected 'palettes'")
        return cls(recipe, build_set_encoder(recipe.encoder, in_features=set_features(data)))

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> "PaletteRun":
        """Read ``recipe.yaml`` and the best weights of a run folder."""
        run = cls.from_recipe(load_run_recipe(run_dir))
        load_best(run_dir, run.model)
        return run

    def save(self, run_dir: str | os.PathLike[str]) -> None:
        """Write a run folder (recipe + weights) that :meth:`load` and ``embedforge embed`` read."""
        save_best_model(run_dir, self.recipe.to_yaml(), self.model)

    def embed(
        self,
        source: str | os.PathLike[str] | pd.DataFrame,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 1024,
        progress: bool = True,
    ) -> pd.DataFrame:
        """One row per object (index: the id column, sorted), columns ``emb_0 … emb_{d-1}``."""
        data = self.recipe.data
        palettes = build_palettes(data, source)
        device = torch.device(device)
        vectors = embed_sets(
            self.model.to(device), palettes.sets, device, batch=batch_size, progress=progress
        )
        columns = [f"emb_{i}" for i in range(vectors.shape[1])]
        index = pd.Index(palettes.ids, name=data.id_column or PALETTE_COLUMNS[-1])
        return pd.DataFrame(vectors.numpy(), index=index, columns=columns)


Run = PaletteRun | ImageRun


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """The run in ``run_dir``, as the model for its kind of data: palettes or image files."""
    if isinstance(load_run_recipe(run_dir).data, SetDataConfig):
        return PaletteRun.load(run_dir)
    return ImageRun.load(run_dir)


def check_output_path(out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """The output path, if its extension names a format we write and it may be written
    (checked before any work): an existing file is replaced only with ``overwrite``."""
    return check_output_file(out, suffixes=OUTPUT_FORMATS, overwrite=overwrite)


def write_embeddings(
    frame: pd.DataFrame, out: str | os.PathLike[str], *, overwrite: bool = False
) -> None:
    """Write ``frame`` with its index as the first column, as Parquet or CSV by extension."""
    out = check_output_path(out, overwrite=overwrite)
    table = frame.reset_index()
    if out.suffix.lower() == ".parquet":
        atomic_write(out, lambda tmp: table.to_parquet(tmp, index=False, engine="pyarrow"))
    else:
        atomic_write(out, lambda tmp: table.to_csv(tmp, index=False))


def own_items_frame(run: RunEmbeddings) -> pd.DataFrame:
    """A run's training and held-out items, one row each (index ``id``): ``split``, ``label``
    when the items have one, then ``emb_0 … emb_{d-1}``."""
    parts = []
    for split, ids, vectors, labels in [
        ("train", run.reference_ids, run.reference, run.reference_labels),
        ("test", run.query_ids, run.query, run.query_labels),
    ]:
        columns = {f"emb_{i}": vectors[:, i].numpy() for i in range(vectors.shape[1])}
        label = {} if labels is None else {"label": labels.numpy()}
        index = pd.Index(ids, name="id")
        parts.append(pd.DataFrame({"split": split, **label, **columns}, index=index))
    return pd.concat(parts)


def embed_file(
    run_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    device: DeviceChoice = "auto",
    backend: Backend = "torch",
    progress: bool = True,
    overwrite: bool = False,
    allow_changed_data: bool = False,
) -> pd.DataFrame:
    """The ``embedforge embed`` command: load the run, embed ``data``, write ``out``.

    ``data``: a palette table for a palette run; a folder of images or an ``image`` CSV for
    a run trained on an image folder. Without ``data``, the run's own items (its training
    and held-out split) are embedded: the way to export a digits or dSprites run.

    ``backend="onnx"`` runs the run's exported ``model.onnx`` (``embedforge export``) with
    onnxruntime on the CPU instead of the PyTorch model, on the same batches: the same
    embeddings within 1e-5, and how to check an exported model before deploying it.
    """
    check_output_path(out, overwrite=overwrite)
    if backend == "onnx" and data is None:
        raise UserError(
            "--backend onnx embeds DATA (a palette table or image files); a run's own items "
            "are embedded with --backend torch"
        )
    if backend == "onnx" and device == "cuda":
        raise UserError("--backend onnx runs on the CPU (onnxruntime's CPU provider): --device cpu")
    if data is None:
        frame = own_items_frame(load_run_embeddings(run_dir, allow_changed_data=allow_changed_data))
    else:
        run = load_run(run_dir)
        if backend == "onnx":
            run, device = replace(run, model=load_run_onnx(run_dir)), torch.device("cpu")
        else:
            device = resolve_device(device, "--device")
        frame = run.embed(data, device=device, progress=progress)
    write_embeddings(frame, out, overwrite=overwrite)
    width = sum(column.startswith("emb_") for column in frame.columns)
    print(f"embedded {len(frame)} items into {width} dimensions: {out}")
    return frame
