"""A table written in pieces: the same file as written whole, and no file when a piece fails."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from embedforge.files.table_writer import write_table_pieces


def pieces(count: int) -> Iterator[pd.DataFrame]:
    for k in range(count):
        yield pd.DataFrame({"id": [f"{k}a", f"{k}b"], "emb_0": [k + 0.5, k - 0.25]})


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_pieces_make_the_table_written_whole(tmp_path: Path, suffix: str) -> None:
    whole = pd.concat(list(pieces(3)), ignore_index=True)
    assert write_table_pieces(tmp_path / f"p{suffix}", pieces(3)) == 6
    write_table_pieces(tmp_path / f"w{suffix}", [whole])
    if suffix == ".csv":
        assert (tmp_path / "p.csv").read_text() == (tmp_path / "w.csv").read_text()
        assert (tmp_path / "w.csv").read_text() == whole.to_csv(index=False)
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), whole)
        assert pq.ParquetFile(tmp_path / "p.parquet").num_row_groups == 3


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_failing_piece_leaves_no_file(tmp_path: Path, suffix: str) -> None:
    def failing() -> Iterator[pd.DataFrame]:
        yield from pieces(2)
        raise RuntimeError("the third piece failed")

    out = tmp_path / f"e{suffix}"
    out.write_text("the old file")
    with pytest.raises(RuntimeError, match="third piece"):
        write_table_pieces(out, failing())
    assert [path.name for path in tmp_path.iterdir()] == [out.name]
    assert out.read_text() == "the old file"
