"""Embed data with a trained run: one row per object or image, written to Parquet or CSV.

A run folder holds ``recipe.yaml`` and ``checkpoints/best.safetensors``; the model is
rebuilt from the recipe and its weights read with
:func:`~embedforge.files.state.load_state` (safetensors: nothing is unpickled). The
table is read with the recipe's own settings (colour space, columns), so it is encoded the
way the model was trained. Embedding is deterministic: eval mode, no random view, and set
encoders that ignore row order, so shuffling an object's rows gives the same vector (up to
float rounding). The output is written atomically (a temporary file renamed over the
target), so a failure leaves no file behind.

Two paths, one encoding: :meth:`PaletteRun.embed` reads a whole table (a DataFrame too)
and returns its objects sorted by id; ``embedforge embed`` streams a palette table
(:func:`embed_palette_stream`): chunks read by a background thread while the model embeds
the previous one, each written as it is done, so memory follows the chunk size and the
output lists objects in the order they first appear in the table (which must hold each
object's rows together; see :mod:`embedforge.data.palette_stream`).
"""

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from embedforge.build import build_palettes, build_set_encoder
from embedforge.data.palette_source import palette_spec
from embedforge.data.palette_stream import DEFAULT_CHUNK_ROWS, stream_palettes
from embedforge.data.palettes import PALETTE_COLUMNS, Palettes
from embedforge.data.prefetch import prefetch
from embedforge.data.source import SetDataConfig
from embedforge.devices import DeviceChoice, resolve_device
from embedforge.errors import UserError
from embedforge.files.output_file import check_output_file
from embedforge.files.run_folder import load_best, load_run_recipe, save_best_model
from embedforge.files.table_writer import write_table_pieces
from embedforge.heap import trim_heap
from embedforge.image_run import ImageRun
from embedforge.inference import embed_sets
from embedforge.onnx_encoder import load_run_onnx
from embedforge.progress import progress_bar
from embedforge.recipe import Recipe
from embedforge.run_items import RunEmbeddings, load_run_embeddings

OUTPUT_FORMATS = (".parquet", ".csv")
TRIM_EVERY_CHUNKS = 8
"""How often a stream gives the heap's free pages back (:func:`~embedforge.heap.trim_heap`):
every trim makes the next forward passes fault their memory in again. Embedding 1,000,000
palettes (61 chunks), a trim after every chunk took 43.4 s and peaked at 800 MiB, after every
8th 37.5 s and 930 MiB, never 37.4 s and 1,029 MiB."""
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
        palettes = build_palettes(self.recipe.data, source)
        device = torch.device(device)
        vectors = embed_sets(
            self.model.to(device), palettes.sets, device, batch=batch_size, progress=progress
        )
        return self._frame(palettes.ids, vectors)

    def embed_stream(
        self,
        source: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 1024,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: bool = True,
    ) -> Iterator[pd.DataFrame]:
        """The embeddings of a palette file or folder of part files, a chunk at a time:
        frames as :meth:`embed` returns, objects in the order they first appear.

        The first chunk is read and checked here, before the first frame is asked for, so a
        bad header or first row fails before any output exists. Later chunks are read and
        packed by a background thread while the model embeds the one before.
        """
        chunks = stream_palettes(source, palette_spec(self.recipe.data), chunk_rows=chunk_rows)
        first = next(chunks)
        device = torch.device(device)
        self.model.to(device)

        def frames() -> Iterator[pd.DataFrame]:
            bar = progress_bar(None, show=progress, desc="embedding", unit=" rows", unit_scale=True)
            with bar:
                for number, palettes in enumerate(chain([first], prefetch(chunks)), start=1):
                    yield self.embed_palettes(palettes, device=device, batch_size=batch_size)
                    bar.update(palettes.num_rows)
                    if number % TRIM_EVERY_CHUNKS == 0:
                        trim_heap()  # resident memory stays bounded (see embedforge.heap)

        return frames()

    def embed_palettes(
        self, palettes: Palettes, *, device: torch.device, batch_size: int = 1024
    ) -> pd.DataFrame:
        """Frames as :meth:`embed` returns, for palettes already read (a chunk of a stream),
        in their order; the model must already be on ``device``."""
        vectors = embed_sets(self.model, palettes.sets, device, batch=batch_size)
        return self._frame(palettes.ids, vectors)

    @property
    def id_column(self) -> str:
        """The name of the output's id column: the table's, as the recipe reads it."""
        return self.recipe.data.id_column or PALETTE_COLUMNS[-1]

    def _frame(self, ids: np.ndarray, vectors: torch.Tensor) -> pd.DataFrame:
        columns = [f"emb_{i}" for i in range(vectors.shape[1])]
        index = pd.Index(ids, name=self.id_column)
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
    write_table_pieces(out, [frame.reset_index()])


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
    chunk_rows: int | None = None,
) -> int:
    """The ``embedforge embed`` command: load the run, embed ``data``, write ``out``; the
    number of items written.

    ``data``: a palette table (a file or a folder of part files) for a palette run, streamed
    ``chunk_rows`` rows at a time (:meth:`PaletteRun.embed_stream`; None: the default); a
    folder of images or an ``image`` CSV for a run trained on an image folder. Without
    ``data``, the run's own items (its training and held-out split) are embedded: the way to
    export a digits or dSprites run.

    ``backend="onnx"`` runs the run's exported ``model.onnx`` (``embedforge export``) with
    onnxruntime on the CPU instead of the PyTorch model, on the same batches: the same
    embeddings within 1e-5, and how to check an exported model before deploying it.
    """
    out = check_output_path(out, overwrite=overwrite)
    if backend == "onnx" and data is None:
        raise UserError(
            "--backend onnx embeds DATA (a palette table or image files); a run's own items "
            "are embedded with --backend torch"
        )
    if backend == "onnx" and device == "cuda":
        raise UserError("--backend onnx runs on the CPU (onnxruntime's CPU provider): --device cpu")
    frames: Iterable[pd.DataFrame]
    if data is None:
        own = load_run_embeddings(run_dir, allow_changed_data=allow_changed_data)
        frames = [own_items_frame(own)]
    else:
        run = load_run(run_dir)
        if backend == "onnx":
            run, device = replace(run, model=load_run_onnx(run_dir)), torch.device("cpu")
        else:
            device = resolve_device(device, "--device")
        if isinstance(run, PaletteRun):
            chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
            frames = run.embed_stream(data, device=device, chunk_rows=chunk_rows, progress=progress)
        else:
            frames = [run.embed(data, device=device, progress=progress)]
    width = 0

    def pieces() -> Iterator[pd.DataFrame]:
        nonlocal width
        for frame in frames:
            width = sum(str(column).startswith("emb_") for column in frame.columns)
            yield frame.reset_index()

    count = write_table_pieces(out, pieces())
    print(f"embedded {count} items into {width} dimensions: {out}")
    return count
