"""Folder markers: a folder this tool writes says so, and no other folder is ever written into.

Every folder embedforge writes (a run, an index, a search folder, the quickstart's, an
experiment's) carries ``.embedforge.json`` naming its kind and the version that wrote it.
Before writing, a command calls :func:`prepare_folder`, which decides from what is there:

* a missing or empty folder is new: it is written;
* a non-empty folder without the marker belongs to the user: refused, nothing written;
* a marker of another kind: refused (a run is not an index);
* our own folder of this kind: continued (``reuse``, e.g. ``evaluate`` adding
  ``metrics.json`` to a run), or replaced with ``overwrite``, but only when every entry in
  it is one the kind's writers create: a file the user put inside is never deleted.

The check happens before any work, so a refusal leaves every file as it was.
"""

import json
import shutil
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from embedforge import __version__
from embedforge.errors import UserError
from embedforge.files.atomic import atomic_write_text

MARKER = ".embedforge.json"
FORMAT = "embedforge-folder"


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder the tool writes, and the top-level entries its writers create: by
    name, or by a name pattern (``patterns``, for part files whose number is not fixed).

    >>> kind = FolderKind("index", frozenset({"meta.json", "ids.json"}))
    >>> kind.name, "meta.json" in kind.entries
    ('index', True)
    >>> FolderKind("embeddings", frozenset(), ("part-*.parquet",)).owns("part-000001.parquet")
    True
    """

    name: str
    entries: frozenset[str]
    patterns: tuple[str, ...] = ()

    def owns(self, name: str) -> bool:
        """Whether a top-level entry called ``name`` is one this kind's writers create."""
        return name in self.entries or any(fnmatchcase(name, p) for p in self.patterns)


def _listing(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def read_marker(folder: Path) -> dict[str, object] | None:
    """The folder's marker, or None when it has none; an unreadable one is a UserError."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a readable embedforge folder marker ({error})") from None
    if not isinstance(marker, dict) or marker.get("format") != FORMAT:
        raise UserError(f"{path}: not an embedforge folder marker")
    return marker


def is_folder_of(folder: Path, kind: FolderKind) -> bool:
    """Whether ``folder`` is one of ours of this kind (it carries the kind's marker)."""
    marker = read_marker(folder) if Path(folder).is_dir() else None
    return marker is not None and marker.get("kind") == kind.name


def prepare_folder(
    folder: Path,
    kind: FolderKind,
    *,
    overwrite: bool = False,
    reuse: bool = False,
    hint: str = "pass --overwrite to replace it",
) -> Literal["new", "ours"]:
    """Check that ``folder`` may be written as a ``kind`` folder; raise UserError if not.

    Returns ``"new"`` (absent or empty) or ``"ours"`` (a folder of this kind, to continue
    with ``reuse`` or to replace with ``overwrite``). ``hint`` ends the message when our
    own folder is there and neither is allowed. Writes nothing.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: is a file; expected a folder to write the {kind.name} into")
    entries = [entry.name for entry in folder.iterdir()] if folder.is_dir() else []
    if not entries:
        return "new"
    marker = read_marker(folder)
    if marker is None:
        raise UserError(
            f"{folder}: holds files embedforge did not write ({_listing(entries)}); it never "
            f"writes into such a folder: choose a new or empty folder for the {kind.name}"
        )
    if marker.get("kind") != kind.name:
        raise UserError(
            f"{folder}: is an embedforge {marker.get('kind')} folder, not a {kind.name} "
            "folder; choose another folder"
        )
    if reuse:
        return "ours"
    if not overwrite:
        raise UserError(f"{folder}: already holds an embedforge {kind.name}; {hint}")
    foreign = [name for name in entries if name != MARKER and not kind.owns(name)]
    if foreign:
        raise UserError(
            f"{folder}: holds files embedforge did not write ({_listing(foreign)}); "
            "overwriting replaces only what it wrote: move them out first"
        )
    return "ours"


def write_marker(folder: Path, kind: FolderKind) -> None:
    """Create ``folder`` if needed and mark it as a ``kind`` folder of this version."""
    marker = {"format": FORMAT, "kind": kind.name, "version": __version__}
    atomic_write_text(Path(folder) / MARKER, json.dumps(marker, indent=2) + "\n")


def clear_folder(folder: Path, kind: FolderKind) -> None:
    """Remove the entries of ``kind`` from our own ``folder`` (for a restart); nothing else.

    Only call it after :func:`prepare_folder` returned ``"ours"`` with ``overwrite``.
    """
    for name in kind.entries:
        path = Path(folder) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
