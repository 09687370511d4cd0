"""An embeddings table on disk (one Parquet file, or a folder of Parquet part files), read
in shards, so building an index over it holds one shard in memory, never the whole table.

The table is what ``embedforge embed`` writes: the id column first, then ``emb_0 …
emb_{d-1}`` (other columns, such as ``split`` or ``label``, are ignored). A folder's part
files are read in name order (:func:`embedforge.data.palette_stream.part_files`) and must
agree on the id column and the embedding columns. Only the Parquet footers are read to
count the rows; the rows themselves are read batch by batch with pyarrow
(``ParquetFile.iter_batches``), and each batch is copied into the shard being filled.
"""

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedforge.data.palette_stream import part_files
from embedforge.errors import UserError

BATCH_ROWS = 1 << 16  # rows pyarrow decodes at a time: 16 MiB of 64-d float32


@dataclass(frozen=True)
class EmbeddingParts:
    """The part files of an embeddings table and what their footers say.

    Attributes:
        files: the Parquet files, in reading order.
        id_column: the name of the first column, which holds the ids.
        columns: the embedding columns, ``emb_0 … emb_{d-1}``.
        rows: the row count of each file.
    """

    files: tuple[Path, ...]
    id_column: str
    columns: tuple[str, ...]
    rows: tuple[int, ...]

    @property
    def dim(self) -> int:
        return len(self.columns)

    @property
    def count(self) -> int:
        return sum(self.rows)

    @property
    def source(self) -> Path:
        """The table, for messages: its file, or the folder of its part files."""
        return self.files[0] if len(self.files) == 1 else self.files[0].parent


@dataclass(frozen=True)
class Shard:
    """Consecutive rows of the table: their ids and vectors, and the row number of the first."""

    start: int
    ids: np.ndarray  # (n,) str or int64
    vectors: np.ndarray  # (n, d) float32


def open_embedding_parts(source: str | os.PathLike[str]) -> EmbeddingParts:
    """Check ``source`` (a Parquet file or a folder of them) from the footers alone.

    >>> import tempfile, pandas as pd
    >>> path = Path(tempfile.mkdtemp()) / "emb.parquet"
    >>> pd.DataFrame({"id": ["a", "b"], "emb_0": [0.0, 1.0], "emb_1": [2.0, 3.0]}).to_parquet(path)
    >>> parts = open_embedding_parts(path)
    >>> parts.id_column, parts.dim, parts.count
    ('id', 2, 2)
    """
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source} does not exist; expected an embeddings table (Parquet)")
    files = part_files(source)
    first: tuple[str, tuple[str, ...], str] | None = None
    rows = []
    for path in files:
        if path.suffix.lower() != ".parquet":
            raise UserError(
                f"{path}: not a Parquet file; expected the embeddings table `embedforge embed` "
                "writes (a .parquet file or a folder of them)"
            )
        try:
            metadata = pq.read_metadata(path)
            schema = metadata.schema.to_arrow_schema()
        except (OSError, pa.ArrowException) as error:
            raise UserError(f"{path} is not a readable Parquet file ({error})") from None
        layout = _layout(path, schema)
        if first is None:
            first = layout
        elif layout != first:
            raise UserError(
                f"{path}: id column {layout[0]!r} ({layout[2]} ids) and {len(layout[1])} "
                f"embedding columns, but {files[0]} has id column {first[0]!r} ({first[2]} ids) "
                f"and {len(first[1])} embedding columns; expected part files of one table"
            )
        rows.append(metadata.num_rows)
    assert first is not None  # part_files returns at least one file
    return EmbeddingParts(tuple(files), first[0], first[1], tuple(rows))


