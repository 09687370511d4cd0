"""Training states as safetensors: every tensor in the file, everything else as JSON metadata.

A training state (model, loss parameters, optimizer, schedule, epoch) is a nest of dicts and
lists with tensors at some leaves. It is flattened into named tensors plus a JSON skeleton
whose tensor leaves are references, stored in the safetensors header. Loading never
unpickles anything, so a checkpoint from an untrusted source cannot run code. Writes are
atomic (:mod:`embedforge.files.atomic`), so a crash never leaves half a checkpoint.

Tensor names are the dotted paths of their leaves (``state.model.0.weight``); two leaves
whose paths spell the same name (a key ``"a.b"`` beside a key ``"a"`` holding ``"b"``) are
refused when saving instead of one silently overwriting the other.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write

_SKELETON_KEY = "embedforge.state"
_TENSOR_REF = "__tensor__"


def _flatten(node: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, torch.Tensor):
        if path in tensors:
            raise ValueError(f"two tensors of the state are both named {path!r}; rename a key")
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


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a nested state (dicts, lists, tensors, scalars) atomically as safetensors.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "s.safetensors"
    >>> save_state(path, {"w": torch.ones(2), "step": 3})
    >>> load_state(path)["step"], load_state(path)["w"].tolist()
    (3, [1.0, 1.0])
    >>> save_state(path, {"a.b": torch.ones(1), "a": {"b": torch.zeros(1)}})
    Traceback (most recent call last):
    ...
    ValueError: two tensors of the state are both named 'state.a.b'; rename a key
    """
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "state", tensors)
    metadata = {_SKELETON_KEY: json.dumps(skeleton)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_state(path: str | Path) -> dict[str, Any]:
    """Read what :func:`save_state` wrote; a missing, truncated or foreign file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
        skeleton = json.loads(header["__metadata__"][_SKELETON_KEY])
        return _unflatten(skeleton, tensors)
    except (SafetensorError, KeyError, TypeError, ValueError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a whole embedforge checkpoint ({reason})") from None
