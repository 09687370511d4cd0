"""Writes that leave a whole file or none: a temporary sibling, fsync, rename, fsync the folder.

A crash or a kill at any moment leaves either the old file or the new one, never half of
one: the data is written to a temporary name in the same folder, flushed to disk
(``fsync``), renamed over the target (atomic on POSIX within one file system), and the
folder itself is flushed so that the rename survives a power cut. The temporary file is
created with mode 0o666 so the process umask applies as for any new file; the umask is
never read or changed (changing it is process-wide, a race with other threads).
"""

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _temporary_sibling(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's contents to disk (a folder: its entries, e.g. a rename)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temporary_path)``, then move the finished file onto ``path``.

    ``write`` may use any writer that takes a path (``to_parquet``, safetensors). If it
    raises, the temporary file is removed and ``path`` is as it was.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, lambda tmp: tmp.write_text("whole"))
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('whole', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path, ".tmp")
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        write(temporary)
        fsync_path(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


@contextmanager
def staged_folder(directory: Path) -> Iterator[Path]:
    """A temporary sibling of ``directory`` to fill; when the block ends it takes
    ``directory``'s place, and if the block raises it is removed and nothing changes.

    An existing ``directory`` is replaced whole, so the caller must first have checked that
    it holds only what this tool wrote (:func:`embedforge.files.markers.prepare_folder`).
    It is moved aside before the rename and removed after it, so a crash leaves one whole
    folder or the other (and at worst a hidden ``.NAME.*.old`` sibling).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary_sibling(directory, ".new")
    staging.mkdir(mode=0o777)  # the umask applies, as for any new folder
    try:
        yield staging
        if directory.exists():
            old = _temporary_sibling(directory, ".old")
            os.replace(directory, old)
            os.replace(staging, directory)
            fsync_path(directory.parent)
            shutil.rmtree(old)
        else:
            os.replace(staging, directory)
            fsync_path(directory.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