def _layout(path: Path, schema: pa.Schema) -> tuple[str, tuple[str, ...], str]:
    """The id column, the embedding columns and the id kind (``str``/``int``) of one file."""
    names = schema.names
    columns = tuple(name for name in names if name.startswith("emb_"))
    if not columns or columns != tuple(f"emb_{i}" for i in range(len(columns))):
        raise UserError(
            f"{path}: expected embedding columns emb_0, emb_1, ... in order (as `embedforge "
            f"embed` writes them); found {', '.join(columns) or 'none'}"
        )
    id_type = schema.field(names[0]).type
    if names[0].startswith("emb_") or not (
        pa.types.is_string(id_type)
        or pa.types.is_large_string(id_type)
        or pa.types.is_integer(id_type)
    ):
        raise UserError(
            f"{path}: the first column {names[0]!r} ({id_type}) must hold the ids, strings "
            "or integers (as `embedforge embed` writes them)"
        )
    for name in columns:
        if not pa.types.is_floating(schema.field(name).type):
            raise UserError(f"{path}: column {name!r} is {schema.field(name).type}, not floats")
    return names[0], columns, "int" if pa.types.is_integer(id_type) else "str"


def shard_bounds(count: int, shards: int) -> list[int]:
    """Where each of ``shards`` near-equal runs of ``count`` rows starts, then ``count``.

    >>> shard_bounds(10, 3)
    [0, 3, 7, 10]
    """
    if not 1 <= shards <= count:
        raise UserError(
            f"--shards must be between 1 and the number of rows ({count}); got {shards}"
        )
    return [round(i * count / shards) for i in range(shards + 1)]


def read_shards(parts: EmbeddingParts, shards: int) -> Iterator[Shard]:
    """The table as ``shards`` runs of consecutive rows (:func:`shard_bounds`), whatever the
    part files' sizes: one shard's vectors are allocated at a time and filled batch by batch.
    """
    bounds = shard_bounds(parts.count, shards)
    batches = _batches(parts)
    pending: tuple[np.ndarray, np.ndarray] | None = None  # what the last batch left over
    for start, end in itertools.pairwise(bounds):
        vectors = np.empty((end - start, parts.dim), dtype=np.float32)  # (n, d)
        ids, filled = [], 0
        while filled < len(vectors):
            batch_ids, batch_vectors = pending if pending is not None else next(batches)
            take = min(len(batch_ids), len(vectors) - filled)
            vectors[filled : filled + take] = batch_vectors[:take]
            ids.append(batch_ids[:take])
            filled += take
            pending = (batch_ids[take:], batch_vectors[take:]) if take < len(batch_ids) else None
        yield Shard(start, np.concatenate(ids), vectors)


def read_rows(parts: EmbeddingParts, rows: np.ndarray) -> np.ndarray:
    """The vectors (len(rows), d) float32 of the sorted row numbers ``rows``, in one pass
    that keeps only them (a training sample of a table larger than memory)."""
    sample = np.empty((len(rows), parts.dim), dtype=np.float32)  # (s, d)
    start = filled = 0
    for _, vectors in _batches(parts):
        end = start + len(vectors)
        chosen = rows[filled : filled + np.searchsorted(rows[filled:], end)] - start
        sample[filled : filled + len(chosen)] = vectors[chosen]
        filled += len(chosen)
        start = end
    return sample


def _batches(parts: EmbeddingParts) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors (b, d) float32) batch after batch, over every part file in order."""
    for path in parts.files:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(BATCH_ROWS, columns=[parts.id_column, *parts.columns]):
            ids = batch.column(0)
            if ids.null_count:
                raise UserError(f"{path}: the id column {parts.id_column!r} has missing ids")
            vectors = np.stack(
                [
                    batch.column(i).to_numpy(zero_copy_only=False)
                    for i in range(1, batch.num_columns)
                ],
                axis=1,
            ).astype(np.float32, copy=False)  # (b, d); nulls become NaN
            if not np.isfinite(vectors).all():
                row, column = np.argwhere(~np.isfinite(vectors))[0]
                raise UserError(
                    f"{path}: {parts.columns[column]} of id {ids[int(row)].as_py()!r} is "
                    f"{vectors[row, column]}; expected finite embeddings"
                )
            if pa.types.is_integer(ids.type):
                yield ids.to_numpy().astype(np.int64), vectors
            else:
                yield np.array(ids.to_pylist(), dtype=np.str_), vectors
