import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from embedforge.errors import UserError
from embedforge.index import embedding_index
from embedforge.index.embedding_index import EmbeddingIndex, default_nlist
from embedforge.metrics.knn import knn_search

needs_faiss = pytest.mark.skipif(
    embedding_index.import_faiss() is None, reason="faiss is not installed (embedforge[faiss])"
)
BACKENDS = [pytest.param("faiss", marks=needs_faiss), "torch"]


def _brute_force(queries: np.ndarray, reference: np.ndarray, metric: str) -> np.ndarray:
    """(nq, n) float64 distances (l2) or inner products."""
    q, r = queries.astype(np.float64), reference.astype(np.float64)
    if metric == "inner_product":
        return q @ r.T
    return np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))


def _assert_exact_neighbours(result, queries, reference, k, metric, tol=1e-4) -> None:
    """Distances equal the brute force's k best; each returned row really is at that distance.

    Ties are tolerated: which of several equally near rows comes back is not checked.
    """
    full = _brute_force(queries, reference, metric)  # (nq, n)
    expected = -np.sort(-full, axis=1) if metric == "inner_product" else np.sort(full, axis=1)
    np.testing.assert_allclose(result.distances, expected[:, :k], atol=tol, rtol=tol)
    actual = np.take_along_axis(full, result.indices, axis=1)
    np.testing.assert_allclose(result.distances, actual, atol=tol, rtol=tol)
    assert all(len(set(row)) == k for row in result.indices.tolist())


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, d)) * 4
    return (centres[rng.integers(0, 20, n)] + rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", ["l2", "inner_product"])
@pytest.mark.parametrize("ties", [False, True])
def test_flat_matches_brute_force(backend: str, metric: str, ties: bool) -> None:
    rng = np.random.default_rng(0)
    if ties:  # a small integer grid: many rows at exactly the same distance
        reference = rng.integers(0, 3, size=(150, 4)).astype(np.float32)
        queries = rng.integers(0, 3, size=(25, 4)).astype(np.float32)
    else:
        reference = rng.normal(size=(150, 8)).astype(np.float32)
        queries = rng.normal(size=(25, 8)).astype(np.float32)
    ids = [f"item{i}" for i in range(len(reference))]
    index = EmbeddingIndex.build(reference, ids, metric=metric, backend=backend)
    assert index.backend == backend and len(index) == 150
    result = index.search(queries, k=7)
    assert result.distances.shape == result.indices.shape == result.ids.shape == (25, 7)
    assert result.distances.dtype == np.float32 and result.indices.dtype == np.int64
    _assert_exact_neighbours(result, queries, reference, 7, metric)
    assert result.ids.tolist() == [[ids[i] for i in row] for row in result.indices.tolist()]


@needs_faiss
def test_l2_distances_are_euclidean_like_knn_search() -> None:
    rng = np.random.default_rng(1)
    reference, queries = rng.normal(size=(60, 5)), rng.normal(size=(9, 5))
    result = EmbeddingIndex.build(reference, np.arange(60)).search(queries, k=4)
    distances, indices = knn_search(
        torch.tensor(queries, dtype=torch.float32), torch.tensor(reference, dtype=torch.float32), 4
    )
    np.testing.assert_allclose(result.distances, distances.numpy(), atol=1e-5)
    assert np.array_equal(result.indices, indices.numpy())


@needs_faiss
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("metric", ["l2", "inner_product"])
def test_approximate_recall_at_10(kind: str, metric: str) -> None:
    reference = _clustered(2000, 16, seed=2)
    queries = _clustered(100, 16, seed=3)
    exact = EmbeddingIndex.build(reference, np.arange(2000), metric=metric).search(queries, 10)
    approximate = EmbeddingIndex.build(reference, np.arange(2000), metric=metric, kind=kind)
    found = approximate.search(queries, 10).indices
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact.indices, strict=True)])
    assert recall >= 0.9, recall


