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

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from embedforge.data.palette_csv import csv_tables
from embedforge.data.palette_parquet import by_position, parquet_tables
from embedforge.data.palette_table import PALETTE_COLUMNS, PaletteTable, list_names
from embedforge.data.row_order import heaviest_first
from embedforge.data.set_batch import SetBatch
from embedforge.errors import UserError

ColourSpace = Literal["rgb", "lab"]

__all__ = [
    "PALETTE_COLUMNS",
    "PaletteSpec",
    "Palettes",
    "lab_to_srgb",
    "read_palettes",
    "srgb_to_lab",
]

DEFAULT_MAX_ROWS = 64
"""The competition's palettes have at most ~30 colours; 64 leaves room for finer palettes."""
DEFAULT_TOLERANCE = 1e-2
"""Weights summing to within 1% of 1 are not counted as renormalised (rounded shares)."""

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
        ids: ``(n,)`` the object ids, sorted (a stream's chunk: in the order they come);
            ``ids[i]`` owns set ``i``.
        sets: ``values (n, m, f)``, ``mask (n, m)``; feature 0 is the weight.
        feature_names: ``f`` names: ``"weight"`` then ``r, g, b`` or ``lab_l, lab_a, lab_b``
            (or the generic layout's feature columns).
        num_renormalised: objects whose weights did not sum to 1 within the tolerance.
        num_truncated: objects that had more than ``max_rows`` rows.
        num_rows: the table rows read (all of them, kept or truncated).
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
    num_rows: int
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


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB ``(..., 3)`` (L*, a*, b*), D65 white -> sRGB in [0, 1] ``(..., 3)``: the inverse
    of :func:`srgb_to_lab`, for drawing palettes read in CIELAB (the report's swatches).

    Colours outside the sRGB gamut are clipped to it, so what is drawn is the nearest
    displayable colour channel by channel.

    >>> lab_to_srgb(srgb_to_lab(np.array([[1.0, 0.5, 0.0]]))).round(6).tolist()
    [[1.0, 0.5, 0.0]]
    """
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    delta = 6.0 / 29.0
    xyz = np.where(f > delta, f**3, 3 * delta**2 * (f - 4.0 / 29.0)) * _D65_WHITE
    linear = np.clip(xyz @ np.linalg.inv(_SRGB_TO_XYZ).T, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


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
    spec = PaletteSpec(
        id_column=id_column,
        weight_column=weight_column,
        feature_columns=feature_columns,
        colour_space=colour_space,
        max_rows=max_rows,
        tolerance=tolerance,
    )
    return spec.read(load_table(source, spec.text_id_column), sort_ids=True)


@dataclass(frozen=True)
class PaletteSpec:
    """How to read a palette table (:func:`read_palettes`' keyword arguments, checked when
    made), applied to a whole table or to one chunk of a stream by :meth:`read`.

    >>> spec = PaletteSpec(colour_space="lab")
    >>> spec.text_id_column
    'object_id'
    """

    id_column: str | None = None
    weight_column: str | None = None
    feature_columns: Sequence[str] | None = None
    colour_space: ColourSpace = "rgb"
    max_rows: int = DEFAULT_MAX_ROWS
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.colour_space not in ("rgb", "lab"):
            raise UserError(f"colour_space must be 'rgb' or 'lab', got {self.colour_space!r}")
        if self.max_rows < 1:
            raise UserError(f"max_rows must be at least 1, got {self.max_rows}")
        if self.tolerance < 0:
            raise UserError(f"tolerance must be non-negative, got {self.tolerance}")

    @property
    def generic(self) -> bool:
        return (self.id_column, self.weight_column, self.feature_columns) != (None, None, None)

    @property
    def text_id_column(self) -> str:
        """The column a CSV file's ids are read from as text."""
        return self.id_column or "object_id"

    def read(self, table: PaletteTable, *, sort_ids: bool) -> Palettes:
        """Check every cell ``table`` reads and pack its rows into sets, one per object:
        sorted by id, or (``sort_ids=False``) in the order objects first appear."""
        tolerance = self.tolerance
        if self.generic:
            id_column, weight_column, features = _generic_columns(
                table, self.id_column, self.weight_column, self.feature_columns
            )
            if self.colour_space != "rgb":
                raise UserError(
                    f"colour_space={self.colour_space!r} needs the palette or color layout; a "
                    "generic table's feature columns are used as they are"
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
                upper = 100.0 * (1.0 + tolerance)
                weights = table.weights("percentage", upper, "a percentage 0-100") / 100.0
                rgb = table.hex_colours("hex")
            rgb = rgb / 255.0
            if self.colour_space == "lab":
                values, names = srgb_to_lab(rgb) / LAB_SCALE, ("lab_l", "lab_a", "lab_b")
            else:
                values, names = rgb, ("r", "g", "b")
        names = ("weight", *names)
        return _pack(table, ids, weights, values, names, weight_column, self, sort_ids)


def _generic_columns(
    table: PaletteTable,
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
            f"found {list_names(table.frame.columns)}"
        )
    return str(id_column), str(weight_column), features


def _pack(
    table: PaletteTable,
    ids: pd.Series,
    weights: np.ndarray,
    features: np.ndarray,
    names: tuple[str, ...],
    weight_column: str,
    spec: PaletteSpec,
    sort_ids: bool,
) -> Palettes:
    """Group rows by object, sort heaviest first, truncate, renormalise, scatter into padding."""
    max_rows, tolerance = spec.max_rows, spec.tolerance
    try:
        codes, uniques = pd.factorize(ids, sort=sort_ids)  # codes follow the ids' order
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
            f"{table.place.where(first)}, column {weight_column!r}: every weight of "
            f"object {ids.iloc[first]!r} is 0; expected at least one positive weight per "
            f"object ({int(all_zero.sum())} such objects)"
        )

    order = heaviest_first(codes, weights, counts)  # (n_rows,) by object, heaviest first
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
        num_rows=n_rows,
        columns=tuple(table.frame.columns),
    )


def load_table(source: str | os.PathLike[str] | pd.DataFrame, id_column: str) -> PaletteTable:
    """The whole table, a CSV file's ``id_column`` read as text (see the module docstring)."""
    if isinstance(source, pd.DataFrame):
        if len(source) == 0:
            raise UserError("DataFrame: no rows; expected one row per colour")
        return by_position(source, "DataFrame")
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"source must be a path or a DataFrame, got {type(source).__name__}")
    label, path = str(source), Path(source)
    if path.suffix.lower() == ".parquet":
        (table,) = parquet_tables(path, label)
    else:
        (table,) = csv_tables(path, label, id_column)
    return table
