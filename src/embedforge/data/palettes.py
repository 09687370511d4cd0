"""Read colour palettes (one row per colour, many rows per object) into padded set batches.

Three table layouts are accepted, told apart by their columns:

* **palette** (the competition's ``palette.csv``): ``ratio, color_r, color_g, color_b,
  object_id`` -- ratio in [0, 1], colours 0-255;
* **color** (the competition's ``color.csv``): ``object_id, percentage, hex`` -- percentage in
  [0, 100], hex like ``#a1b2c3``;
* **generic**: any table, with the caller naming ``id_column``, ``weight_column`` and
  ``feature_columns``; features are used as they are.

Each object becomes one set. Feature 0 of every row is its weight (share of the object),
renormalised so an object's weights sum to 1; the other features are the colour, in RGB
scaled to [0, 1] or in CIELAB. Rows come heaviest first (ties keep the table's order).
Objects with more than ``max_rows`` rows keep their heaviest ``max_rows`` rows.

Why CIELAB: Euclidean distance between RGB triples does not follow what people see (two
greens far apart in RGB can look alike, a blue and a purple close in RGB can look very
different); CIELAB was built so that Euclidean distance approximates perceived colour
difference, so augmentations that jitter colours and encoders that compare them treat
"small" changes as small to the eye.

Ids come back exactly as they were written. A CSV file's id column is kept as the text of
each cell: ``007``, ``1e3`` and ``NA`` stay those strings (and sort as strings), spaces
around an id are kept, and only an empty (or all-blank) id cell is an error. Parquet files
and DataFrames keep the type their id column holds (strings stay strings, integers stay
integers and sort as numbers). Quotes are CSV syntax, not data: ``"0.5"`` is the number 0.5.

A CSV file must be UTF-8 (a byte-order mark at its start is allowed and dropped), comma
separated, with its header on line 1 naming each column once; lines may end in LF or CRLF.
It may be compressed, as its suffix says: ``.gz``, ``.bz2``, ``.xz`` or ``.zip`` (one file
inside). A file in another encoding (latin-1, cp1252) is refused, naming the line of its
first non-UTF-8 byte, rather than decoded by a guess that could silently change its ids.
A damaged file (truncated, or not the format its suffix says) is one error naming the file.

Row numbers in error messages: for a CSV file they are line numbers of the file, the header
being line 1, so the first data row is line 2 (blank lines count as lines and are skipped;
a quoted field spanning lines would shift the count). For a Parquet file or a DataFrame they
are positions counted from 0, as in ``df.iloc``. Only the first bad row is named, with how
many are bad.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from embedforge.data.set_batch import SetBatch
from embedforge.errors import UserError

ColourSpace = Literal["rgb", "lab"]

PALETTE_COLUMNS = ("ratio", "color_r", "color_g", "color_b", "object_id")
COLOR_COLUMNS = ("object_id", "percentage", "hex")
DEFAULT_MAX_ROWS = 64
"""The competition's palettes have at most ~30 colours; 64 leaves room for finer palettes."""
DEFAULT_TOLERANCE = 1e-2
"""Weights summing to within 1% of 1 are not counted as renormalised (rounded shares)."""

_ACCEPTED = (
    "accepted layouts: palette.csv (ratio, color_r, color_g, color_b, object_id), "
    "color.csv (object_id, percentage, hex), or any table with id_column, weight_column "
    "and feature_columns named"
)
# sRGB (linear) -> XYZ, D65 white (IEC 61966-2-1); white is the image of RGB = (1, 1, 1).
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = _SRGB_TO_XYZ.sum(axis=1)
LAB_SCALE = np.array([100.0, 128.0, 128.0])  # L in [0, 100], a and b within about +-128