@needs_faiss
def test_ivf_defaults() -> None:
    index = EmbeddingIndex.build(_clustered(2000, 4, seed=4), np.arange(2000), kind="ivf")
    assert index.params == {"nlist": 45, "nprobe": 8}
    assert default_nlist(1) == 1 and default_nlist(10**6) == 1000
    with pytest.raises(ValueError, match="nlist"):
        EmbeddingIndex.build(np.eye(2), [1, 2], kind="ivf", nlist=3)


@pytest.mark.parametrize(
    "kind,backend",
    [
        pytest.param("flat", "faiss", marks=needs_faiss),
        pytest.param("ivf", "faiss", marks=needs_faiss),
        pytest.param("hnsw", "faiss", marks=needs_faiss),
        ("flat", "torch"),
    ],
)
@pytest.mark.parametrize("ids", [[f"whale_{i}" for i in range(300)], list(range(300, 0, -1))])
def test_save_load_round_trip(tmp_path: Path, kind: str, backend: str, ids: list) -> None:
    reference = _clustered(300, 6, seed=5)
    queries = _clustered(20, 6, seed=6)
    index = EmbeddingIndex.build(
        reference, ids, metric="inner_product", kind=kind, backend=backend, ef_search=40
    )
    index.save(tmp_path / "index")
    loaded = EmbeddingIndex.load(tmp_path / "index")
    assert (loaded.kind, loaded.metric, loaded.backend, loaded.dim) == (
        kind,
        "inner_product",
        backend,
        6,
    )
    assert loaded.params == index.params and loaded.ids.dtype == index.ids.dtype
    before, after = index.search(queries, 5), loaded.search(queries, 5)
    for field in ("distances", "indices", "ids"):
        assert np.array_equal(getattr(before, field), getattr(after, field)), field
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temporary left


def test_save_replaces_an_index_but_not_other_folders(tmp_path: Path) -> None:
    first = EmbeddingIndex.build(np.eye(3), ["a", "b", "c"])
    second = EmbeddingIndex.build(np.eye(2), ["x", "y"])
    first.save(tmp_path / "index")
    with pytest.raises(UserError, match="already holds an embedforge index"):
        second.save(tmp_path / "index")
    second.save(tmp_path / "index", overwrite=True)
    assert EmbeddingIndex.load(tmp_path / "index").ids.tolist() == ["x", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(UserError, match="mine: holds files embedforge did not write"):
            first.save(tmp_path / "mine", overwrite=overwrite)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def _write_garbage(folder: Path, name: str) -> None:
    (folder / name).write_bytes(b"\x00garbage")


def _edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, **changes}))


DAMAGES = {
    "no meta": (lambda f: (f / "meta.json").unlink(), "meta.json"),
    "garbled meta": (lambda f: _write_garbage(f, "meta.json"), "meta.json"),
    "other version": (lambda f: _edit_meta(f, version=99), "meta.json"),
    "no ids": (lambda f: (f / "ids.json").unlink(), "ids.json"),
    "ids count": (lambda f: (f / "ids.json").write_text('["a"]'), "ids.json"),
    "mixed ids": (lambda f: (f / "ids.json").write_text('["a", 1, 2, 3]'), "ids.json"),
    "count": (lambda f: _edit_meta(f, count=5), "ids.json"),
    "no index": (lambda f: (f / "index.faiss").unlink(), "index.faiss"),
    "garbled index": (lambda f: _write_garbage(f, "index.faiss"), "index.faiss"),
    "truncated index": (
        lambda f: (f / "index.faiss").write_bytes((f / "index.faiss").read_bytes()[:60]),
        "index.faiss",
    ),
    "dim": (lambda f: _edit_meta(f, dim=3), "embeddings.npy"),
    "metric": (lambda f: _edit_meta(f, metric="inner_product"), "index.faiss"),
    "params": (lambda f: _edit_meta(f, params={"nlist": 2}), "meta.json"),
    "no vectors": (lambda f: (f / "embeddings.npy").unlink(), "embeddings.npy"),
}


