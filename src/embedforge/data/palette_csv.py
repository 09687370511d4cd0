"""Read a palette CSV file whole, or ``chunk_rows`` lines at a time, by one code path.

The file is streamed (decompressed as its suffix says: ``.gz``, ``.bz2``, ``.xz`` or a
``.zip`` holding one file) and every byte is checked to be UTF-8 as it is read, so a file in
another encoding is refused naming the line of its first bad byte without holding the file.
pandas' C parser reads the rows (its text columns are pyarrow arrays); the id column is read
as text. Each chunk comes with its rows' line numbers in the file (header = line 1), so a bad
cell in the millionth row is named by its line whatever the chunk size. See
:mod:`embedforge.data.palettes` for what a file may hold.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import re
import sys
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from embedforge.data.palette_table import PaletteTable, Place, empty_cells, list_names
from embedforge.errors import UserError

_SEPARATORS = {";": "';'", "\t": "tab"}
"""Separators a one-column header betrays: the file was written with them instead of commas."""
_READ_BYTES = 1 << 20
_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def _open_zip(raw: IO[bytes]) -> IO[bytes]:
    archive = zipfile.ZipFile(raw)
    names = archive.namelist()
    if len(names) != 1:
        raise zipfile.BadZipFile(f"it holds {len(names)} files; expected one CSV file")
    return archive.open(names[0])  # readable after the archive object goes


_OPENERS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw),
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
    ".zip": _open_zip,
}


def one_line(error: BaseException) -> str:
    """A library's error message on one line (pandas and pyarrow end some with newlines)."""
    return " ".join(str(error).split())


def _not_decompressed(label: str, suffix: str, error: BaseException) -> UserError:
    return UserError(
        f"{label}: cannot decompress it as {suffix} ({one_line(error)}); expected a "
        f"complete {suffix} file (is it truncated?)"
    )


def _open_binary(path: Path, label: str) -> tuple[IO[bytes], IO[bytes]]:
    """The file's bytes as a stream, decompressed as its suffix says, and the file itself
    (a decompressor does not close the file it was given)."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"{label}: file not found; expected a palette table there") from None
    except IsADirectoryError:
        raise UserError(f"{label}: is a directory; expected a CSV file") from None
    except OSError as error:
        raise UserError(f"{label}: cannot read the file ({one_line(error)})") from None
    suffix = path.suffix.lower()
    opener = _OPENERS.get(suffix)
    if opener is None:
        return raw, raw
    try:
        return opener(raw), raw
    except _DECOMPRESS_ERRORS as error:
        raw.close()
        raise _not_decompressed(label, suffix, error) from None


class _Utf8Reader(io.RawIOBase):
    """A file's (decompressed) bytes without a leading byte-order mark, checked as UTF-8 as
    they are read; :meth:`head` reads the first lines ahead and replays them."""

    def __init__(self, path: Path, label: str) -> None:
        super().__init__()
        self._raw, self._file = _open_binary(path, label)
        self._label, self._suffix = label, path.suffix.lower()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._newlines = 0  # in the bytes read so far
        self._replay = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        self._file.close()
        super().close()

    def _read(self, size: int) -> bytes:
        try:
            data = self._raw.read(size)
        except _DECOMPRESS_ERRORS as error:
            if self._suffix not in _OPENERS:
                message = f"{self._label}: cannot read the file ({one_line(error)})"
                raise UserError(message) from None
            raise _not_decompressed(self._label, self._suffix, error) from None
        if not self._started:
            data, self._started = data.removeprefix(codecs.BOM_UTF8), True
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:  # error.object: the bytes held back, then data
            line = self._newlines + error.object.count(b"\n", 0, error.start) + 1
            raise UserError(
                f"{self._label}, line {line}: byte 0x{error.object[error.start]:02x} is not "
                "UTF-8; expected a UTF-8 file (save it as UTF-8: ids are read as written, so "
                "no encoding is guessed)"
            ) from None
        self._newlines += data.count(b"\n")
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._replay[: len(buffer)] if self._replay else self._read(len(buffer))
        self._replay = self._replay[len(data) :]
        buffer[: len(data)] = data
        return len(data)

    def head(self) -> bytes:
        """The file's first line (read ahead, replayed by the next reads), after checking
        the file is not empty or blank and the line is not blank."""
        data = b""
        while b"\n" not in data or not data.strip():
            more = self._read(_READ_BYTES)
            if not more:
                break
            data += more
        self._replay = data
        if not data:
            raise UserError(f"{self._label}: empty file (0 bytes); expected a header line and rows")
        if not data.strip():
            raise UserError(f"{self._label}: only blank lines; expected a header line and rows")
        first = data.split(b"\n", 1)[0]
        if not first.strip():
            raise UserError(f"{self._label}, line 1: blank; expected the header (the column names)")
        return first


def _lines(path: Path, label: str) -> Iterator[str]:
    """The file's lines again, as text (only to explain a row pandas refused)."""
    with io.BufferedReader(_Utf8Reader(path, label)) as reader:
        for line in reader:
            yield line.decode("utf-8")


