import json
from pathlib import Path

import numpy as np
import pytest
from tests.index.ivfpq_data import (
    COUNT,
    clustered,
    exact_neighbours,
    recall_at,
    write_clustered_parts,
)

from embedforge.errors import UserError
from embedforge.index import ivfpq_build
from embedforge.index.embedding_parts import open_embedding_parts
from embedforge.index.ivfpq_build import build_ivfpq, default_train_size, resolve_params
from embedforge.index.ivfpq_index import IVFPQIndex

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    return write_clustered_parts(tmp_path_factory.mktemp("table") / "parts")


@pytest.fixture(scope="module")
def sharded(table: tuple[Path, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ivfpq(table[0], tmp_path_factory.mktemp("sharded") / "index", shards=3)


QUERIES = clustered(200, 16, seed=1)


@pytest.mark.parametrize("rerank", [0, 10])
def test_a_sharded_index_answers_exactly_like_the_unsharded_one(
    table: tuple[Path, np.ndarray], tmp_path: Path, rerank: int
) -> None:
    one = IVFPQIndex.load(build_ivfpq(table[0], tmp_path / "one", shards=1, rerank=rerank))
    three = IVFPQIndex.load(build_ivfpq(table[0], tmp_path / "three", shards=3, rerank=rerank))
    a, b = one.search(QUERIES, k=10), three.search(QUERIES, k=10)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.ids, b.ids)
    assert np.array_equal(a.distances, b.distances)


def test_recall_at_10_against_exact_search_is_at_least_095(
    table: tuple[Path, np.ndarray], sharded: Path
) -> None:
    found = IVFPQIndex.load(sharded).search(QUERIES, k=10)
    assert recall_at(found.indices, exact_neighbours(table[1], QUERIES, 10)) >= 0.95


def test_pq_distances_alone_miss_what_the_reranking_finds(
    table: tuple[Path, np.ndarray], tmp_path: Path, sharded: Path
) -> None:
    """rerank=0 is a real IVF-PQ: its recall is lower, so the re-ranking is what lifts it."""
    plain = IVFPQIndex.load(build_ivfpq(table[0], tmp_path / "plain", shards=3, rerank=0))
    exact = exact_neighbours(table[1], QUERIES, 10)
    plain_recall = recall_at(plain.search(QUERIES, k=10).indices, exact)
    reranked_recall = recall_at(IVFPQIndex.load(sharded).search(QUERIES, k=10).indices, exact)
    assert plain_recall < reranked_recall


def test_the_folder_holds_only_the_index_files(sharded: Path) -> None:
    names = sorted(path.name for path in sharded.iterdir())
    assert names == [
        ".embedforge.json", "embeddings.npy", "ids.json", "index.faiss", "lists.ivfdata",
        "meta.json",
    ]  # fmt: skip
    assert not [p for p in sharded.parent.iterdir() if p.name.startswith(".")]  # no staging


def test_the_recorded_parameters_are_the_defaults_for_the_table(sharded: Path) -> None:
    params = IVFPQIndex.load(sharded).params
    nprobe = params.pop("nprobe")
    assert params == {
        "nlist": 141, "pq_m": 4, "pq_bits": 8, "rerank": 10, "shards": 3,
        "train_size": default_train_size(COUNT, 141),
    }  # fmt: skip
    calibration = json.loads((sharded / "meta.json").read_text())["calibration"]
    assert calibration["recall"] >= 0.95 and calibration["target"] == 0.95
    assert nprobe & (nprobe - 1) == 0  # the smallest power of two that reached it


def test_a_given_nprobe_is_kept_and_its_recall_measured(
    table: tuple[Path, np.ndarray], tmp_path: Path, sharded: Path
) -> None:
    folder = build_ivfpq(table[0], tmp_path / "index", nprobe=1)
    assert IVFPQIndex.load(folder).params["nprobe"] == 1
    recall = json.loads((folder / "meta.json").read_text())["calibration"]["recall"]
    assert recall < json.loads((sharded / "meta.json").read_text())["calibration"]["recall"]


def test_a_users_folder_is_refused_before_anything_is_read(
    table: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="did not write"):
        build_ivfpq(table[0], folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_our_folder_is_replaced_only_with_overwrite(
    table: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    folder = build_ivfpq(table[0], tmp_path / "index", shards=2, nlist=16, pq_m=2)
    with pytest.raises(UserError, match="already holds"):
        build_ivfpq(table[0], folder, shards=2)
    build_ivfpq(table[0], folder, shards=2, nlist=32, pq_m=2, overwrite=True)
    assert IVFPQIndex.load(folder).params["nlist"] == 32


def test_a_failed_build_leaves_nothing_behind(
    table: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("killed while adding")

    monkeypatch.setattr(ivfpq_build, "read_shards", fail)
    with pytest.raises(RuntimeError, match="killed"):
        build_ivfpq(table[0], tmp_path / "index", shards=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shards": 0}, "--shards must be between 1"),
        ({"shards": COUNT + 1}, "--shards must be between 1"),
        ({"nlist": COUNT + 1}, "--nlist must be between 1"),
        ({"nlist": 100, "nprobe": 101}, "--nprobe must be between 1 and nlist"),
        ({"nprobe": 0}, "--nprobe must be between 1 and nlist"),
        ({"pq_m": 3}, "--pq-m must divide the embedding dimension 16"),
        ({"rerank": -1}, "--rerank must be 0"),
        ({"train_size": 100}, "--train-size must be at least nlist"),
    ],
)
def test_bad_parameters_are_one_clear_error(
    table: tuple[Path, np.ndarray], options: dict, message: str
) -> None:
    defaults = {"shards": 1, "nlist": None, "nprobe": None, "pq_m": None, "rerank": 10,
                "train_size": None}  # fmt: skip
    with pytest.raises(UserError, match=message):
        resolve_params(open_embedding_parts(table[0]), **{**defaults, **options})
