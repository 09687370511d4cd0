"""Tests for embedforge.files.markers: our folders are marked, no other folder is written."""

import json
from pathlib import Path

import pytest

from embedforge import __version__
from embedforge.errors import UserError
from embedforge.files.markers import (
    MARKER,
    FolderKind,
    clear_folder,
    is_folder_of,
    prepare_folder,
    read_marker,
    write_marker,
)

KIND = FolderKind("index", frozenset({"meta.json", "ids.json", "parts"}))


def _users_folder(folder: Path) -> dict[str, bytes]:
    folder.mkdir()
    (folder / "meta.json").write_text('{"mine": true}')
    (folder / "results.csv").write_text("id,score\n1,0.5\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_missing_or_empty_folder_is_new(tmp_path: Path) -> None:
    assert prepare_folder(tmp_path / "absent", KIND) == "new"
    (tmp_path / "empty").mkdir()
    assert prepare_folder(tmp_path / "empty", KIND) == "new"
    assert not (tmp_path / "absent").exists()  # preparing writes nothing


@pytest.mark.parametrize("options", [{}, {"overwrite": True}, {"reuse": True}])
def test_a_users_folder_is_refused_whatever_the_options(tmp_path: Path, options: dict) -> None:
    before = _users_folder(tmp_path / "mine")
    with pytest.raises(UserError, match="mine: holds files embedforge did not write"):
        prepare_folder(tmp_path / "mine", KIND, **options)
    assert {p.name: p.read_bytes() for p in (tmp_path / "mine").iterdir()} == before


def test_our_folder_needs_overwrite_and_may_hold_only_our_entries(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    write_marker(folder, KIND)
    (folder / "meta.json").write_text("{}")
    with pytest.raises(UserError, match="already holds an embedforge index; say so"):
        prepare_folder(folder, KIND, hint="say so")
    assert prepare_folder(folder, KIND, overwrite=True) == "ours"
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"did not write \(notes.txt\); overwriting replaces"):
        prepare_folder(folder, KIND, overwrite=True)
    assert prepare_folder(folder, KIND, reuse=True) == "ours"  # continuing touches nothing


def test_a_kinds_patterns_name_entries_it_may_replace(tmp_path: Path) -> None:
    """Part files whose number is not fixed are ours by pattern; anything else is not."""
    kind = FolderKind("embeddings", frozenset(), ("part-*.parquet",))
    folder = tmp_path / "embeddings"
    write_marker(folder, kind)
    (folder / "part-0a_000001.parquet").write_bytes(b"")
    assert prepare_folder(folder, kind, overwrite=True) == "ours"
    (folder / "mine.parquet").write_bytes(b"")
    with pytest.raises(UserError, match=r"did not write \(mine.parquet\)"):
        prepare_folder(folder, kind, overwrite=True)


def test_another_kind_and_a_broken_marker_are_refused(tmp_path: Path) -> None:
    write_marker(tmp_path / "run", FolderKind("run", frozenset()))
    with pytest.raises(UserError, match="is an embedforge run folder, not a index folder"):
        prepare_folder(tmp_path / "run", KIND, overwrite=True)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MARKER).write_text("{not json")
    with pytest.raises(UserError, match="not a readable embedforge folder marker"):
        prepare_folder(tmp_path / "broken", KIND)
    with pytest.raises(UserError, match="is a file"):
        prepare_folder(tmp_path / "broken" / MARKER, KIND)


def test_the_marker_names_kind_and_version(tmp_path: Path) -> None:
    write_marker(tmp_path / "f", KIND)
    marker = json.loads((tmp_path / "f" / MARKER).read_text())
    assert marker["kind"] == "index" and marker["version"] == __version__
    assert read_marker(tmp_path / "f") == marker and is_folder_of(tmp_path / "f", KIND)
    assert not is_folder_of(tmp_path, KIND)


def test_clearing_removes_only_the_kinds_entries(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    write_marker(folder, KIND)
    (folder / "meta.json").write_text("{}")
    (folder / "parts").mkdir()
    (folder / "parts" / "0.bin").write_bytes(b"0")
    (folder / "kept.txt").write_text("not listed")
    clear_folder(folder, KIND)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "kept.txt"]