@dataclass(frozen=True)
class Palettes:
    """Objects' palettes as a padded set batch, with what reading them changed.

    Attributes:
        ids: ``(n,)`` the object ids, sorted; ``ids[i]`` owns set ``i``.
        sets: ``values (n, m, f)``, ``mask (n, m)``; feature 0 is the weight.
        feature_names: ``f`` names: ``"weight"`` then ``r, g, b`` or ``lab_l, lab_a, lab_b``
            (or the generic layout's feature columns).
        num_renormalised: objects whose weights did not sum to 1 within the tolerance.
        num_truncated: objects that had more than ``max_rows`` rows.
        columns: the table's column names as read (a file's header, a DataFrame's columns).

    >>> df = pd.DataFrame({"object_id": ["b", "a", "a"], "ratio": [1.0, 0.25, 0.75],
    ...                    "color_r": [255, 0, 255], "color_g": [0, 0, 255],
    ...                    "color_b": [0, 0, 255]})
    >>> palettes = read_palettes(df)
    >>> palettes.ids.tolist(), palettes.feature_names, len(palettes)
    (['a', 'b'], ('weight', 'r', 'g', 'b'), 2)
    >>> palettes.columns
    ('object_id', 'ratio', 'color_r', 'color_g', 'color_b')
    >>> palettes.sets.values[0].tolist()  # object 'a': heaviest row (white) first
    [[0.75, 1.0, 1.0, 1.0], [0.25, 0.0, 0.0, 0.0]]
    >>> palettes.sets.mask.tolist()
    [[True, True], [True, False]]
    """

    ids: np.ndarray
    sets: SetBatch
    feature_names: tuple[str, ...]
    num_renormalised: int
    num_truncated: int
    columns: tuple[Hashable, ...]

    def __len__(self) -> int:
        return len(self.ids)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape ``(..., 3)`` -> CIELAB ``(..., 3)`` (L*, a*, b*), D65 white.

    The standard formulas (IEC 61966-2-1 gamma, CIE 1976 L*a*b*), vectorised in numpy.

    >>> srgb_to_lab(np.array([[1.0, 0.0, 0.0]])).round(2).tolist()
    [[53.24, 80.09, 67.2]]
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65_WHITE  # (..., 3), white -> (1, 1, 1)
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def read_palettes(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    id_column: str | None = None,
    weight_column: str | None = None,
    feature_columns: Sequence[str] | None = None,
    colour_space: ColourSpace = "rgb",
    max_rows: int = DEFAULT_MAX_ROWS,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Palettes:
    """Read a palette table (CSV path, Parquet path or DataFrame) into sets, one per object.

    Args:
        source: a CSV file, plain or compressed (a ``.parquet`` suffix reads Parquet), or a
            DataFrame; see the module docstring for what a file may hold.
        id_column, weight_column, feature_columns: name all three to read a generic table;
            leave them out to read the palette or color layout (told apart by columns).
        colour_space: ``"rgb"`` (scaled to [0, 1]) or ``"lab"`` (CIELAB as L/100, a/128,
            b/128, so all features are about unit scale). Only for the two colour layouts.
        max_rows: an object with more rows keeps its heaviest ``max_rows`` (then renormalised).
        tolerance: weights summing to 1 within this are not counted as renormalised. It also
            lets a ratio reach ``1 + tolerance`` (a percentage ``100 * (1 + tolerance)``).

    Raises:
        UserError: one message per problem, naming the file, row and column and what was
            expected (see the module docstring for row numbers).

    >>> df = pd.DataFrame({"object_id": [7, 7], "percentage": [50, 50],
    ...                    "hex": ["#ffffff", "#000000"]})
    >>> read_palettes(df, colour_space="lab").sets.values[0].tolist()
    [[0.5, 1.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]]
    """
    if colour_space not in ("rgb", "lab"):
        raise UserError(f"colour_space must be 'rgb' or 'lab', got {colour_space!r}")
    if max_rows < 1:
        raise UserError(f"max_rows must be at least 1, got {max_rows}")
    if tolerance < 0:
        raise UserError(f"tolerance must be non-negative, got {tolerance}")
    table = _Table.load(source, id_column or "object_id")
    generic = (id_column, weight_column, feature_columns) != (None, None, None)

    if generic:
        id_column, weight_column, features = _generic_columns(
            table, id_column, weight_column, feature_columns
        )
        if colour_space != "rgb":
            raise UserError(
                f"colour_space={colour_space!r} needs the palette or color layout; a generic "
                "table's feature columns are used as they are"
            )
        ids = table.ids(id_column)
        weights = table.weights(weight_column)
        values = np.stack([table.numbers(c, "a finite number") for c in features], axis=1)
        names = tuple(features)
    else:
        layout = table.layout()
        ids = table.ids("object_id")
        if layout == "palette":
            weight_column = "ratio"
            weights = table.weights("ratio", 1.0 + tolerance, "a share between 0 and 1")
            channels = ("color_r", "color_g", "color_b")
            expected = "a colour value between 0 and 255"
            rgb = np.stack([table.numbers(c, expected, 0.0, 255.0) for c in channels], axis=1)
        else:
            weight_column = "percentage"
            weights = table.weights("percentage", 100.0 * (1.0 + tolerance), "a percentage 0-100")
            weights = weights / 100.0
            rgb = table.hex_colours("hex")
        rgb = rgb / 255.0
        if colour_space == "lab":
            values, names = srgb_to_lab(rgb) / LAB_SCALE, ("lab_l", "lab_a", "lab_b")
        else:
            values, names = rgb, ("r", "g", "b")

    names = ("weight", *names)
    return _pack(table, ids, weights, values, names, weight_column, max_rows, tolerance)


def _generic_columns(
    table: _Table,
    id_column: str | None,
    weight_column: str | None,
    feature_columns: Sequence[str] | None,
) -> tuple[str, str, list[str]]:
    if isinstance(feature_columns, str):
        feature_columns = [feature_columns]
    named = {"id_column": id_column, "weight_column": weight_column}
    named["feature_columns"] = feature_columns or None
    unnamed = [key for key, value in named.items() if value is None]
    if unnamed:
        raise UserError(
            f"a generic table needs id_column, weight_column and feature_columns (at least "
            f"one) named together; missing: {', '.join(unnamed)}"
        )
    features = list(feature_columns or [])
    wanted = [id_column, weight_column, *features]
    missing = [c for c in wanted if c not in table.frame.columns]
    if missing:
        raise UserError(
            f"{table.label}: missing column(s) {', '.join(map(repr, missing))}; "
            f"found {_list(table.frame.columns)}"
        )
    return str(id_column), str(weight_column), features


def _pack(
    table: _Table,
    ids: pd.Series,
    weights: np.ndarray,
    features: np.ndarray,
    names: tuple[str, ...],
    weight_column: str,
    max_rows: int,
    tolerance: float,
) -> Palettes:
    """Group rows by object, sort heaviest first, truncate, renormalise, scatter into padding."""
    try:
        codes, uniques = pd.factorize(ids, sort=True)  # codes follow the sorted ids
    except TypeError as error:
        kinds = sorted({type(v).__name__ for v in ids})
        raise UserError(
            f"{table.label}, column {ids.name!r}: ids mix types ({', '.join(kinds)}); "
            "expected all numbers or all text"
        ) from error
    n_objects, n_rows = len(uniques), len(codes)
    counts = np.bincount(codes, minlength=n_objects)  # (n_objects,)
    totals = np.bincount(codes, weights=weights, minlength=n_objects)  # (n_objects,)

    all_zero = totals <= 0
    if all_zero.any():
        first = int(np.argmax(all_zero[codes]))  # first row of the first such object
        raise UserError(
            f"{table.label}, {table.where(first)}, column {weight_column!r}: every weight of "
            f"object {ids.iloc[first]!r} is 0; expected at least one positive weight per "
            f"object ({int(all_zero.sum())} such objects)"
        )

    order = np.lexsort((np.arange(n_rows), -weights, codes))  # by object, heaviest first
    group = codes[order]  # (n_rows,)
    starts = np.cumsum(counts) - counts  # (n_objects,)
    rank = np.arange(n_rows) - starts[group]  # position within its object
    keep = rank < max_rows
    rows, group, rank = order[keep], group[keep], rank[keep]
    kept_totals = np.bincount(group, weights=weights[rows], minlength=n_objects)

    m = int(min(counts.max(), max_rows))
    values = np.zeros((n_objects, m, len(names)), dtype=np.float32)  # (n, m, f)
    values[group, rank, 0] = weights[rows] / kept_totals[group]
    values[group, rank, 1:] = features[rows]
    mask = np.zeros((n_objects, m), dtype=bool)  # (n, m)
    mask[group, rank] = True
    return Palettes(
        ids=np.asarray(uniques),
        sets=SetBatch(torch.from_numpy(values), torch.from_numpy(mask)),
        feature_names=names,
        num_renormalised=int((np.abs(totals - 1.0) > tolerance).sum()),
        num_truncated=int((counts > max_rows).sum()),
        columns=tuple(table.frame.columns),
    )


def _list(columns: Sequence[object]) -> str:
    return ", ".join(map(repr, map(str, columns))) or "no columns"


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


_NAN_SPELLINGS = ("nan", "+nan", "-nan")
"""Texts :func:`pandas.to_numeric` reads as NaN: a number that is not finite, not a typo."""
_SEPARATORS = {";": "';'", "\t": "tab"}
"""Separators a one-column header betrays: the file was written with them instead of commas."""


def _unzip(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        if len(names) != 1:
            raise zipfile.BadZipFile(f"it holds {len(names)} files; expected one CSV file")
        return archive.read(names[0])


_DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.decompress,
    ".bz2": bz2.decompress,
    ".xz": lzma.decompress,
    ".zip": _unzip,
}


def _one_line(error: BaseException) -> str:
    """A library's error message on one line (pandas and pyarrow end some with newlines)."""
    return " ".join(str(error).split())


def _file_bytes(path: Path, label: str) -> bytes:
    """The file's bytes, decompressed as its suffix says."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{label}: file not found; expected a palette table there") from None
    except IsADirectoryError:
        raise UserError(f"{label}: is a directory; expected a CSV file") from None
    except OSError as error:
        raise UserError(f"{label}: cannot read the file ({_one_line(error)})") from None
    suffix = path.suffix.lower()
    decompress = _DECOMPRESSORS.get(suffix)
    if decompress is None:
        return data
    try:
        return decompress(data)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as error:
        raise UserError(
            f"{label}: cannot decompress it as {suffix} ({_one_line(error)}); expected a "
            f"complete {suffix} file (is it truncated?)"
        ) from None


def _utf8(data: bytes, label: str) -> bytes:
    """``data`` without a leading byte-order mark, after checking it is all UTF-8."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UserError(
            f"{label}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8; expected a "
            "UTF-8 file (save it as UTF-8: ids are read as written, so no encoding is guessed)"
        ) from None
    return data


