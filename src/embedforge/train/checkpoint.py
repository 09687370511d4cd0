"""Checkpoints as safetensors: every tensor in the file, everything else as JSON metadata.

A training state (model, loss parameters, optimizer, schedule, epoch) is a
nest of dicts and lists with tensors at some leaves. It is flattened into
named tensors plus a JSON skeleton whose tensor leaves are references, stored
in the safetensors header. Loading never unpickles anything, so a checkpoint
from an untrusted source cannot run code. Writes go to a temporary file that
is renamed over the target, so a crash never leaves half a checkpoint.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from embedforge.errors import UserError

# The run folder every command reads: the recipe, the two checkpoints the trainer writes, and
# the training history (one JSON object per epoch).
RECIPE = "recipe.yaml"
BEST, LAST = "checkpoints/best.safetensors", "checkpoints/last.safetensors"
HISTORY = "metrics.jsonl"

_SKELETON_KEY = "embedforge.state"
_TENSOR_REF = "__tensor__"


def _flatten(node: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, torch.Tensor):
        tensors[path] = node.detach().cpu().contiguous()
        return {_TENSOR_REF: path}
    if isinstance(node, dict):
        if not all(isinstance(key, str | int) for key in node):
            raise TypeError(f"{path}: only str/int keys can be saved")
        return {
            "__dict__": [
                [key, _flatten(value, f"{path}.{key}", tensors)] for key, value in node.items()
            ]
        }
    if isinstance(node, list | tuple):
        items = [_flatten(value, f"{path}.{i}", tensors) for i, value in enumerate(node)]
        return {"__tuple__": items} if isinstance(node, tuple) else items
    if node is None or isinstance(node, bool | int | float | str):
        return node
    raise TypeError(f"{path}: cannot save a {type(node).__name__} in a checkpoint")


def _unflatten(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_unflatten(value, tensors) for value in node]
    if isinstance(node, dict):
        if _TENSOR_REF in node:
            return tensors[node[_TENSOR_REF]]
        if "__tuple__" in node:
            return tuple(_unflatten(value, tensors) for value in node["__tuple__"])
        return {key: _unflatten(value, tensors) for key, value in node["__dict__"]}
    return node


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(temp_path)`` then rename the temp file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(directory: Path) -> Iterator[Path]:
    """A temporary sibling of ``directory`` to fill; when the block ends it replaces
    ``directory`` whole, and if the block raises it is removed and nothing changes."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield staging
        _replace_folder(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_folder(new: Path, target: Path) -> None:
    """Rename the finished folder ``new`` to ``target``; an existing ``target`` is moved aside
    first and removed only after the rename, so a crash leaves one whole folder or the other."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a nested state (dicts, lists, tensors, scalars) atomically as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "state", tensors)
    metadata = {_SKELETON_KEY: json.dumps(skeleton)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_state(path: str | Path) -> dict[str, Any]:
    """Read what :func:`save_state` wrote; a missing or foreign file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
        skeleton = json.loads(header["__metadata__"][_SKELETON_KEY])
    except (SafetensorError, KeyError, ValueError, OSError) as error:
        raise UserError(f"{path}: not an embedforge checkpoint ({error})") from None
    return _unflatten(skeleton, tensors)


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


def run_recipe_path(run_dir: str | Path) -> Path:
    """``run_dir``'s recipe file; a folder without one is not a run folder (a UserError)."""
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run folder (expected {RECIPE} and {BEST})")
    return path


def load_best_model(run_dir: str | Path, model: torch.nn.Module) -> None:
    """Put ``run_dir``'s best model weights into ``model`` (built from the run's recipe).

    A folder without a run, or weights of another shape, is one clear UserError.
    """
    run_dir = Path(run_dir)
    if not (run_dir / RECIPE).is_file() or not (run_dir / BEST).is_file():
        raise UserError(f"{run_dir}: not a run folder (expected {RECIPE} and {BEST})")
    try:
        model.load_state_dict(load_state(run_dir / BEST)["model"])
    except (KeyError, RuntimeError) as error:
        raise UserError(f"{run_dir / BEST}: weights do not fit {RECIPE} ({error})") from None


def save_best_model(run_dir: str | Path, recipe_yaml: str, model: torch.nn.Module) -> None:
    """Write a minimal run folder: the recipe and the model as the best checkpoint."""
    run_dir = Path(run_dir)
    atomic_write(run_dir / RECIPE, lambda tmp: tmp.write_text(recipe_yaml))
    save_state(run_dir / BEST, {"model": model.state_dict()})