@needs_faiss
@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_folder_is_a_user_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    folder = EmbeddingIndex.build(np.eye(4), ["a", "b", "c", "d"]).save(tmp_path / "index")
    harm, culprit = DAMAGES[damage]
    harm(folder)
    with pytest.raises(UserError, match=re.escape(culprit)) as raised:
        EmbeddingIndex.load(folder)
    assert str(folder) in str(raised.value)


def test_damaged_torch_folder(tmp_path: Path) -> None:
    folder = EmbeddingIndex.build(np.eye(4), [1, 2, 3, 4], backend="torch").save(tmp_path / "i")
    np.save(folder / "embeddings.npy", np.eye(3, dtype=np.float32))
    with pytest.raises(UserError, match=r"embeddings\.npy"):
        EmbeddingIndex.load(folder)
    _write_garbage(folder, "embeddings.npy")
    with pytest.raises(UserError, match=r"embeddings\.npy"):
        EmbeddingIndex.load(folder)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "nowhere"))):
        EmbeddingIndex.load(tmp_path / "nowhere")


@pytest.fixture
def no_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding_index, "import_faiss", lambda: None)


@needs_faiss
@pytest.mark.parametrize("metric", ["l2", "inner_product"])
def test_without_faiss_flat_gives_the_same_numbers(monkeypatch, metric: str) -> None:
    rng = np.random.default_rng(7)
    reference, queries = rng.normal(size=(120, 6)), rng.normal(size=(15, 6))
    with_faiss = EmbeddingIndex.build(reference, np.arange(120), metric=metric)
    monkeypatch.setattr(embedding_index, "import_faiss", lambda: None)
    fallback = EmbeddingIndex.build(reference, np.arange(120), metric=metric)  # backend="auto"
    assert (with_faiss.backend, fallback.backend) == ("faiss", "torch")
    expected, got = with_faiss.search(queries, 8), fallback.search(queries, 8)
    np.testing.assert_allclose(got.distances, expected.distances, atol=1e-5)
    assert np.array_equal(got.indices, expected.indices)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_without_faiss_approximate_kinds_say_how_to_install(no_faiss: None, kind: str) -> None:
    with pytest.raises(UserError, match=r"embedforge\[faiss\]"):
        EmbeddingIndex.build(np.eye(3), [1, 2, 3], kind=kind)
    with pytest.raises(UserError, match=r"embedforge\[faiss\]"):
        EmbeddingIndex.build(np.eye(3), [1, 2, 3], backend="faiss")


@needs_faiss
def test_loading_a_faiss_index_without_faiss(tmp_path: Path, monkeypatch) -> None:
    folder = EmbeddingIndex.build(np.eye(3), [1, 2, 3]).save(tmp_path / "index")
    monkeypatch.setattr(embedding_index, "import_faiss", lambda: None)
    with pytest.raises(UserError, match=r"embedforge\[faiss\]"):
        EmbeddingIndex.load(folder)


@pytest.mark.parametrize("backend", BACKENDS)
def test_k_larger_than_the_index_is_clipped(backend: str) -> None:
    index = EmbeddingIndex.build(np.eye(4), ["a", "b", "c", "d"], backend=backend)
    result = index.search(np.eye(4)[:2], k=10)
    assert result.distances.shape == (2, 4)
    assert sorted(result.ids[0].tolist()) == ["a", "b", "c", "d"] and result.ids[0, 0] == "a"


