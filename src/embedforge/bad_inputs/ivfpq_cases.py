"""Bad inputs of the sharded IVF-PQ index: its embeddings table, its options, its folder.

``embedforge index build RUN EMBEDDINGS --kind ivfpq`` reads a Parquet table (a file or a
folder of part files) shard by shard (:mod:`embedforge.index.ivfpq_build`); everything it
refuses is refused from the footers, before the run is loaded or a folder staged. The
built folder is hash-checked like any index folder, its on-disk lists included.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from embedforge.bad_inputs.case import Case, Make, Place
from embedforge.search import Searcher, build_ivfpq_search

ROWS, DIM = 300, 8  # DIM: the world's palette run embeds into 8 dimensions


def _table(path: Path, rows: int = ROWS, dim: int = DIM, seed: int = 0) -> Path:
    """An embeddings table as ``embedforge embed`` writes it: ``object_id``, ``emb_*``."""
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    frame = pd.DataFrame(vectors, columns=[f"emb_{i}" for i in range(dim)])
    frame.insert(0, "object_id", [f"o{seed}-{i}" for i in range(rows)])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def build_case(
    name: str, make: Make, source: str, options: list[str], expected: str, **where
) -> Case:
    """``index build --kind ivfpq`` over ``source`` (made by ``make``) with ``options``."""

    def argv(at: Place) -> list[str]:
        run = str(at.world.palette_run)
        return ["index", "build", run, at(source), "--out", at("out"), "--kind", "ivfpq", *options]

    def call(at: Place) -> object:
        names = [option.lstrip("-").replace("-", "_") for option in options[::2]]
        values = {name: int(value) for name, value in zip(names, options[1::2], strict=True)}
        return build_ivfpq_search(at.world.palette_run, at(source), at("out"), **values)

    return Case(name, make, argv=argv, call=call, expected=expected, **where)


def _two_dimensions(at: Place) -> None:
    _table(at.folder / "parts" / "a.parquet")
    _table(at.folder / "parts" / "b.parquet", dim=DIM + 1, seed=1)


def _damaged_lists(at: Place) -> None:
    table = _table(at.folder / "emb.parquet")
    build_ivfpq_search(at.world.palette_run, table, at.folder / "index", nlist=4)
    lists = at.folder / "index" / "index" / "lists.ivfdata"
    data = bytearray(lists.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lists.write_bytes(bytes(data))


def _search_damaged(at: Place) -> list[str]:
    return ["search", at("index"), str(at.world.palette_csv)]  # queries: palettes to embed


CASES = [
    build_case("ivfpq: part files of two dimensions", _two_dimensions, "parts", [],
               "expected part files of one table", path="parts/b.parquet"),
    build_case("ivfpq: --shards 0", lambda at: _table(at.folder / "emb.parquet"), "emb.parquet",
               ["--shards", "0"], "between 1 and the number of rows (300)", key="--shards"),
    build_case("ivfpq: more shards than rows", lambda at: _table(at.folder / "emb.parquet"),
               "emb.parquet", ["--shards", "301"], "between 1 and the number of rows (300)",
               key="--shards"),
    build_case("ivfpq: a table too small to train a PQ",
               lambda at: _table(at.folder / "emb.parquet", rows=100), "emb.parquet", [],
               "needs at least that many rows", path="emb.parquet"),
    build_case("ivfpq: --pq-m not a divisor of the dimension",
               lambda at: _table(at.folder / "emb.parquet"), "emb.parquet", ["--pq-m", "3"],
               "must divide the embedding dimension 8", key="--pq-m"),
    Case("ivfpq: lists.ivfdata changed", _damaged_lists, argv=_search_damaged,
         call=lambda at: Searcher.load(at("index")), expected="build the index again",
         path="index/index/lists.ivfdata"),
]  # fmt: skip
