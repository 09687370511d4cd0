"""Damaged index folders, met by ``embedforge search`` and ``Searcher.load``.

Each case copies the world's palette index into its folder as ``index/`` and damages the
copy: its FAISS file cut short, swapped for another index's of the same size, its ids
swapped, its vectors edited, its hashes removed. An index folder is trusted input whose
files are hash-checked before anything parses them (:mod:`embedforge.index.embedding_index`);
``--rebuild`` is the way to use one from elsewhere, so the message must say what to do.
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from embedforge.bad_inputs.case import Case, Place
from embedforge.search import Searcher

FAISS = "index/index/index.faiss"


def _queries(at: Place) -> str:
    return str(at.copy(at.world.palette_csv, "queries.csv"))


def index_case(name: str, damage: Callable[[Path], object], expected: str, path: str) -> Case:
    """The world's palette index copied to ``index/``, ``damage(index/index)`` done to it,
    then searched; the message must name ``path``."""

    def make(at: Place) -> None:
        damage(at.copy(at.world.palette_index, "index") / "index")
        _queries(at)

    return Case(
        name,
        make,
        argv=lambda at: ["search", at("index"), at("queries.csv")],
        call=lambda at: Searcher.load(at("index")).search(at("queries.csv")),
        expected=expected,
        path=path,
    )


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _swap_faiss(index: Path) -> None:
    """Another index of the same count and dimension in place of index.faiss."""
    import faiss

    vectors = np.load(index / "embeddings.npy")
    other = faiss.IndexFlatL2(vectors.shape[1])
    other.add(np.ascontiguousarray(vectors[::-1]))
    faiss.write_index(other, str(index / "index.faiss"))


def _swap_ids(index: Path) -> None:
    ids = json.loads((index / "ids.json").read_text())
    (index / "ids.json").write_text(json.dumps(ids[::-1]))


def _edit_vectors(index: Path) -> None:
    vectors = np.load(index / "embeddings.npy")
    vectors[0, 0] += 1.0
    np.save(index / "embeddings.npy", vectors, allow_pickle=False)


def _drop_hashes(index: Path) -> None:
    meta = json.loads((index / "meta.json").read_text())
    meta.pop("sha256")
    (index / "meta.json").write_text(json.dumps(meta))


REBUILD = "rebuild the index from embeddings.npy"
CASES = [
    index_case("index: index.faiss truncated", lambda i: _cut_in_half(i / "index.faiss"),
               REBUILD, FAISS),
    index_case("index: index.faiss swapped for another", _swap_faiss, REBUILD, FAISS),
    index_case("index: ids.json swapped", _swap_ids, "build the index again",
               "index/index/ids.json"),
    index_case("index: embeddings.npy edited", _edit_vectors, "build the index again",
               "index/index/embeddings.npy"),
    index_case("index: meta.json without its hashes", _drop_hashes, "records no sha256",
               "index/index/ids.json"),
]  # fmt: skip