def _empty_cells(column: pd.Series) -> np.ndarray:
    """``(rows,)`` True where a cell is missing or only blanks."""
    empty = column.isna().to_numpy(dtype=bool)
    if not pd.api.types.is_numeric_dtype(column):
        empty = empty | column.astype(str).str.strip().eq("").to_numpy(dtype=bool)
    return empty


def _read_csv(path: Path, label: str, id_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The data rows of a CSV file, the id column as text, and each row's line number.

    Every column but the ids is parsed by pandas (numbers become numbers), with only an
    empty cell read as missing: a cell reading ``NaN`` or ``NA`` stays text, so the error
    it gets shows it as written. The header is checked first because pandas would rename a
    repeated column (``ratio.1``) rather than say so.
    """
    data = _utf8(_file_bytes(path, label), label)
    if not data:
        raise UserError(f"{label}: empty file (0 bytes); expected a header line and rows")
    if not data.strip():
        raise UserError(f"{label}: only blank lines; expected a header line and rows")
    if not data.split(b"\n", 1)[0].strip():
        raise UserError(f"{label}, line 1: blank; expected the header (the column names)")
    options = {"header": None, "encoding": "utf-8", "skip_blank_lines": False}
    try:
        header = pd.read_csv(io.BytesIO(data), nrows=1, dtype=str, na_filter=False, **options)
        header = [str(name) for name in header.iloc[0]]
        _check_header(header, label)
        id_at = header.index(id_column) if id_column in header else None
        others = [i for i in range(len(header)) if i != id_at]
        with warnings.catch_warnings():
            # a first row longer than the header is refused with this warning, not read with
            # its first cells as an index (pandas' default), which shifts every column
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(data),
                skiprows=1,
                names=list(range(len(header))),
                index_col=False,
                dtype=None if id_at is None else {id_at: str},
                keep_default_na=False,
                na_values={i: [""] for i in others},
                **options,
            )
    except pd.errors.ParserWarning:
        raise UserError(_too_many_fields(data, label, len(header))) from None
    except pd.errors.ParserError as error:
        count = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if count is None:
            raise UserError(f"{label}: not readable as CSV ({_one_line(error)})") from None
        expected, line, found = count.groups()
        raise UserError(
            f"{label}, line {line}: {found} fields; expected {expected}, one per header column"
        ) from None
    frame.columns = header
    lines = np.arange(len(frame)) + 2  # the header is line 1
    blank = np.logical_and.reduce([_empty_cells(frame.iloc[:, i]) for i in range(len(header))])
    short = _empty_cells(frame.iloc[:, -1]) & ~blank  # where a row cut short would show
    if short.any():
        _refuse_short_rows(data, label, lines[short], len(header))
    frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    if len(frame) == 0:
        raise UserError(f"{label}: no data rows; expected one row per colour under the header")
    return frame, lines


def _too_many_fields(data: bytes, label: str, expected: int) -> str:
    """The message for the first row with more fields than the header (pandas' warning
    says neither which row nor how many)."""
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    for row in rows:
        if len(row) > expected:
            return (
                f"{label}, line {rows.line_num}: {len(row)} fields; expected {expected}, one per "
                "header column"
            )
    return f"{label}: rows with more fields than the header; expected {expected}, one per column"


def _refuse_short_rows(data: bytes, label: str, candidates: np.ndarray, expected: int) -> None:
    """Refuse the first row among ``candidates`` (line numbers of rows whose last cell is
    empty) with fewer fields than the header. pandas fills a short row's missing cells as
    empty, which would go unnoticed in a column no layout reads and, in one it reads, name
    that column instead of the row's count."""
    text = data.decode("utf-8").split("\n")
    for line in candidates.tolist():
        fields = next(csv.reader([text[line - 1].removesuffix("\r")]), [])
        if len(fields) < expected:
            raise UserError(
                f"{label}, line {line}: {len(fields)} fields; expected {expected}, one per "
                "header column"
            )


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
            f"the header; expected each column once (found {_list(header)})"
        )


