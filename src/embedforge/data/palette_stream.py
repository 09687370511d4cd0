"""Read a palette table in chunks, packed into sets a chunk at a time: memory follows the
chunk size, not the table.

The source is a file (CSV, plain or compressed, or Parquet) or a folder of part files (every
file whose name does not start with ``.`` or ``_``, in name order, all Parquet or all CSV).
Each chunk is checked and packed exactly as :func:`~embedforge.data.palettes.read_palettes`
checks and packs a whole table (the same code), so a bad cell gets the same message, with
its file and line (CSV) or row (Parquet) counted from the start of its file.

How an object split across chunks stays one set: an object's rows must come together, one
after another (as when the table is sorted or grouped by id, as both competition files are),
and within one file. The rows of a chunk's last object are carried into the next chunk and
packed with the rest of them. An id that comes back after other objects' rows is refused,
naming it and its line, before anything is returned for it: every finished object leaves a
64-bit hash of its id (:class:`~embedforge.data.seen_ids.SeenIds`, 8 bytes per object). A
file that fits in one chunk may hold its rows in any order.

Objects come in the order they first appear: file by file, row by row.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedforge.data.palette_csv import csv_tables
from embedforge.data.palette_parquet import parquet_tables
from embedforge.data.palette_table import PaletteTable
from embedforge.data.palettes import Palettes, PaletteSpec
from embedforge.data.seen_ids import SeenIds
from embedforge.errors import UserError

DEFAULT_CHUNK_ROWS = 1 << 17
"""Rows read at a time: about 16,000 palettes of 8 colours. Embedding 1,000,000 palettes with
the default encoder, 2**19 rows a chunk took 35 s instead of 39 (fewer chunks, each padded to
its own largest sets) but peaked at 1,088 MiB resident instead of 839."""


def part_files(source: Path) -> list[Path]:
    """``[source]`` for a file; a folder's part files, in name order, all of one format."""
    if not source.is_dir():
        return [source]
    parts = sorted(
        path for path in source.iterdir() if path.is_file() and not path.name.startswith((".", "_"))
    )
    if not parts:
        raise UserError(f"{source}: a folder without part files; expected CSV or Parquet files")
    if len({path.suffix.lower() == ".parquet" for path in parts}) > 1:
        raise UserError(f"{source}: holds Parquet and CSV files; expected part files of one format")
    return parts


def stream_palettes(
    source: str | os.PathLike[str], spec: PaletteSpec, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Palettes]:
    """The palettes of ``source`` a chunk at a time (ids in the order they first appear).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "color.csv"
    >>> _ = path.write_text("object_id,percentage,hex\\nb,100,#ffffff\\na,50,#000000\\n"
    ...                     "a,50,#ff0000\\nc,100,#00ff00\\n")
    >>> [p.ids.tolist() for p in stream_palettes(path, PaletteSpec(), chunk_rows=2)]
    [['b'], ['a', 'c']]
    """
    check_chunk_rows(chunk_rows)
    seen, layout = SeenIds(), None
    for path in part_files(Path(source)):
        for palettes in stream_file(path, spec, chunk_rows=chunk_rows, seen=seen, layout=layout):
            layout = layout or PartLayout.of(palettes)
            yield palettes


def check_chunk_rows(chunk_rows: int) -> None:
    """Refuse a chunk size below one row."""
    if chunk_rows < 1:
        raise UserError(f"chunk_rows must be at least 1, got {chunk_rows}")


@dataclass(frozen=True)
class PartLayout:
    """What every part file of a table must share with the first one: the features its
    columns give and the type of its ids (so the output has one schema).

    >>> import pandas as pd
    >>> from embedforge.data.palettes import read_palettes
    >>> frame = pd.DataFrame({"object_id": [7], "percentage": [100], "hex": ["#ffffff"]})
    >>> PartLayout.of(read_palettes(frame))
    PartLayout(feature_names=('weight', 'r', 'g', 'b'), id_dtype=dtype('int64'))
    """

    feature_names: tuple[str, ...]
    id_dtype: np.dtype

    @classmethod
    def of(cls, palettes: Palettes) -> "PartLayout":
        """The layout of ``palettes`` (a first chunk)."""
        return cls(palettes.feature_names, palettes.ids.dtype)

    def check(self, table: PaletteTable, palettes: Palettes) -> None:
        """Refuse a chunk whose features or id type differ from this layout's."""
        if palettes.feature_names != self.feature_names:
            raise UserError(
                f"{table.label}: its columns give the features "
                f"{', '.join(palettes.feature_names)}; the first file's give "
                f"{', '.join(self.feature_names)}; expected every part file in one layout"
            )
        if palettes.ids.dtype.kind != self.id_dtype.kind:
            raise UserError(
                f"{table.label}: ids of type {palettes.ids.dtype}, the first file's are "
                f"{self.id_dtype}; expected one id type in every part file"
            )


def stream_file(
    path: Path,
    spec: PaletteSpec,
    *,
    chunk_rows: int,
    seen: SeenIds,
    layout: PartLayout | None = None,
) -> Iterator[Palettes]:
    """One part file's palettes a chunk at a time: each chunk checked against ``layout``
    (the first file's; None: this file's first chunk), its ids recorded in ``seen`` and
    refused if one was there already.

    :func:`stream_palettes` calls it file by file with one ``seen``; a worker that is given
    whole part files (``embedforge embed --engine ray``) calls it with a ``seen`` per file.
    """
    check_chunk_rows(chunk_rows)
    for table, palettes in _file_palettes(path, spec, chunk_rows):
        layout = layout or PartLayout.of(palettes)
        layout.check(table, palettes)
        repeated = seen.add(palettes.ids)
        if repeated.any():
            raise _came_back(table, palettes.ids[int(np.argmax(repeated))], spec)
        yield palettes


def _file_palettes(
    path: Path, spec: PaletteSpec, chunk_rows: int
) -> Iterator[tuple[PaletteTable, Palettes]]:
    """Each chunk of one file with its last object carried into the next chunk."""
    label, column = str(path), spec.text_id_column
    if path.suffix.lower() == ".parquet":
        tables = parquet_tables(path, label, chunk_rows)
    else:
        tables = csv_tables(path, label, column, chunk_rows)
    carry: PaletteTable | None = None
    table = next(tables, None)
    while table is not None:
        following = next(tables, None)  # the last chunk carries nothing over
        if carry is not None:
            table = carry.then(table)
        cut = len(table) if following is None else _last_object_start(table, column)
        carry = table.rows(cut) if cut < len(table) else None
        if cut:
            finished = table.rows(0, cut) if carry is not None else table
            yield finished, spec.read(finished, sort_ids=False)
        table = following


def _last_object_start(table: PaletteTable, column: str) -> int:
    """The first row of the run of rows at the end of ``table`` that share the last id."""
    if column not in table.frame.columns:
        return len(table)  # packing names the missing column
    ids = table.frame[column]
    other = (ids != ids.iloc[-1]).to_numpy(dtype=bool, na_value=True)  # (rows,)
    before = np.flatnonzero(other)
    return int(before[-1]) + 1 if len(before) else 0


def _came_back(table: PaletteTable, object_id: object, spec: PaletteSpec) -> UserError:
    column = spec.text_id_column
    rows = (table.frame[column] == object_id).to_numpy(dtype=bool, na_value=False)
    return UserError(
        f"{table.place.where(int(np.argmax(rows)))}, column {column!r}: object {object_id!r} "
        "appears again after other objects' rows; expected each object's rows together, one "
        "after another (e.g. sorted by id) and in one file: the table is read in chunks and "
        "an object is packed when its rows end"
    )
