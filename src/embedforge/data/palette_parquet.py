"""Read a palette Parquet file whole, or ``chunk_rows`` rows at a time (pyarrow's batches).

Columns keep the types the file stores (integer ids stay integers), and rows are named by
their position in the file counted from 0, whichever chunk they arrive in.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from embedforge.data.palette_csv import one_line
from embedforge.data.palette_table import PaletteTable, Place
from embedforge.errors import UserError


def by_position(frame: pd.DataFrame, label: str, first_row: int = 0) -> PaletteTable:
    """A table whose rows are named by position (Parquet, DataFrame), from ``first_row``."""
    numbers = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return PaletteTable(frame.reset_index(drop=True), Place(label, numbers, "row"))


def parquet_tables(path: Path, label: str, chunk_rows: int | None = None) -> Iterator[PaletteTable]:
    """The file's rows, ``chunk_rows`` at a time (all at once when None)."""
    try:
        if chunk_rows is None:
            frames: Iterator[pd.DataFrame] = iter([pd.read_parquet(path)])
        else:
            batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
            frames = (batch.to_pandas() for batch in batches)
        found = 0
        for frame in frames:
            if len(frame):
                yield by_position(frame, label, found)
            found += len(frame)
    except FileNotFoundError:
        raise UserError(f"{label}: file not found; expected a palette table there") from None
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise UserError(
            f"{label}: could not read it as Parquet ({one_line(error)}); expected a complete "
            "Parquet file"
        ) from None
    if not found:
        raise UserError(f"{label}: no rows; expected one row per colour")
