"""The ``embedforge export`` command: a run's encoder as a file other runtimes can serve.

The encoder is the model ``embed`` runs (a set encoder; an image trunk with its embedder),
with the run's best weights, so the exported model's embeddings are the run's. By default it
is written into the run (``RUN_DIR/model.onnx``, what ``embed --backend onnx`` runs), or to
``--out``; an existing file is replaced only with ``--overwrite``. The file is written to a
temporary name, checked with onnxruntime against PyTorch (see :mod:`embedforge.onnx_export`)
and only then renamed into place, so a failed export leaves no file and keeps an old one.
The model records the sha256 of the checkpoint it comes from (see
:mod:`embedforge.onnx_encoder`).
"""

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from embedforge import __version__
from embedforge.build import build_data, build_model
from embedforge.data.image_folder_source import ImageFolderConfig
from embedforge.data.source import SetDataConfig
from embedforge.embed import PaletteRun, set_features
from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write
from embedforge.files.file_sha256 import file_sha256
from embedforge.files.output_file import check_output_file
from embedforge.files.run_folder import BEST, ONNX, check_run_folder, load_best, load_run_recipe
from embedforge.image_run import ImageRun
from embedforge.onnx_encoder import CHECKPOINT_KEY
from embedforge.onnx_export import ImageInputs, OnnxInputs, SetInputs, export_onnx
from embedforge.recipe import Recipe

EXPORT_FORMATS = ("onnx",)


@dataclass(frozen=True)
class Exported:
    """Where the model went and how far onnxruntime's embeddings were from PyTorch's."""

    path: Path
    max_difference: float


def run_encoder(run_dir: Path, recipe: Recipe) -> tuple[nn.Module, OnnxInputs]:
    """The embedding model of the run (``recipe`` is its recipe) with its best weights, and
    the inputs it takes."""
    data = recipe.data
    if isinstance(data, SetDataConfig):
        return PaletteRun.load(run_dir).model, SetInputs(features=set_features(data))
    if isinstance(data, ImageFolderConfig):
        model = ImageRun.load(run_dir).model
        return model, ImageInputs(channels=data.channels, size=data.image_size)
    _, channels, size, _ = build_data(data).train_images.shape  # generated images: digits...
    model = build_model(recipe, image_size=size, in_channels=channels)
    load_best(run_dir, model)
    return model, ImageInputs(channels=channels, size=size)


def export_run(
    run_dir: str | os.PathLike[str],
    *,
    format: str = "onnx",
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Exported:
    """Export the run's encoder to ``out`` (default ``RUN_DIR/model.onnx``), checked."""
    if format not in EXPORT_FORMATS:
        raise UserError(
            f"--format {format!r}: unknown export format; expected one of "
            f"{', '.join(EXPORT_FORMATS)}"
        )
    run_dir = check_run_folder(run_dir)
    out = run_dir / ONNX if out is None else out
    out = check_output_file(out, suffixes=(".onnx",), overwrite=overwrite)
    recipe = load_run_recipe(run_dir)
    model, inputs = run_encoder(run_dir, recipe)
    metadata = {CHECKPOINT_KEY: file_sha256(run_dir / BEST), "embedforge.version": __version__}
    label = f"{run_dir} ({recipe.encoder.name})"
    difference = float("nan")

    def write(temporary: Path) -> None:
        nonlocal difference
        difference = export_onnx(model, inputs, temporary, metadata=metadata, label=label)

    atomic_write(out, write)
    return Exported(out, difference)