@needs_faiss
@pytest.mark.parametrize("ids", [[f"s{i}" for i in range(200)], list(range(200))])
def test_ivf_rows_it_could_not_fill(ids: list) -> None:
    reference = np.concatenate([np.zeros((100, 2)), np.full((100, 2), 50.0)]).astype(np.float32)
    reference += np.random.default_rng(8).normal(size=reference.shape).astype(np.float32)
    index = EmbeddingIndex.build(reference, ids, kind="ivf", nlist=2, nprobe=1)
    result = index.search(np.zeros((1, 2)), k=150)  # one list holds ~100 rows
    missing = result.indices[0] < 0
    assert 0 < missing.sum() < 150
    assert np.isinf(result.distances[0, missing]).all()
    assert set(result.ids[0, missing].tolist()) == {"" if isinstance(ids[0], str) else -1}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="one id per row"):
        EmbeddingIndex.build(np.eye(3), ["a", "b"])
    with pytest.raises(ValueError, match="strings or all integers"):
        EmbeddingIndex.build(np.eye(2), ["a", 1])
    with pytest.raises(ValueError, match="metric"):
        EmbeddingIndex.build(np.eye(2), [1, 2], metric="cosine")
    index = EmbeddingIndex.build(np.eye(2), [1, 2])
    with pytest.raises(ValueError, match="dimension 3"):
        index.search(np.eye(3), k=1)
    with pytest.raises(ValueError, match="k must"):
        index.search(np.eye(2), k=0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("backend", BACKENDS)
def test_meta_records_the_sha256_of_each_file(tmp_path: Path, backend: str) -> None:
    folder = EmbeddingIndex.build(np.eye(3), ["a", "b", "c"], backend=backend).save(tmp_path / "i")
    meta = json.loads((folder / "meta.json").read_text())
    files = {"embeddings.npy", "ids.json"} | ({"index.faiss"} if backend == "faiss" else set())
    assert meta["version"] == 2
    assert meta["sha256"] == {name: _sha256(folder / name) for name in sorted(files)}
    assert {p.name for p in folder.iterdir()} == files | {"meta.json", ".embedforge.json"}
    vectors = np.load(folder / "embeddings.npy", allow_pickle=False)  # kept with FAISS too
    assert vectors.dtype == np.float32 and np.array_equal(vectors, np.eye(3))


def test_the_index_keeps_its_own_copy_of_the_vectors(tmp_path: Path) -> None:
    embeddings = np.eye(3, dtype=np.float32)
    index = EmbeddingIndex.build(embeddings, ["a", "b", "c"])
    embeddings[:] = 7.0  # what the caller does with its array afterwards changes nothing here
    folder = index.save(tmp_path / "i")
    assert np.array_equal(np.load(folder / "embeddings.npy"), np.eye(3))
    assert index.search(np.eye(3), k=1).ids.tolist() == [["a"], ["b"], ["c"]]


@needs_faiss
@pytest.mark.parametrize("unrecorded", [False, True])
def test_faiss_never_reads_an_index_file_whose_hash_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unrecorded: bool
) -> None:
    folder = EmbeddingIndex.build(np.eye(4), ["a", "b", "c", "d"]).save(tmp_path / "index")
    if unrecorded:  # meta.json keeps no hash for index.faiss
        meta = json.loads((folder / "meta.json").read_text())
        del meta["sha256"]["index.faiss"]
        (folder / "meta.json").write_text(json.dumps(meta))
    else:  # the index of another collection of the same dim and count swapped in
        other = EmbeddingIndex.build(np.random.default_rng(9).normal(size=(4, 4)), list("wxyz"))
        shutil.copy(other.save(tmp_path / "other") / "index.faiss", folder / "index.faiss")

    def read_index(*args: object) -> None:
        raise AssertionError("faiss.read_index was called on a file whose hash is wrong")

    monkeypatch.setattr(embedding_index.import_faiss(), "read_index", read_index)
    expected = "records no sha256" if unrecorded else "records "
    with pytest.raises(
        UserError, match=rf"index\.faiss: its sha256 is [0-9a-f]{{12}}, but meta\.json {expected}"
    ):
        EmbeddingIndex.load(folder)
    assert EmbeddingIndex.load(folder, rebuild=True).ids.tolist() == ["a", "b", "c", "d"]


def _faiss_version() -> tuple[int, ...]:
    faiss = embedding_index.import_faiss()
    return tuple(int(part) for part in faiss.__version__.split(".")[:3]) if faiss else ()


