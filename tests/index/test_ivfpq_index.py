import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.index.ivfpq_data import clustered, exact_neighbours, recall_at, write_clustered_parts
from tests.index.test_embedding_parts import write_table

from embedforge.errors import UserError
from embedforge.index.ivfpq_build import build_ivfpq
from embedforge.index.ivfpq_index import IVFPQIndex

pytest.importorskip("faiss")
QUERIES = clustered(100, 16, seed=2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """An index folder built once; tests copy it before changing anything."""
    parts, vectors = write_clustered_parts(tmp_path_factory.mktemp("table") / "parts")
    return build_ivfpq(parts, tmp_path_factory.mktemp("built") / "index", shards=3), vectors


@pytest.fixture
def copy(built: tuple[Path, np.ndarray], tmp_path: Path) -> Path:
    return Path(shutil.copytree(built[0], tmp_path / "index"))


def test_the_index_still_works_after_its_folder_moved(
    built: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    expected = IVFPQIndex.load(built[0]).search(QUERIES, k=10)
    moved = Path(shutil.move(shutil.copytree(built[0], tmp_path / "a"), tmp_path / "b"))
    found = IVFPQIndex.load(moved).search(QUERIES, k=10)
    assert not (tmp_path / "a").exists()
    assert np.array_equal(found.indices, expected.indices)
    assert np.array_equal(found.distances, expected.distances)


def test_a_copy_reads_its_own_lists_not_the_originals(
    built: tuple[Path, np.ndarray], copy: Path
) -> None:
    """Damaging the copy's lists (hashes re-recorded) changes the copy's answers only."""
    index = IVFPQIndex.load(copy)
    before = index.search(QUERIES, k=10)
    lists = copy / "lists.ivfdata"
    lists.write_bytes(bytes(len(lists.read_bytes())))  # zero codes and ids
    meta = json.loads((copy / "meta.json").read_text())
    from embedforge.files.file_sha256 import file_sha256

    meta["sha256"]["lists.ivfdata"] = file_sha256(lists)
    (copy / "meta.json").write_text(json.dumps(meta))
    assert not np.array_equal(IVFPQIndex.load(copy).search(QUERIES, k=10).ids, before.ids)
    assert np.array_equal(IVFPQIndex.load(built[0]).search(QUERIES, k=10).ids, before.ids)


@pytest.mark.parametrize("name", ["lists.ivfdata", "index.faiss", "ids.json", "embeddings.npy"])
def test_a_changed_file_is_refused_by_its_hash(copy: Path, name: str) -> None:
    path = copy / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=rf"{name}: its sha256 is .* build the index again"):
        IVFPQIndex.load(copy)


def test_a_missing_file_is_named(copy: Path) -> None:
    (copy / "lists.ivfdata").unlink()
    with pytest.raises(UserError, match=r"lists\.ivfdata is missing"):
        IVFPQIndex.load(copy)


def test_distances_are_exact_for_the_returned_rows(built: tuple[Path, np.ndarray]) -> None:
    found = IVFPQIndex.load(built[0]).search(QUERIES, k=5)
    vectors = built[1]
    exact = np.linalg.norm(vectors[found.indices] - QUERIES[:, None, :], axis=2)
    assert np.allclose(found.distances, exact, atol=1e-4)
    assert (np.diff(found.distances, axis=1) >= 0).all()


def test_more_lists_visited_find_at_least_as_much(built: tuple[Path, np.ndarray]) -> None:
    index = IVFPQIndex.load(built[0])
    exact = exact_neighbours(built[1], QUERIES, 10)
    recalls = []
    for nprobe in (1, 8, index.params["nlist"]):
        index.set_nprobe(nprobe)
        recalls.append(recall_at(index.search(QUERIES, k=10).indices, exact))
    assert recalls[0] < recalls[1] <= recalls[2]
    assert recalls[2] > 0.99  # every list visited: only the PQ candidates limit it
    with pytest.raises(UserError, match="--nprobe must be between 1 and the index's nlist"):
        index.set_nprobe(index.params["nlist"] + 1)


@pytest.mark.parametrize("ids", [[10**15 + 3 * i for i in range(3000)], None])
def test_ids_come_back_exactly_as_written(tmp_path: Path, ids: list | None) -> None:
    vectors = clustered(3000, 8, seed=3)
    ids = ids or [f"  Odd id №{i} " for i in range(3000)]
    path = write_table(tmp_path / "e.parquet", ids, vectors)
    index = IVFPQIndex.load(build_ivfpq(path, tmp_path / "index", shards=2, nlist=16))
    found = index.search(vectors[[0, 1234, 2999]], k=1).ids[:, 0].tolist()
    assert found == [ids[0], ids[1234], ids[2999]]
    assert type(found[0]) is type(ids[0])


def test_inner_product_ranks_by_the_exact_product(tmp_path: Path) -> None:
    vectors = clustered(5000, 8, seed=4)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = write_table(tmp_path / "e.parquet", list(range(5000)), vectors)
    index = IVFPQIndex.load(
        build_ivfpq(path, tmp_path / "index", metric="inner_product", nlist=32, nprobe=32)
    )
    queries = vectors[:50]
    found = index.search(queries, k=10)
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    assert recall_at(found.indices, exact) > 0.97
    assert np.allclose(found.distances, np.einsum("qkd,qd->qk", vectors[found.indices], queries),
                       atol=1e-5)  # fmt: skip
    assert (np.diff(found.distances, axis=1) <= 0).all()


def test_k_beyond_the_count_is_clipped_and_bad_queries_are_errors(tmp_path: Path) -> None:
    vectors = clustered(300, 4, seed=5)
    path = write_table(tmp_path / "e.parquet", list(range(300)), vectors)
    index = IVFPQIndex.load(build_ivfpq(path, tmp_path / "index", nlist=2, nprobe=2, pq_m=1))
    assert index.search(vectors[:2], k=1000).indices.shape == (2, 300)
    with pytest.raises(UserError, match="k must be at least 1"):
        index.search(vectors[:2], k=0)
    with pytest.raises(UserError, match="queries have dimension 3 but the index holds 4"):
        index.search(vectors[:2, :3], k=1)
