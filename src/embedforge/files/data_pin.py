"""What a run was trained on, recorded in its folder and checked by every later command.

``inputs.json`` holds a fingerprint of each file the recipe reads (its path as the run
records it, its size and sha256) and of the items themselves (:func:`embedforge.data.split.
fingerprint`); ``split.parquet`` holds the split (``id``, ``split`` = ``train`` or
``test``, in the order the run used them). ``evaluate``, ``report`` and ``embed RUN`` look
the recorded ids up in the data as it is now and refuse, naming the file and what changed,
when it is not the data the run saw: an appended row would otherwise move training items
into the held-out set that is scored. ``allow_changed`` (``--allow-changed-data``) scores
the recorded split's items that are still there instead.

An image folder is fingerprinted by its CSV (names and labels), not by every image's bytes,
which would mean reading the whole folder for each command.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from embedforge.data.split import HeldOut
from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write, atomic_write_text
from embedforge.files.file_sha256 import file_sha256
from embedforge.files.run_folder import INPUTS, SPLIT
from embedforge.recipe import Recipe

ALLOW_HINT = "to score the run on the data as it is now, pass --allow-changed-data"


@dataclass(frozen=True)
class DataPin:
    """A run's inputs: file fingerprints by recipe key, the items' fingerprint, the split."""

    files: dict[str, dict[str, object]]
    items: str
    held_out: HeldOut


def data_files(recipe: Recipe) -> dict[str, str]:
    """The files a recipe's data section reads, by recipe key (paths as the recipe has them)."""
    data = recipe.data
    keys = type(data).file_keys  # declared by each data source's config
    return {f"data.{key}": getattr(data, key) for key in keys if getattr(data, key) is not None}


def fingerprint_files(files: dict[str, str], run_dir: Path) -> dict[str, dict[str, object]]:
    """Size and sha256 of each file (a relative path is inside the run folder)."""
    prints = {}
    for key, recorded in files.items():
        path = Path(run_dir) / recorded
        prints[key] = {"path": recorded, "bytes": path.stat().st_size, "sha256": file_sha256(path)}
    return prints


def write_pin(run_dir: Path, pin: DataPin) -> None:
    """Record ``pin`` in ``run_dir`` (inputs.json, split.parquet), each file atomically."""
    held = pin.held_out
    split = pd.DataFrame(
        {
            "id": np.concatenate([held.train_ids, held.test_ids]),
            "split": ["train"] * len(held.train_ids) + ["test"] * len(held.test_ids),
        }
    )
    atomic_write(run_dir / SPLIT, lambda tmp: split.to_parquet(tmp, index=False))
    inputs = {"files": pin.files, "items": {"sha256": pin.items, "count": len(split)}}
    atomic_write_text(run_dir / INPUTS, json.dumps(inputs, indent=2) + "\n")


def read_pin(run_dir: Path) -> DataPin:
    """The pin :func:`write_pin` recorded; a run folder without one is a UserError."""
    inputs_path, split_path = run_dir / INPUTS, run_dir / SPLIT
    if not inputs_path.is_file() or not split_path.is_file():
        raise UserError(
            f"{run_dir}: the run records no data ({INPUTS} and {SPLIT}); it cannot be scored "
            "on the items it held out"
        )
    try:
        inputs = json.loads(inputs_path.read_text(encoding="utf-8"))
        files, items = dict(inputs["files"]), str(inputs["items"]["sha256"])
        split = pd.read_parquet(split_path)
        ids, sides = split["id"].to_numpy(), split["split"].to_numpy()
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"{run_dir}: unreadable {INPUTS} or {SPLIT} ({' '.join(str(error).split())}); "
            "expected them as 'embedforge train' wrote them"
        ) from None
    return DataPin(files, items, HeldOut(ids[sides == "train"], ids[sides == "test"]))


def check_files(run_dir: Path, pin: DataPin, *, allow_changed: bool = False) -> bool:
    """Refuse when a recorded file is gone or differs from what the run was trained on;
    with ``allow_changed`` a changed file is allowed. Returns whether any file changed."""
    changed = False
    for key, recorded in pin.files.items():
        path = Path(run_dir) / str(recorded["path"])
        if not path.is_file():
            raise UserError(
                f"{path}: the file the run was trained on ({key}) is gone; expected it where "
                "the run recorded it"
            )
        (now,) = fingerprint_files({key: str(recorded["path"])}, run_dir).values()
        if now["sha256"] != recorded["sha256"] and not allow_changed:
            raise UserError(
                f"{path}: changed since the run was trained on it ({key}: was "
                f"{recorded['bytes']:,} bytes, sha256 {str(recorded['sha256'])[:12]}; now "
                f"{now['bytes']:,} bytes, sha256 {str(now['sha256'])[:12]}); {ALLOW_HINT}"
            )
        changed |= now["sha256"] != recorded["sha256"]
    return changed


def check_items(run_dir: Path, pin: DataPin, items: str, *, allow_changed: bool = False) -> bool:
    """Refuse when the recorded ids now name other items (generated data that changed), unless
    ``allow_changed``. Returns whether they changed."""
    if items != pin.items and not allow_changed:
        raise UserError(
            f"{run_dir}: the items the run was trained on are not what its data gives now "
            f"(their fingerprint was {pin.items[:12]}, now {items[:12]}); {ALLOW_HINT}"
        )
    return items != pin.items