_OPTIONS = {"header": None, "encoding": "utf-8", "skip_blank_lines": False}


def csv_tables(
    path: Path, label: str, id_column: str, chunk_rows: int | None = None
) -> Iterator[PaletteTable]:
    """The data rows of a CSV file, the id column as text, ``chunk_rows`` lines at a time
    (all at once when None), each chunk with its rows' line numbers; blank rows dropped.

    Every column but the ids is parsed by pandas (numbers become numbers), with only an
    empty cell read as missing: a cell reading ``NaN`` or ``NA`` stays text, so the error
    it gets shows it as written. The header is checked first because pandas would rename a
    repeated column (``ratio.1``) rather than say so.
    """
    with _Utf8Reader(path, label) as raw:
        first = raw.head()
        header = pd.read_csv(io.BytesIO(first), nrows=1, dtype=str, na_filter=False, **_OPTIONS)
        header = [str(name) for name in header.iloc[0]]
        _check_header(header, label)
        id_at = header.index(id_column) if id_column in header else None
        others = [i for i in range(len(header)) if i != id_at]
        options = {
            "skiprows": 1,
            "names": list(range(len(header))),
            "index_col": False,
            "dtype": None if id_at is None else {id_at: str},
            "keep_default_na": False,
            "na_values": {i: [""] for i in others},
            "chunksize": chunk_rows or sys.maxsize,
            **_OPTIONS,
        }
        stream = io.BufferedReader(raw, buffer_size=_READ_BYTES)
        try:
            with warnings.catch_warnings():
                # a first row longer than the header is refused with this warning, not read
                # with its first cells as an index (pandas' default), which shifts every column
                warnings.simplefilter("error", pd.errors.ParserWarning)
                chunks = pd.read_csv(stream, **options)
                frames = chain([next(chunks)], chunks)
            found = 0
            for frame in frames:
                table = _without_blank_rows(frame, header, path, label)
                found += len(table.frame)
                if len(table.frame):
                    yield table
        except pd.errors.ParserWarning:
            raise UserError(_too_many_fields(_lines(path, label), label, len(header))) from None
        except pd.errors.ParserError as error:
            count = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
            if count is None:
                raise UserError(f"{label}: not readable as CSV ({one_line(error)})") from None
            expected, line, fields = count.groups()
            raise UserError(
                f"{label}, line {line}: {fields} fields; expected {expected}, one per header column"
            ) from None
        except StopIteration:  # no line after the header
            found = 0
        if not found:
            raise UserError(f"{label}: no data rows; expected one row per colour under the header")


def _without_blank_rows(
    frame: pd.DataFrame, header: list[str], path: Path, label: str
) -> PaletteTable:
    """A chunk as a table: columns named, blank rows dropped, short rows refused."""
    frame.columns = header
    lines = frame.index.to_numpy() + 2  # the header is line 1
    blank = np.logical_and.reduce([empty_cells(frame.iloc[:, i]) for i in range(len(header))])
    short = empty_cells(frame.iloc[:, -1]) & ~blank  # where a row cut short would show
    if short.any():
        _refuse_short_rows(_lines(path, label), label, lines[short], len(header))
    return PaletteTable(frame[~blank].reset_index(drop=True), Place(label, lines[~blank], "line"))


def _too_many_fields(lines: Iterator[str], label: str, expected: int) -> str:
    """The message for the first row with more fields than the header (pandas' warning
    says neither which row nor how many)."""
    rows = csv.reader(lines)
    for row in rows:
        if len(row) > expected:
            return (
                f"{label}, line {rows.line_num}: {len(row)} fields; expected {expected}, one per "
                "header column"
            )
    return f"{label}: rows with more fields than the header; expected {expected}, one per column"


def _refuse_short_rows(
    lines: Iterator[str], label: str, candidates: np.ndarray, expected: int
) -> None:
    """Refuse the first row among ``candidates`` (line numbers of rows whose last cell is
    empty) with fewer fields than the header. pandas fills a short row's missing cells as
    empty, which would go unnoticed in a column no layout reads and, in one it reads, name
    that column instead of the row's count."""
    wanted = set(candidates.tolist())
    last = max(wanted)
    for number, text in enumerate(lines, start=1):
        if number not in wanted:
            continue
        fields = next(csv.reader([text.removesuffix("\n").removesuffix("\r")]), [])
        if len(fields) < expected:
            raise UserError(
                f"{label}, line {number}: {len(fields)} fields; expected {expected}, one per "
                "header column"
            )
        if number == last:
            return


def _check_header(header: list[str], label: str) -> None:
    """Refuse a header pandas would read wrongly: one ``;``-joined column, a repeated name."""
    if len(header) == 1:
        for separator, name in _SEPARATORS.items():
            if separator in header[0]:
                raise UserError(
                    f"{label}, line 1: the header is one column {header[0]!r}; the file looks "
                    f"{name}-separated; expected commas between columns"
                )
    counts = Counter(name for name in header if name.strip())
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        raise UserError(
            f"{label}, line 1: column {repeated[0]!r} appears {counts[repeated[0]]} times in "
            f"the header; expected each column once (found {list_names(header)})"
        )
