"""The run folder: its layout, and reading what the trainer wrote.

Every command that reads a run (``evaluate``, ``report``, ``embed``, ``index build``) goes
through here, so the layout is named once::

    RUN_DIR/
      .embedforge.json               the marker (kind "run"): see embedforge.files.markers
      recipe.yaml                    the validated recipe; its data paths are absolute, or
                                     relative to the run folder when the data lives inside it
      inputs.json, split.parquet     what the run was trained on (embedforge.files.data_pin)
      data/                          a table the run keeps itself (PaletteEmbedder's)
      checkpoints/best.safetensors   model and loss weights at the best epoch
      checkpoints/last.safetensors   everything needed to resume
      metrics.jsonl                  one JSON object per epoch
      tensorboard/                   the same numbers as TensorBoard events
      metrics.json, report.html      ``embedforge evaluate`` and ``report``
      model.onnx                     ``embedforge export``: the encoder as ONNX, for
                                     ``embed --backend onnx`` and deployment
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write_text
from embedforge.files.markers import MARKER, FolderKind, is_folder_of, write_marker
from embedforge.files.state import load_state, save_state
from embedforge.recipe import Recipe, load_recipe

RECIPE = "recipe.yaml"
BEST, LAST = "checkpoints/best.safetensors", "checkpoints/last.safetensors"
HISTORY = "metrics.jsonl"
METRICS = "metrics.json"
REPORT = "report.html"
ONNX = "model.onnx"
INPUTS, SPLIT = "inputs.json", "split.parquet"
DATA = "data"
TENSORBOARD = "tensorboard"

RUN = FolderKind(
    "run",
    frozenset(
        {RECIPE, "checkpoints", HISTORY, TENSORBOARD, METRICS, REPORT, ONNX, INPUTS, SPLIT, DATA}
    ),
)


def check_run_folder(run_dir: str | Path, *, needs: str = BEST) -> Path:
    """``run_dir`` as a Path, after checking it is a run folder holding ``needs``."""
    run_dir = Path(run_dir)
    expected = f"expected {MARKER}, {RECIPE} and {needs} written by 'embedforge train'"
    if not run_dir.exists():
        raise UserError(f"{run_dir}: not a run folder: it does not exist ({expected})")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run folder: it is a file ({expected})")
    if not is_folder_of(run_dir, RUN) or not (run_dir / RECIPE).is_file():
        raise UserError(f"{run_dir}: not a run folder ({expected})")
    if not (run_dir / needs).is_file():
        raise UserError(f"{run_dir}: the run has no {needs} ({expected})")
    return run_dir


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epochs recorded in ``run_dir``'s history, oldest first ([] when there is none).

    The trainer appends one line per epoch, so a run killed mid-write can leave its last line
    cut short: that line is dropped (the epoch is redone on resume).
    """
    path = Path(run_dir) / HISTORY
    lines = (
        [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise UserError(f"{path}, line {number}: not a JSON object") from None
    return rows


def load_best(
    run_dir: str | Path, model: torch.nn.Module, loss: torch.nn.Module | None = None
) -> None:
    """Put ``run_dir``'s best weights into ``model`` (and the loss's, e.g. a projection head).

    Both are built from the run's recipe; weights of another shape are one clear UserError
    (a recipe edited to another encoder, say).
    """
    path = check_run_folder(run_dir) / BEST
    state = load_state(path)
    parts = [("model", model)] + ([("loss", loss)] if loss is not None else [])
    for key, module in parts:
        if key not in state:
            raise UserError(f"{path}: holds no {key} weights; expected them for {RECIPE}")
        try:
            module.load_state_dict(state[key])
        except RuntimeError as error:
            raise UserError(
                f"{path}: {key} weights do not fit {RECIPE} ({_misfit(module, state[key], error)});"
                f" expected the weights of the model {RECIPE} describes (was it edited?)"
            ) from None


def _misfit(module: torch.nn.Module, weights: dict[str, torch.Tensor], error: RuntimeError) -> str:
    """What differs between a module's tensors and a checkpoint's, counted, with the first of
    each kind: torch's own message lists every key, hundreds for a whole encoder."""
    wanted = module.state_dict()
    kinds = {
        "missing": [repr(name) for name in wanted if name not in weights],
        "unexpected": [repr(name) for name in weights if name not in wanted],
        "of another shape": [
            f"{name!r}: {list(weights[name].shape)} in the file, {list(tensor.shape)} in the model"
            for name, tensor in wanted.items()
            if name in weights and weights[name].shape != tensor.shape
        ],
    }
    found = [f"{len(names)} {kind} (first {names[0]})" for kind, names in kinds.items() if names]
    return ", ".join(found) or str(error).strip().splitlines()[0]


def save_best_model(run_dir: str | Path, recipe_yaml: str, model: torch.nn.Module) -> None:
    """Write a minimal run folder (marker, recipe, the model as the best checkpoint): what a
    search folder keeps to embed its queries. The caller has prepared ``run_dir``."""
    run_dir = Path(run_dir)
    write_marker(run_dir, RUN)
    atomic_write_text(run_dir / RECIPE, recipe_yaml)
    save_state(run_dir / BEST, {"model": model.state_dict()})


PATH_SECTIONS = ("data", "encoder")
"""The recipe sections whose configs may name files (each lists them in ``path_keys``)."""


def _with_paths(recipe: Recipe, change: Callable[[str], str]) -> Recipe:
    sections = {}
    for name in PATH_SECTIONS:
        section = getattr(recipe, name)
        updates = {
            key: change(getattr(section, key))
            for key in type(section).path_keys
            if getattr(section, key) is not None
        }
        if updates:
            sections[name] = section.model_copy(update=updates)
    return recipe.model_copy(update=sections)


def pin_paths(recipe: Recipe, run_dir: str | Path) -> Recipe:
    """The recipe as its run records it: every file path absolute (resolved from the current
    folder, as typed), or relative to the run folder when the file lives inside it, so a run
    means the same files wherever a later command starts and can be moved with its data."""
    root = Path(run_dir).resolve()

    def pinned(value: str) -> str:
        path = Path(value).resolve()
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    return _with_paths(recipe, pinned)


def resolve_paths(recipe: Recipe, run_dir: str | Path) -> Recipe:
    """A run's recipe with its run-relative paths made absolute (the inverse of pinning)."""
    root = Path(run_dir).resolve()
    return _with_paths(recipe, lambda value: str(root / value))


def load_run_recipe(run_dir: str | Path) -> Recipe:
    """The recipe of the run in ``run_dir`` (checked to be a run folder with a best model),
    its paths resolved."""
    run_dir = check_run_folder(run_dir)
    return resolve_paths(load_recipe(run_dir / RECIPE), run_dir)
