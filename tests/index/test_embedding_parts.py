from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedforge.errors import UserError
from embedforge.index import embedding_parts
from embedforge.index.embedding_parts import (
    open_embedding_parts,
    read_rows,
    read_shards,
    shard_bounds,
)


def write_table(path: Path, ids: list, vectors: np.ndarray, **extra: list) -> Path:
    """An embeddings table as `embedforge embed` writes it: the id column, extras, emb_*."""
    frame = pd.DataFrame(vectors, columns=[f"emb_{i}" for i in range(vectors.shape[1])])
    for name, values in extra.items():
        frame.insert(0, name, values)
    frame.insert(0, "object_id", ids)
    frame.to_parquet(path, index=False)
    return path


def write_parts(folder: Path, ids: list, vectors: np.ndarray, sizes: list[int]) -> Path:
    folder.mkdir()
    start = 0
    for number, size in enumerate(sizes):
        rows = slice(start, start + size)
        write_table(folder / f"part-{number:03d}.parquet", ids[rows], vectors[rows])
        start += size
    return folder


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("sizes", [[50], [13, 1, 30, 6]])
def test_shards_are_the_table_in_order_whatever_the_part_sizes(
    tmp_path: Path, shards: int, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding_parts, "BATCH_ROWS", 4)  # shards cut across batches too
    vectors = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    ids = [f"id{i}" for i in range(50)]
    parts = open_embedding_parts(write_parts(tmp_path / "parts", ids, vectors, sizes))
    assert (parts.count, parts.dim, parts.id_column) == (50, 3, "object_id")
    found = list(read_shards(parts, shards))
    assert [s.start for s in found] == shard_bounds(50, shards)[:-1]
    assert np.array_equal(np.concatenate([s.vectors for s in found]), vectors)
    assert np.concatenate([s.ids for s in found]).tolist() == ids
    assert max(len(s.ids) for s in found) - min(len(s.ids) for s in found) <= 1


def test_integer_ids_come_back_as_integers_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    ids = [10**12 + i for i in range(6)]
    path = write_table(tmp_path / "e.parquet", ids, vectors, split=["train"] * 6)
    (shard,) = read_shards(open_embedding_parts(path), 1)
    assert shard.ids.dtype == np.int64 and shard.ids.tolist() == ids
    assert np.array_equal(shard.vectors, vectors)


def test_read_rows_takes_exactly_the_asked_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding_parts, "BATCH_ROWS", 3)
    vectors = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    parts = open_embedding_parts(write_parts(tmp_path / "p", list(range(40)), vectors, [7, 33]))
    rows = np.array([0, 2, 3, 6, 7, 8, 20, 39])
    assert np.array_equal(read_rows(parts, rows), vectors[rows])


@pytest.mark.parametrize("shards", [0, -1, 11])
def test_shards_outside_one_to_the_row_count_are_refused(shards: int) -> None:
    with pytest.raises(UserError, match="--shards must be between 1 and the number of rows"):
        shard_bounds(10, shards)


def test_part_files_of_another_dimension_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write_table(folder / "a.parquet", ["a"], np.zeros((1, 4), np.float32))
    write_table(folder / "b.parquet", ["b"], np.zeros((1, 5), np.float32))
    with pytest.raises(UserError, match=r"b\.parquet.*5 embedding columns.*a\.parquet.*4"):
        open_embedding_parts(folder)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": ["a"], "x": [1.0]}), "expected embedding columns emb_0"),
        (pd.DataFrame({"id": ["a"], "emb_1": [1.0]}), "expected embedding columns emb_0"),
        (pd.DataFrame({"id": [1.5], "emb_0": [1.0]}), "must hold the ids"),
        (pd.DataFrame({"id": ["a"], "emb_0": ["x"]}), "'emb_0' is .*string, not floats"),
    ],
)
def test_tables_not_shaped_like_embeddings_are_refused(
    tmp_path: Path, frame: pd.DataFrame, message: str
) -> None:
    frame.to_parquet(tmp_path / "e.parquet", index=False)
    with pytest.raises(UserError, match=message):
        open_embedding_parts(tmp_path / "e.parquet")


def test_a_missing_value_names_the_file_column_and_id(tmp_path: Path) -> None:
    vectors = np.ones((3, 2), np.float32)
    vectors[1, 1] = np.nan
    parts = open_embedding_parts(write_table(tmp_path / "e.parquet", ["a", "b", "c"], vectors))
    with pytest.raises(UserError, match=r"e\.parquet: emb_1 of id 'b' is nan"):
        list(read_shards(parts, 1))


def test_csv_tables_and_missing_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("id,emb_0\na,1.0\n")
    with pytest.raises(UserError, match="not a Parquet file"):
        open_embedding_parts(tmp_path / "e.csv")
    with pytest.raises(UserError, match="does not exist"):
        open_embedding_parts(tmp_path / "nothing.parquet")