REBUILDS = [
    pytest.param("flat", "faiss", marks=needs_faiss),
    pytest.param("ivf", "faiss", marks=needs_faiss),
    pytest.param(
        "hnsw",
        "faiss",
        marks=[
            needs_faiss,
            pytest.mark.skipif(
                _faiss_version() < (1, 15, 1),
                reason="before FAISS 1.15.1 HNSW may be built in parallel under locks, which "
                "need not repeat",
            ),
        ],
    ),
    ("flat", "torch"),
]


@pytest.mark.parametrize("kind,backend", REBUILDS)
@pytest.mark.parametrize("metric", ["l2", "inner_product"])
def test_a_rebuilt_index_answers_exactly_like_the_saved_one(
    tmp_path: Path, kind: str, backend: str, metric: str
) -> None:
    reference = _clustered(2000, 16, seed=10)  # IVF: 45 lists trained by k-means; HNSW: 2000 nodes
    queries = _clustered(50, 16, seed=11)
    ids = [f"item{i}" for i in range(2000)]
    built = EmbeddingIndex.build(
        reference, ids, metric=metric, kind=kind, backend=backend, nprobe=3, ef_search=20
    )
    folder = built.save(tmp_path / "index")
    saved = EmbeddingIndex.load(folder).search(queries, 10)
    if backend == "faiss":
        (folder / "index.faiss").write_bytes(b"\x00garbage")  # never opened by a rebuild
    rebuilt = EmbeddingIndex.load(folder, rebuild=True)
    assert (rebuilt.kind, rebuilt.metric, rebuilt.backend) == (kind, metric, backend)
    assert rebuilt.params == built.params
    found = rebuilt.search(queries, 10)
    for field in ("distances", "indices", "ids"):
        assert np.array_equal(getattr(found, field), getattr(saved, field)), field
    if kind == "flat":
        _assert_exact_neighbours(found, queries, reference, 10, metric)


def test_a_rebuild_reads_only_vectors_that_match_their_hash(tmp_path: Path) -> None:
    folder = EmbeddingIndex.build(np.eye(4), ["a", "b", "c", "d"]).save(tmp_path / "index")
    np.save(folder / "embeddings.npy", np.eye(4, dtype=np.float32)[::-1], allow_pickle=False)
    with pytest.raises(UserError, match=r"embeddings\.npy: its sha256 is .* build the index again"):
        EmbeddingIndex.load(folder, rebuild=True)


def test_a_version_1_folder_is_refused_with_the_way_out(tmp_path: Path) -> None:
    folder = EmbeddingIndex.build(np.eye(4), ["a", "b", "c", "d"]).save(tmp_path / "index")
    meta = json.loads((folder / "meta.json").read_text())
    del meta["sha256"]
    (folder / "meta.json").write_text(json.dumps({**meta, "version": 1}))
    for rebuild in (False, True):
        with pytest.raises(
            UserError,
            match=r"meta\.json: index format version 1, .* build the index again \(`embedforge",
        ):
            EmbeddingIndex.load(folder, rebuild=rebuild)


@needs_faiss
def test_set_nprobe_visits_more_lists_and_only_ivf_has_them() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4000, 8)).astype(np.float32)
    queries = rng.normal(size=(50, 8)).astype(np.float32)
    index = EmbeddingIndex.build(vectors, list(range(4000)), kind="ivf", nlist=64, nprobe=1)
    narrow = index.search(queries, k=5).indices
    index.set_nprobe(64)  # every list: exact
    assert index.params["nprobe"] == 64
    exact = np.argsort(_brute_force(queries, vectors, "l2"), axis=1, kind="stable")[:, :5]
    assert np.array_equal(index.search(queries, k=5).indices, exact)
    assert not np.array_equal(narrow, exact)
    with pytest.raises(UserError, match=r"between 1 and the index's nlist \(64\)"):
        index.set_nprobe(65)
    with pytest.raises(UserError, match="--nprobe applies to IVF indexes; this index is flat"):
        EmbeddingIndex.build(vectors, list(range(4000))).set_nprobe(2)