def _read_parquet(path: Path, label: str) -> pd.DataFrame:
    import pyarrow

    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise UserError(f"{label}: file not found; expected a palette table there") from None
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise UserError(
            f"{label}: could not read it as Parquet ({_one_line(error)}); expected a complete "
            "Parquet file"
        ) from None
    if len(frame) == 0:
        raise UserError(f"{label}: no rows; expected one row per colour")
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class _Table:
    """A loaded table with what error messages need: its label and each row's number."""

    frame: pd.DataFrame
    label: str  # the path as given, or "DataFrame"
    lines: np.ndarray | None  # a CSV file's line number of each row; None: rows by position

    @classmethod
    def load(cls, source: str | os.PathLike[str] | pd.DataFrame, id_column: str) -> _Table:
        """The table, a CSV file's ``id_column`` read as text (see the module docstring)."""
        if isinstance(source, pd.DataFrame):
            if len(source) == 0:
                raise UserError("DataFrame: no rows; expected one row per colour")
            return cls(source.reset_index(drop=True), "DataFrame", None)
        if not isinstance(source, str | os.PathLike):
            raise TypeError(f"source must be a path or a DataFrame, got {type(source).__name__}")
        label, path = str(source), Path(source)
        if path.suffix.lower() == ".parquet":
            return cls(_read_parquet(path, label), label, None)
        frame, lines = _read_csv(path, label, id_column)
        return cls(frame, label, lines)

    def where(self, row: int) -> str:
        return f"row {row}" if self.lines is None else f"line {int(self.lines[row])}"

    def fail(self, bad: np.ndarray, column: str, expected: str, raw: pd.Series) -> None:
        """Raise for the first True in ``bad`` (if any), showing the cell as it was given."""
        if not bad.any():
            return
        first, count = int(np.argmax(bad)), int(bad.sum())
        value = raw.iloc[first]
        got = "an empty cell" if pd.isna(value) or str(value).strip() == "" else _shown(value)
        more = f" (first of {count} such rows)" if count > 1 else ""
        raise UserError(
            f"{self.label}, {self.where(first)}, column {column!r}: expected {expected}, "
            f"got {got}{more}"
        )

    def layout(self) -> Literal["palette", "color"]:
        columns = set(map(str, self.frame.columns))
        candidates = {"palette": PALETTE_COLUMNS, "color": COLOR_COLUMNS}
        for name, wanted in candidates.items():
            if columns.issuperset(wanted):
                return name  # type: ignore[return-value]
        # name what is missing from the layout the table comes closest to
        name, wanted = max(candidates.items(), key=lambda kv: len(columns.intersection(kv[1])))
        missing = [c for c in wanted if c not in columns]
        raise UserError(
            f"{self.label}: missing column(s) {_list(missing)} for the {name} layout; found "
            f"{_list(self.frame.columns)}; {_ACCEPTED}"
        )

    def present(self, column: str) -> pd.Series:
        """The column, after checking it has no empty cells."""
        raw = self.frame[column]
        self.fail(_empty_cells(raw), column, "a value", raw)
        return raw

    def ids(self, column: str) -> pd.Series:
        return self.present(column)

    def numbers(
        self, column: str, expected: str, low: float | None = None, high: float | None = None
    ) -> np.ndarray:
        """``(rows,)`` float64 values of a numeric column, checked finite and in [low, high]."""
        raw = self.present(column)
        if pd.api.types.is_numeric_dtype(raw):
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            spelled_nan = np.zeros(len(values), bool)
        else:  # text: some cells are not numbers, or spell NaN ("NaN" is a number, not finite)
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            spelled_nan = raw.astype(str).str.strip().str.lower().isin(_NAN_SPELLINGS).to_numpy()
        self.fail(np.isnan(values) & ~spelled_nan, column, "a number", raw)
        self.fail(~np.isfinite(values), column, "a finite number", raw)
        too_low = values < low if low is not None else np.zeros(len(values), bool)
        too_high = values > high if high is not None else np.zeros(len(values), bool)
        self.fail(too_low | too_high, column, expected, raw)
        return values

    def weights(self, column: str, upper: float | None = None, expected: str = "") -> np.ndarray:
        """``(rows,)`` float64 weights: non-negative, and at most ``upper`` if given."""
        values = self.numbers(column, "a non-negative weight", low=0.0)
        if upper is not None:
            self.fail(values > upper, column, expected, self.frame[column])
        return values

    def hex_colours(self, column: str) -> np.ndarray:
        """``(rows, 3)`` float64 RGB in 0-255 from ``#rrggbb`` cells (``#`` optional)."""
        raw = self.present(column)
        text = raw.astype(str).str.strip()
        valid = text.str.fullmatch(r"#?[0-9a-fA-F]{6}").to_numpy(dtype=bool)
        self.fail(~valid, column, "a colour like '#a1b2c3' (6 hex digits)", raw)
        digits = np.asarray(text.str.removeprefix("#").str.lower(), dtype="U6")
        code = digits.view(np.uint32).reshape(-1, 6).astype(np.int64)  # unicode code points
        nibble = np.where(code >= ord("a"), code - ord("a") + 10, code - ord("0"))  # (rows, 6)
        return (nibble[:, 0::2] * 16 + nibble[:, 1::2]).astype(np.float64)
