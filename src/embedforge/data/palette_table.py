"""A palette table as loaded, with the checks every cell it reads must pass.

Shared by :func:`~embedforge.data.palettes.read_palettes` (a whole table) and
:mod:`~embedforge.data.palette_stream` (one chunk at a time), so a bad cell gets the same
message either way: the file, the row (a CSV file's line number; otherwise the position
counted from 0 in the file) and the column, and what was expected. A chunk's
:class:`Place` carries its rows' own numbers, so its messages count from the file's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from embedforge.errors import UserError

PALETTE_COLUMNS = ("ratio", "color_r", "color_g", "color_b", "object_id")
COLOR_COLUMNS = ("object_id", "percentage", "hex")

_ACCEPTED = (
    "accepted layouts: palette.csv (ratio, color_r, color_g, color_b, object_id), "
    "color.csv (object_id, percentage, hex), or any table with id_column, weight_column "
    "and feature_columns named"
)
_NAN_SPELLINGS = ("nan", "+nan", "-nan")
"""Texts :func:`pandas.to_numeric` reads as NaN: a number that is not finite, not a typo."""


def list_names(columns: Sequence[object]) -> str:
    """Column names for a message: ``'a', 'b'``."""
    return ", ".join(map(repr, map(str, columns))) or "no columns"


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def empty_cells(column: pd.Series) -> np.ndarray:
    """``(rows,)`` True where a cell is missing or only blanks."""
    empty = column.isna().to_numpy(dtype=bool)
    if not pd.api.types.is_numeric_dtype(column):
        empty = empty | column.astype(str).str.strip().eq("").to_numpy(dtype=bool)
    return empty


@dataclass(frozen=True)
class Place:
    """Where a table's rows come from: its label (the path as given, or "DataFrame") and
    each row's number in it: a CSV file's line number, else the position counted from 0."""

    label: str
    numbers: np.ndarray  # (rows,) int64
    unit: Literal["line", "row"] = "line"

    def where(self, row: int) -> str:
        """``"path, line 7"``: row ``row`` of this table, as a message names it."""
        return f"{self.label}, {self.unit} {int(self.numbers[row])}"


@dataclass(frozen=True)
class PaletteTable:
    """A loaded table (or a chunk of one) with where its rows come from."""

    frame: pd.DataFrame
    place: Place

    @property
    def label(self) -> str:
        return self.place.label

    def __len__(self) -> int:
        return len(self.frame)

    def rows(self, start: int, stop: int | None = None) -> PaletteTable:
        """Rows ``start:stop``, still named by their own numbers."""
        frame = self.frame.iloc[start:stop].reset_index(drop=True)
        place = Place(self.label, self.place.numbers[start:stop], self.place.unit)
        return PaletteTable(frame, place)

    def then(self, more: PaletteTable) -> PaletteTable:
        """This table's rows followed by ``more``'s (of the same file)."""
        frame = pd.concat([self.frame, more.frame], ignore_index=True)
        numbers = np.concatenate([self.place.numbers, more.place.numbers])
        return PaletteTable(frame, Place(more.label, numbers, more.place.unit))

    def fail(self, bad: np.ndarray, column: str, expected: str, raw: pd.Series) -> None:
        """Raise for the first True in ``bad`` (if any), showing the cell as it was given."""
        if not bad.any():
            return
        first, count = int(np.argmax(bad)), int(bad.sum())
        value = raw.iloc[first]
        got = "an empty cell" if pd.isna(value) or str(value).strip() == "" else _shown(value)
        more = f" (first of {count} such rows)" if count > 1 else ""
        raise UserError(
            f"{self.place.where(first)}, column {column!r}: expected {expected}, got {got}{more}"
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
            f"{self.label}: missing column(s) {list_names(missing)} for the {name} layout; "
            f"found {list_names(self.frame.columns)}; {_ACCEPTED}"
        )

    def present(self, column: str) -> pd.Series:
        """The column, after checking it has no empty cells."""
        raw = self.frame[column]
        self.fail(empty_cells(raw), column, "a value", raw)
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
