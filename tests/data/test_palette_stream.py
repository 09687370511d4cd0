"""Streaming a palette table: chunk boundaries anywhere give the sets ``read_palettes``
gives, by id; bad rows and objects whose rows are apart are named by file and line."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedforge.data import palette_csv
from embedforge.data.palette_stream import stream_palettes
from embedforge.data.palettes import Palettes, PaletteSpec, read_palettes
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.errors import UserError

HEADER = "ratio,color_r,color_g,color_b,object_id"


def grouped_rows(n: int = 30, seed: int = 3) -> pd.DataFrame:
    """Synthetic palette rows, each object's rows together (in the order of their ids)."""
    return synthetic_palettes(n, seed=seed).rows.sort_values("object_id", kind="stable")


def save(rows: pd.DataFrame, path: Path) -> Path:
    """``rows`` as Parquet or CSV (plain or gzipped), by the path's suffix."""
    if path.suffix == ".parquet":
        rows.to_parquet(path, index=False)
    else:
        rows.to_csv(path, index=False)
    return path


def by_id(chunks: list[Palettes]) -> dict[object, np.ndarray]:
    """Each object's packed rows (padding dropped), over all chunks."""
    sets = {}
    for palettes in chunks:
        for object_id, values, mask in zip(
            palettes.ids, palettes.sets.values, palettes.sets.mask, strict=True
        ):
            assert object_id not in sets, f"{object_id!r} packed twice"
            sets[object_id] = values[mask].numpy()
    return sets


def assert_same_sets(chunks: list[Palettes], whole: Palettes) -> None:
    streamed, expected = by_id(chunks), by_id([whole])
    assert streamed.keys() == expected.keys()
    for object_id, values in expected.items():
        np.testing.assert_array_equal(streamed[object_id], values)


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 64, 100_000])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_chunks_that_split_objects_give_the_whole_tables_sets(
    tmp_path: Path, chunk_rows: int, suffix: str
) -> None:
    rows = grouped_rows()
    path = save(rows, tmp_path / f"palette{suffix}")
    chunks = list(stream_palettes(path, PaletteSpec(colour_space="lab"), chunk_rows=chunk_rows))
    assert_same_sets(chunks, read_palettes(path, colour_space="lab"))
    assert sum(p.num_rows for p in chunks) == len(rows)
    ids = np.concatenate([p.ids for p in chunks])
    assert ids.tolist() == rows["object_id"].unique().tolist()  # the order they first appear


def test_objects_larger_than_a_chunk_and_truncated_sets_are_whole(tmp_path: Path) -> None:
    weights = np.arange(1, 21, dtype=float)
    rows = pd.DataFrame({"object_id": ["big"] * 20 + ["small"], "percentage": [*weights, 100]})
    rows["hex"] = "#102030"
    path = save(rows, tmp_path / "color.csv")
    chunks = list(stream_palettes(path, PaletteSpec(max_rows=5), chunk_rows=3))
    assert_same_sets(chunks, read_palettes(path, max_rows=5))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_folder_of_part_files_is_one_table_in_name_order(tmp_path: Path, suffix: str) -> None:
    rows = grouped_rows(40)
    ids = rows["object_id"].unique()
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, part in enumerate(np.array_split(ids, 3)):
        save(rows[rows["object_id"].isin(part)], folder / f"part-{k:05d}{suffix}")
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.crc").write_text("not a table")
    chunks = list(stream_palettes(folder, PaletteSpec(), chunk_rows=5))
    assert_same_sets(chunks, read_palettes(rows))
    assert np.concatenate([p.ids for p in chunks]).tolist() == ids.tolist()


def test_ids_come_back_as_written_and_parquet_keeps_their_type(tmp_path: Path) -> None:
    ids = ["007", "1e3", "NA", " 42", "鯨-07", "0012"]
    path = tmp_path / "color.csv"
    path.write_text("object_id,percentage,hex\n" + "".join(f"{i},100,#ff0000\n" for i in ids))
    streamed = np.concatenate([p.ids for p in stream_palettes(path, PaletteSpec(), chunk_rows=2)])
    assert streamed.tolist() == ids
    numbers = pd.DataFrame({"object_id": [7, 7, 3], "percentage": [50, 50, 100], "hex": "#ffffff"})
    numbers.to_parquet(tmp_path / "color.parquet", index=False)
    (both,) = stream_palettes(tmp_path / "color.parquet", PaletteSpec(), chunk_rows=2)
    assert both.ids.tolist() == [7, 3] and both.ids.dtype.kind == "i"  # 7 carried over


