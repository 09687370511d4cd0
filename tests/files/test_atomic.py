"""Tests for embedforge.files.atomic: whole files or none, fsync, the umask left alone."""

import os
import stat
from pathlib import Path

import pytest

from embedforge.files import atomic
from embedforge.files.atomic import atomic_write, atomic_write_text, staged_folder


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")

    def fail(temporary: Path) -> None:
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_the_file_and_its_folder_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = atomic.fsync_path
    monkeypatch.setattr(atomic, "fsync_path", lambda path: (synced.append(path), real(path)))
    atomic_write_text(tmp_path / "a.txt", "x")
    assert synced[0].name.startswith(".a.txt.") and synced[1:] == [tmp_path]


def test_the_umask_is_never_changed_and_applies_to_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *_: pytest.fail("os.umask was called"))
        atomic_write_text(tmp_path / "a.txt", "x")
        with staged_folder(tmp_path / "folder") as staging:
            (staging / "b.txt").write_text("y")
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o750


def test_a_staged_folder_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged_folder(target) as staging:
        (staging / "first.txt").write_text("1")
    with pytest.raises(RuntimeError), staged_folder(target) as staging:
        (staging / "second.txt").write_text("2")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["first.txt"]
    with staged_folder(target) as staging:
        (staging / "third.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["third.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind
