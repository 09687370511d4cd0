"""A nearest-neighbour index over embeddings that keeps the items' ids: build, search, save, load.

Why a wrapper around FAISS: a FAISS index only knows row numbers, and its L2
"distances" are squared. Here each row carries its id (an image name, an
individual's label), distances are in the metric's natural unit, and the index
is saved as a folder that says what it holds:

* ``embeddings.npy`` — the vectors, float32 (n, d), always (``np.save`` without
  pickle): the exact search of the torch backend reads them, and any index can be
  rebuilt from them;
* ``index.faiss`` — the FAISS index (``faiss.write_index``), when built with FAISS;
* ``ids.json`` — the ids, one per row, all strings or all integers;
* ``meta.json`` — format version, metric, kind, backend, dim, count, the index
  parameters (``nlist``/``nprobe``, ``hnsw_m``/``ef_search``) and the sha256 of
  each file above;
* ``.embedforge.json`` — the marker of an embedforge index folder.

An index folder is trusted input: ``faiss.read_index`` is a C++ parser that is not
hardened against a crafted file. :meth:`EmbeddingIndex.load` therefore hashes each
file (streaming) and refuses one whose sha256 is not the one ``meta.json`` records,
before any parser sees it. The hashes catch a folder that was changed after it was
saved or pieced together from two indexes (a swapped ``ids.json`` would silently
mislabel every result); they do not vouch for a whole folder from elsewhere, whose
``meta.json`` could record the hashes of anything. To use such a folder without
trusting its FAISS file, load it with ``rebuild=True`` (``embedforge search
--rebuild``, or ``embedforge index rebuild`` once): ``index.faiss`` is never read,
and the same kind of index is built again from ``embeddings.npy`` and ``ids.json``,
whose parsers (numpy's ``.npy`` header without pickle, JSON) are simple.

A rebuilt index answers like the saved one. Flat is exact either way. IVF's k-means
is seeded (FAISS's ``ClusteringParameters.seed``, 1234 unless changed) and HNSW draws
its levels and insertion order from fixed seeds, so the same FAISS build on the same
CPU rebuilds the same index from the same vectors: identical neighbours and distances
(tests check both). FAISS 1.15.1, the version tested, builds HNSW graphs
deterministically whatever the thread count (its docs; we measured byte-identical
graphs with 1, 2 and 4 threads at 10^5 vectors); earlier versions may insert in
parallel under locks, where only a single-threaded build is sure to repeat. Another
FAISS version or CPU may round k-means and distances differently, and so give a
slightly different approximate index.

The folder is written into a temporary sibling and renamed into place, so a
killed save never leaves a half-written index; an existing folder is replaced
only if it is an index folder of ours and ``overwrite`` is given.

Distances:

* ``metric="l2"``: the Euclidean distance (the square root of FAISS's squared
  distance, clamped at 0), ascending — the same numbers as
  :func:`embedforge.metrics.knn.knn_search`;
* ``metric="inner_product"``: the inner product itself, a similarity, so it is
  *descending* (larger is nearer). For cosine similarity, L2-normalise the
  embeddings and the queries first.

FAISS is optional (``pip install embedforge[faiss]``). Without it, ``kind="flat"``
still works: the exact search runs in torch, chunked, with the same numbers up to
float32 rounding; ``kind="ivf"`` and ``kind="hnsw"`` need FAISS and say so.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import torch

from embedforge.errors import UserError
from embedforge.files.atomic import staged_folder
from embedforge.files.file_sha256 import file_sha256
from embedforge.files.markers import FolderKind, prepare_folder, write_marker
from embedforge.finite import require_finite
from embedforge.index.checked_files import check_sha256, read_json
from embedforge.metrics.knn import default_chunk_size, knn_search

Metric = Literal["l2", "inner_product"]
Kind = Literal["flat", "ivf", "hnsw"]
Backend = Literal["auto", "faiss", "torch"]

FORMAT = "embedforge-index"
FORMAT_VERSION = 2  # 2: meta.json records each file's sha256; embeddings.npy is always kept
INSTALL_HINT = "install FAISS with `pip install embedforge[faiss]`"
INDEX = FolderKind("index", frozenset({"index.faiss", "embeddings.npy", "ids.json", "meta.json"}))
PARAMS: dict[str, frozenset[str]] = {
    "flat": frozenset(),
    "ivf": frozenset({"nlist", "nprobe"}),
    "hnsw": frozenset({"hnsw_m", "ef_search"}),
}  # the parameters each kind records in meta.json, and is rebuilt with
REBUILD_HINT = (
    "to use the folder without trusting index.faiss, rebuild the index from embeddings.npy "
    "(`embedforge search --rebuild`, `embedforge index rebuild`, or "
    "EmbeddingIndex.load(..., rebuild=True))"
)
BUILD_AGAIN_HINT = "build the index again (`embedforge index build`)"


def import_faiss() -> ModuleType | None:
    """The ``faiss`` module, or None when it is not installed (tests patch this to go without)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


@dataclass(frozen=True)
class SearchResult:
    """Neighbours of each query, nearest first: ``(distances, indices)`` plus the stored ids.

    Attributes:
        distances: (nq, k) float32; Euclidean (ascending) for ``l2``, the inner
            product (descending) for ``inner_product``.
        indices: (nq, k) int64 rows of the index; -1 where an approximate index
            found fewer than k neighbours (its distance is +inf for ``l2``, -inf
            for ``inner_product``).
        ids: (nq, k) the ids of those rows, same dtype as the stored ids; "" (string
            ids) or -1 (integer ids) where the index is -1.
    """

    distances: np.ndarray
    indices: np.ndarray
    ids: np.ndarray


@dataclass(frozen=True)
class _Meta:
    """What a folder's meta.json says, checked: the index it describes and its files' sha256."""

    metric: Metric
    kind: Kind
    backend: Literal["faiss", "torch"]
    dim: int
    count: int
    params: dict[str, int]
    sha256: dict[str, Any]  # file name -> hex digest, as recorded (checked file by file)


class EmbeddingIndex:
    """Embeddings (n, d) and their ids, searchable by nearest neighbour.

    Make one with :meth:`build` or :meth:`load`, not the constructor. The index keeps its
    vectors (float32, its own copy) besides any FAISS index over them: they are saved as
    ``embeddings.npy``, from which a folder's index can be rebuilt without reading its
    FAISS file.

    >>> embeddings = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    >>> index = EmbeddingIndex.build(embeddings, ["a", "b", "c"])
    >>> result = index.search(np.array([[0.0, 0.0]]), k=2)
    >>> result.distances.tolist(), result.indices.tolist(), result.ids.tolist()
    ([[0.0, 1.0]], [[0, 2]], [['a', 'c']])
    """

    def __init__(
        self,
        *,
        ids: np.ndarray,
        vectors: np.ndarray,
        metric: Metric,
        kind: Kind,
        params: dict[str, int],
        faiss_index: Any = None,
    ) -> None:
        self.ids = ids
        self.dim = vectors.shape[1]
        self.metric = metric
        self.kind = kind
        self.params = dict(params)  # nlist, nprobe, hnsw_m, ef_search: what was used
        self._vectors = vectors  # (n, d) float32: searched by the torch backend, always saved
        self._faiss_index = faiss_index

    @property
    def backend(self) -> Literal["faiss", "torch"]:
        return "torch" if self._faiss_index is None else "faiss"

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"EmbeddingIndex(count={len(self)}, dim={self.dim}, metric={self.metric!r}, "
            f"kind={self.kind!r}, backend={self.backend!r})"
        )

    @classmethod
    def build(
        cls,
        embeddings: Any,
        ids: Any,
        *,
        metric: Metric = "l2",
        kind: Kind = "flat",
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_search: int = 64,
        backend: Backend = "auto",
    ) -> "EmbeddingIndex":
        """Index ``embeddings`` (n, d) under ``ids`` (n,).

        Args:
            embeddings: (n, d) array or tensor, copied as float32 (changing it afterwards
                changes nothing here).
            ids: n strings or n integers, one per row (repeats allowed).
            metric: ``"l2"`` (Euclidean) or ``"inner_product"``.
            kind: ``"flat"`` (exact), ``"ivf"`` (inverted lists, trained on
                ``embeddings`` with k-means) or ``"hnsw"`` (graph). Approximate
                kinds pay off from ~10^5 rows.
            nlist: IVF lists; default round(sqrt(n)), at most n // 39 (FAISS wants
                39 training points per list) and at least 1.
            nprobe: IVF lists visited per query; default max(8, nlist // 16),
                at most nlist.
            hnsw_m: HNSW links per node.
            ef_search: HNSW candidate list length at search (FAISS uses at least k).
            backend: ``"faiss"``, ``"torch"`` (exact flat search only) or
                ``"auto"`` (FAISS when installed, else torch).
        """
        if metric not in ("l2", "inner_product"):
            raise ValueError(f"metric must be 'l2' or 'inner_product', not {metric!r}")
        if kind not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"kind must be 'flat', 'ivf' or 'hnsw', not {kind!r}")
        vectors = as_float32_matrix(embeddings, "embeddings", copy=True)
        n = len(vectors)
        if n == 0:
            raise ValueError("cannot index 0 embeddings")
        ids = as_ids(ids)
        if len(ids) != n:
            raise ValueError(f"got {n} embeddings but {len(ids)} ids; expected one id per row")
        params: dict[str, int] = {}
        if kind == "ivf":
            nlist = default_nlist(n) if nlist is None else nlist
            nprobe = min(nlist, max(8, nlist // 16)) if nprobe is None else nprobe
            if not 1 <= nlist <= n or nprobe < 1:
                raise ValueError(
                    f"IVF needs 1 <= nlist <= n ({n}) and nprobe >= 1; got {nlist}, {nprobe}"
                )
            params = {"nlist": nlist, "nprobe": nprobe}
        elif kind == "hnsw":
            params = {"hnsw_m": hnsw_m, "ef_search": ef_search}
        return cls._from_vectors(
            vectors, ids, metric=metric, kind=kind, params=params, backend=backend
        )

    @classmethod
    def _from_vectors(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray,
        *,
        metric: Metric,
        kind: Kind,
        params: dict[str, int],
        backend: Backend,
    ) -> "EmbeddingIndex":
        """The index over checked ``vectors`` (n, d) float32, which it keeps, and ``ids`` (n,),
        with the kind's resolved ``params``: where :meth:`build` and a rebuild both end."""
        faiss = _faiss_for(backend, kind)
        if faiss is None:
            return cls(ids=ids, vectors=vectors, metric=metric, kind=kind, params=params)
        dim = vectors.shape[1]
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if kind == "flat":
            index = faiss.IndexFlat(dim, faiss_metric)
        elif kind == "ivf":
            quantizer = faiss.IndexFlat(dim, faiss_metric)
            index = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss_metric)
            index.train(vectors)  # k-means, seeded by faiss (ClusteringParameters.seed)
            index.nprobe = params["nprobe"]
        else:
            index = faiss.IndexHNSWFlat(dim, params["hnsw_m"], faiss_metric)
            index.hnsw.efSearch = params["ef_search"]
        index.add(vectors)
        return cls(
            ids=ids, vectors=vectors, metric=metric, kind=kind, params=params, faiss_index=index
        )

    def set_nprobe(self, nprobe: int) -> None:
        """Visit ``nprobe`` lists per query from now on (``embedforge search --nprobe``);
        only an IVF index has lists."""
        if self.kind != "ivf":
            raise UserError(f"--nprobe applies to IVF indexes; this index is {self.kind}")
        if not 1 <= nprobe <= self.params["nlist"]:
            raise UserError(
                f"--nprobe must be between 1 and the index's nlist ({self.params['nlist']}); "
                f"got {nprobe}"
            )
        self._faiss_index.nprobe = nprobe
        self.params["nprobe"] = nprobe

    def search(self, queries: Any, k: int) -> SearchResult:
        """The k nearest rows of each query (nq, d); k larger than the index is clipped to n.

        >>> index = EmbeddingIndex.build(np.eye(3, dtype=np.float32), [10, 20, 30],
        ...                              metric="inner_product")
        >>> index.search(np.array([[0.0, 2.0, 1.0]]), k=5).ids.tolist()
        [[20, 30, 10]]
        """
        if k < 1:  # a user's number (search -k): one clear error, not a traceback
            raise UserError(f"k must be at least 1 (neighbours per query, search -k); got {k}")
        queries = as_float32_matrix(queries, "queries")
        if queries.shape[1] != self.dim:
            raise ValueError(
                f"queries have dimension {queries.shape[1]} but the index holds {self.dim}"
            )
        k = min(k, len(self))
        if self._faiss_index is not None:
            distances, indices = self._faiss_index.search(queries, k)  # (nq, k) each
            if self.metric == "l2":
                distances = np.sqrt(np.maximum(distances, 0.0))
        else:
            vectors = torch.from_numpy(self._vectors)  # (n, d), no copy
            distances, indices = _torch_search(queries, vectors, k, self.metric)
        return search_result(distances, indices, self.ids, self.metric)

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the index folder atomically, with each file's sha256 in meta.json; with
        ``overwrite`` it replaces an earlier index folder of ours there, and nothing else is
        ever replaced.

        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "idx"
        >>> index = EmbeddingIndex.build(np.eye(2, dtype=np.float32), ["a", "b"])
        >>> sorted(p.name for p in index.save(folder).iterdir() if p.suffix == ".json")
        ['.embedforge.json', 'ids.json', 'meta.json']
        >>> EmbeddingIndex.load(folder).search(np.eye(2), k=1).ids.tolist()
        [['a'], ['b']]
        """
        directory = Path(directory)
        prepare_folder(directory, INDEX, overwrite=overwrite, hint="pass overwrite=True")
        with staged_folder(directory) as temporary:
            write_marker(temporary, INDEX)
            np.save(temporary / "embeddings.npy", self._vectors, allow_pickle=False)
            (temporary / "ids.json").write_text(json.dumps(self.ids.tolist()))
            files = ["embeddings.npy", "ids.json"]
            if self._faiss_index is not None:
                import_faiss().write_index(self._faiss_index, str(temporary / "index.faiss"))
                files.append("index.faiss")
            meta = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "metric": self.metric,
                "kind": self.kind,
                "backend": self.backend,
                "dim": self.dim,
                "count": len(self),
                "id_type": "str" if self.ids.dtype.kind == "U" else "int",
                "params": self.params,
                "sha256": {name: file_sha256(temporary / name) for name in files},
            }
            (temporary / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, rebuild: bool = False) -> "EmbeddingIndex":
        """Read a folder written by :meth:`save`, each file checked against the sha256 that
        meta.json records before it is parsed; a missing, damaged or changed one raises
        UserError.

        With ``rebuild``, ``index.faiss`` is never opened: the same kind of index, with the
        recorded parameters, is built again from ``embeddings.npy`` — the way to use a
        folder from elsewhere without trusting its FAISS file (how exactly the rebuilt index
        answers like the saved one: see the module docstring).

        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "idx"
        >>> _ = EmbeddingIndex.build(np.eye(2, dtype=np.float32), ["a", "b"]).save(folder)
        >>> _ = (folder / "index.faiss").write_bytes(b"not an index")
        >>> EmbeddingIndex.load(folder, rebuild=True).search(np.eye(2), k=1).ids.tolist()
        [['a'], ['b']]
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"index folder {directory} does not exist")
        meta = _read_meta(directory / "meta.json")
        faiss = import_faiss() if meta.backend == "faiss" else None
        if meta.backend == "faiss" and faiss is None:
            raise UserError(f"{directory} holds a FAISS index; {INSTALL_HINT}")

        ids_path = directory / "ids.json"
        check_sha256(ids_path, meta.sha256, BUILD_AGAIN_HINT)
        raw_ids = read_json(ids_path)
        try:
            ids = as_ids(raw_ids)
        except ValueError as error:
            raise UserError(f"{ids_path}: {error}") from None
        if len(ids) != meta.count:
            raise UserError(f"{ids_path} holds {len(ids)} ids but meta.json says {meta.count} rows")

        # A torch index is its vectors, so loading one is rebuilding it. A FAISS index holds
        # its own copy: the kept vectors stay on disk (memory-mapped) until a save reads them.
        from_vectors = rebuild or meta.backend == "torch"
        vectors = _read_vectors(directory / "embeddings.npy", meta, mmap=not from_vectors)
        if from_vectors:
            return cls._from_vectors(
                vectors,
                ids,
                metric=meta.metric,
                kind=meta.kind,
                params=meta.params,
                backend=meta.backend,
            )

        path = directory / "index.faiss"
        check_sha256(path, meta.sha256, REBUILD_HINT)  # before faiss's C++ parser ever sees it
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise UserError(f"{path} is not a readable FAISS index ({first_line})") from None
        expected_metric = faiss.METRIC_L2 if meta.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if index.metric_type != expected_metric:
            raise UserError(f"{path} does not use the metric {meta.metric!r} that meta.json names")
        if index.ntotal != meta.count or index.d != meta.dim:
            raise UserError(
                f"{path} holds {index.ntotal} vectors of dimension {index.d}, but meta.json "
                f"says {meta.count} of dimension {meta.dim}"
            )
        return cls(
            ids=ids,
            vectors=vectors,
            metric=meta.metric,
            kind=meta.kind,
            params=meta.params,
            faiss_index=index,
        )


def search_result(
    distances: np.ndarray, indices: np.ndarray, ids: np.ndarray, metric: Metric
) -> SearchResult:
    """The :class:`SearchResult` of a search's (nq, k) ``distances`` and row ``indices``:
    each row's id from ``ids``, and where a row is -1 (fewer than k found) the distance
    +inf (``l2``) or -inf (``inner_product``) and the id "" or -1."""
    missing = indices < 0
    if missing.any():
        distances[missing] = np.inf if metric == "l2" else -np.inf
    fill = "" if ids.dtype.kind == "U" else -1
    found = np.where(missing, np.array(fill, dtype=ids.dtype), ids[indices])
    return SearchResult(
        distances=distances.astype(np.float32, copy=False),
        indices=indices.astype(np.int64, copy=False),
        ids=found,
    )


def default_nlist(n: int) -> int:
    """IVF list count for n rows: round(sqrt(n)), capped so each list has >= 39 training points.

    >>> default_nlist(10_000), default_nlist(100), default_nlist(5)
    (100, 2, 1)
    """
    return max(1, min(round(math.sqrt(n)), n // 39))


def _faiss_for(backend: Backend, kind: Kind) -> ModuleType | None:
    """The faiss module to build with, or None for the torch backend."""
    if backend not in ("auto", "faiss", "torch"):
        raise ValueError(f"backend must be 'auto', 'faiss' or 'torch', not {backend!r}")
    faiss = None if backend == "torch" else import_faiss()
    if faiss is None and backend == "faiss":
        raise UserError(f"backend='faiss' needs FAISS, which is not installed; {INSTALL_HINT}")
    if faiss is None and kind != "flat":
        raise UserError(
            f"kind={kind!r} needs FAISS, which is {'not installed' if backend == 'auto' else 'off'}"
            f" (backend={backend!r}); {INSTALL_HINT}, or use kind='flat' (exact search in torch)"
        )
    return faiss


def _torch_search(
    queries: np.ndarray, embeddings: torch.Tensor, k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """Exact search in torch: Euclidean via knn_search, or the top inner products, chunked."""
    query = torch.from_numpy(queries)
    if metric == "l2":
        distances, indices = knn_search(query, embeddings, k)
        return distances.numpy(), indices.numpy()
    chunk = default_chunk_size(len(embeddings))
    parts = [
        torch.topk(query[start : start + chunk] @ embeddings.T, k, dim=1)  # (c, k)
        for start in range(0, len(query), chunk)
    ]
    if not parts:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    return (
        torch.cat([p.values for p in parts]).numpy(),
        torch.cat([p.indices for p in parts]).numpy(),
    )


def as_float32_matrix(values: Any, name: str, *, copy: bool = False) -> np.ndarray:
    """``values`` as a C-contiguous float32 (n, d) array; with ``copy`` always a new one."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if copy:
        matrix = np.array(values, dtype=np.float32, order="C")
    else:
        matrix = np.ascontiguousarray(values, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array; got shape {matrix.shape}")
    require_finite(matrix, name)
    return matrix


def as_ids(values: Any) -> np.ndarray:
    """n ids as a numpy array: unicode strings or int64."""
    if isinstance(values, torch.Tensor):
        values = values.cpu().numpy()
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if all(isinstance(item, str) for item in items):
        return np.array(items, dtype=np.str_).reshape(len(items))
    if all(isinstance(item, int | np.integer) and not isinstance(item, bool) for item in items):
        return np.array(items, dtype=np.int64).reshape(len(items))
    raise ValueError("ids must be a flat list of all strings or all integers")


def _read_meta(path: Path) -> _Meta:
    """meta.json, checked: this format and version, known values, the kind's parameters."""
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not an embedforge index description")
    version = meta.get("version")
    if isinstance(version, int) and version < FORMAT_VERSION:
        raise UserError(
            f"{path}: index format version {version}, from an older embedforge that recorded "
            f"no sha256 of the folder's files; this embedforge reads version {FORMAT_VERSION}: "
            f"{BUILD_AGAIN_HINT}"
        )
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path} has index format version {version!r}; this embedforge reads version "
            f"{FORMAT_VERSION}"
        )
    try:
        metric, kind, backend = meta["metric"], meta["kind"], meta["backend"]
        dim, count, params = int(meta["dim"]), int(meta["count"]), dict(meta["params"])
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path} lacks or garbles key {error}") from None
    if metric not in ("l2", "inner_product") or kind not in ("flat", "ivf", "hnsw"):
        raise UserError(f"{path} has unknown metric or kind")
    if backend not in ("faiss", "torch"):
        raise UserError(f"{path} has unknown backend {backend!r}")
    positive = all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in params.values()
    )
    if set(params) != PARAMS[kind] or not positive or params.get("nlist", 1) > count:
        raise UserError(
            f"{path}: params {params} are not those of a {kind} index of {count} rows (expected "
            f"positive integers {sorted(PARAMS[kind])}, nlist at most the count)"
        )
    recorded = meta.get("sha256")
    sha256 = recorded if isinstance(recorded, dict) else {}
    return _Meta(metric, kind, backend, dim, count, params, sha256)


def _read_vectors(path: Path, meta: _Meta, *, mmap: bool) -> np.ndarray:
    """embeddings.npy, hash-checked, as float32 (count, dim); never unpickled."""
    check_sha256(path, meta.sha256, BUILD_AGAIN_HINT)
    try:
        vectors = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is not a .npy array ({error})") from None
    if vectors.dtype != np.float32 or vectors.shape != (meta.count, meta.dim):
        raise UserError(
            f"{path} holds {vectors.dtype} {vectors.shape}; meta.json says float32 "
            f"({meta.count}, {meta.dim})"
        )
    return vectors