def test_a_table_in_one_chunk_may_hold_its_rows_in_any_order(tmp_path: Path) -> None:
    rows = grouped_rows().sample(frac=1.0, random_state=0)
    path = tmp_path / "palette.csv"
    rows.to_csv(path, index=False)
    assert_same_sets(list(stream_palettes(path, PaletteSpec())), read_palettes(path))


@pytest.mark.parametrize("chunk_rows", [1, 2, 3])
def test_an_object_whose_rows_are_apart_is_named_with_its_line(
    tmp_path: Path, chunk_rows: int
) -> None:
    path = tmp_path / "palette.csv"
    path.write_text(f"{HEADER}\n1,1,2,3,a\n1,1,2,3,b\n0.5,1,2,3,c\n0.5,1,2,3,c\n1,4,5,6,a\n")
    with pytest.raises(UserError) as refused:
        list(stream_palettes(path, PaletteSpec(), chunk_rows=chunk_rows))
    message = str(refused.value)
    assert message.startswith(f"{path}, line 6, column 'object_id': object 'a' appears again")
    assert "expected each object's rows together" in message


def test_an_object_in_two_part_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(f"{HEADER}\n1,1,2,3,x\n")
    (tmp_path / "b.csv").write_text(f"{HEADER}\n1,1,2,3,y\n1,1,2,3,x\n")
    with pytest.raises(UserError, match=r"b\.csv, line 3, column 'object_id': object 'x' appears"):
        list(stream_palettes(tmp_path, PaletteSpec()))


def test_a_bad_cell_in_a_later_chunk_is_named_by_its_line(tmp_path: Path) -> None:
    lines = [f"1,10,20,30,o{i:03d}" for i in range(60)]
    lines[47] = "1,10,300,30,o047"  # line 49 of the file
    path = tmp_path / "palette.csv"
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(UserError) as refused:
        list(stream_palettes(path, PaletteSpec(), chunk_rows=7))
    with pytest.raises(UserError) as whole:
        read_palettes(path)
    expected = f"{path}, line 49, column 'color_g': expected a colour value between 0 and 255"
    assert str(refused.value) == str(whole.value) and str(refused.value).startswith(expected)


def test_a_bad_cell_in_a_later_parquet_chunk_is_named_by_its_row(tmp_path: Path) -> None:
    rows = grouped_rows()
    rows.iloc[40, rows.columns.get_loc("ratio")] = -1.0
    path = tmp_path / "palette.parquet"
    rows.to_parquet(path, index=False)
    expected = r"palette\.parquet, row 40, column 'ratio': expected a non-negative weight"
    with pytest.raises(UserError, match=expected):
        list(stream_palettes(path, PaletteSpec(), chunk_rows=16))


def test_a_field_too_many_and_a_blank_line_in_a_later_chunk(tmp_path: Path) -> None:
    lines = [f"1,10,20,30,o{i:03d}" for i in range(30)]
    lines[10] = ""  # blank lines count as lines
    lines[20] = "1,10,20,30,o020,9"  # line 22
    path = tmp_path / "palette.csv"
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"palette\.csv, line 22: 6 fields; expected 5"):
        list(stream_palettes(path, PaletteSpec(), chunk_rows=4))


def test_utf8_is_checked_across_reads_and_a_bad_byte_named_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(palette_csv, "_READ_BYTES", 5)  # split characters between reads
    lines = [f"1,10,20,30,鯨{i:02d}" for i in range(30)]
    path = tmp_path / "palette.csv"
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    ids = np.concatenate([p.ids for p in stream_palettes(path, PaletteSpec(), chunk_rows=4)])
    assert ids.tolist() == [f"鯨{i:02d}" for i in range(30)]
    path.write_bytes(path.read_bytes().replace("鯨17".encode(), "caf\xe9".encode("latin-1")))
    with pytest.raises(UserError, match=r"palette\.csv, line 19: byte 0xe9 is not UTF-8"):
        list(stream_palettes(path, PaletteSpec(), chunk_rows=4))


def test_folders_without_tables_or_of_two_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="a folder without part files"):
        list(stream_palettes(tmp_path, PaletteSpec()))
    (tmp_path / "a.csv").write_text(f"{HEADER}\n1,1,2,3,x\n")
    grouped_rows().to_parquet(tmp_path / "b.parquet")
    with pytest.raises(UserError, match="holds Parquet and CSV files"):
        list(stream_palettes(tmp_path, PaletteSpec()))
