"""An IVF-PQ index whose inverted lists stay on disk: load, search (with exact re-ranking).

Built shard by shard by :func:`embedforge.index.ivfpq_build.build_ivfpq`, the index is a
folder:

* ``index.faiss`` — the trained ``IndexIVFPQ`` (coarse quantiser and product quantiser,
  Jégou et al., "Product quantization for nearest neighbor search", TPAMI 2011) whose
  inverted lists are FAISS ``OnDiskInvertedLists``;
* ``lists.ivfdata`` — those lists' codes and row numbers, memory-mapped at search, so the
  index answers without reading them into memory;
* ``embeddings.npy`` — the vectors, float32 (n, d), memory-mapped: the exact re-ranking
  reads the few candidate rows of each query;
* ``ids.json``, ``meta.json`` (format, metric, dim, count, the parameters and each file's
  sha256) and the folder marker.

Moving the folder: ``OnDiskInvertedLists`` records the absolute path of its ``.ivfdata``
file inside ``index.faiss`` (here the temporary folder it was built in), and
``faiss.read_index`` opens that path. :meth:`IVFPQIndex.load` reads the index with
``IO_FLAG_SKIP_IVF_DATA`` and maps this folder's ``lists.ivfdata`` itself, read-only, so a
copied or moved folder works and never touches another folder's file.

Trust: as for :mod:`embedforge.index.embedding_index`, each file is hash-checked against
``meta.json`` before anything parses it (``faiss.read_index`` is a C++ parser not
hardened against a crafted file); ``lists.ivfdata`` is hashed too, since FAISS reads
list offsets into it without bounds checks.

Why re-rank: 64-d vectors coded in 16 bytes (``pq_m=16``) keep the order of distant
neighbours but blur the near ones, so the PQ top-10 alone misses many of the exact top-10.
With ``rerank=R`` the index asks FAISS for ``R·k`` candidates and orders them by their
exact distance to the query from ``embeddings.npy`` (the IVFADC+R idea of Jégou et al.,
"Searching in one billion vectors: re-rank with source coding", ICASSP 2011, with the
raw vectors instead of a second code). Returned distances are then exact; with
``rerank=0`` they are FAISS's PQ estimates. Recall is then bounded by the lists visited,
``nprobe``, which :meth:`IVFPQIndex.load` lets a search override.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedforge.errors import UserError
from embedforge.extras import require
from embedforge.files.markers import FolderKind
from embedforge.index.checked_files import check_sha256, read_json
from embedforge.index.embedding_index import (
    Metric,
    SearchResult,
    as_float32_matrix,
    as_ids,
    import_faiss,
    search_result,
)

FORMAT = "embedforge-ivfpq-index"
FORMAT_VERSION = 1
FILES = ("index.faiss", "lists.ivfdata", "embeddings.npy", "ids.json")
IVFPQ_INDEX = FolderKind("ivfpq-index", frozenset({*FILES, "meta.json"}))
PARAMS = frozenset({"nlist", "nprobe", "pq_m", "pq_bits", "rerank", "shards", "train_size"})
BUILD_AGAIN_HINT = "build the index again (`embedforge index build --kind ivfpq`)"
QUERY_CHUNK = 256  # queries re-ranked at a time: 256 x R*k rows gathered (7 MiB: 64-d, R*k 110)


@dataclass(frozen=True)
class IVFPQMeta:
    """What an IVF-PQ folder's meta.json says, checked."""

    metric: Metric
    dim: int
    count: int
    params: dict[str, int]
    sha256: dict[str, Any]


class IVFPQIndex:
    """A loaded on-disk IVF-PQ index and its ids; searched like an
    :class:`~embedforge.index.embedding_index.EmbeddingIndex`.

    Make one with :func:`~embedforge.index.ivfpq_build.build_ivfpq` then :meth:`load`.

    >>> import tempfile, pandas as pd
    >>> from embedforge.index.ivfpq_build import build_ivfpq
    >>> folder = Path(tempfile.mkdtemp())
    >>> vectors = np.random.default_rng(0).normal(size=(2000, 8)).astype(np.float32)
    >>> frame = pd.DataFrame(vectors, columns=[f"emb_{i}" for i in range(8)])
    >>> frame.insert(0, "id", [f"item{i}" for i in range(2000)])
    >>> frame.to_parquet(folder / "emb.parquet")
    >>> _ = build_ivfpq(folder / "emb.parquet", folder / "idx", shards=2, nlist=8, pq_m=4)
    >>> index = IVFPQIndex.load(folder / "idx")
    >>> index.search(vectors[[5]], k=1).ids.tolist()
    [['item5']]
    """

    kind = "ivfpq"

    def __init__(
        self, *, faiss_index: Any, ids: np.ndarray, vectors: np.ndarray, meta: IVFPQMeta
    ) -> None:
        self.ids = ids
        self.dim = meta.dim
        self.metric = meta.metric
        self.params = dict(meta.params)  # nlist, nprobe (as searched), pq_m, rerank, ...
        self._faiss_index = faiss_index
        self._vectors = vectors  # (n, d) float32, memory-mapped: the re-ranking's rows

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"IVFPQIndex(count={len(self)}, dim={self.dim}, metric={self.metric!r}, "
            f"nprobe={self.params['nprobe']}, rerank={self.params['rerank']})"
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> "IVFPQIndex":
        """Read a folder that :func:`~embedforge.index.ivfpq_build.build_ivfpq` wrote, each
        file hash-checked first."""
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"index folder {directory} does not exist")
        meta = read_ivfpq_meta(directory / "meta.json")
        faiss = require("faiss", "faiss", "an IVF-PQ index is searched")
        for name in FILES:  # before faiss's or numpy's parser sees any of them
            check_sha256(directory / name, meta.sha256, BUILD_AGAIN_HINT)
        ids_path = directory / "ids.json"
        try:
            ids = as_ids(read_json(ids_path))
        except ValueError as error:
            raise UserError(f"{ids_path}: {error}") from None
        path = directory / "embeddings.npy"
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        if vectors.dtype != np.float32 or vectors.shape != (meta.count, meta.dim):
            raise UserError(
                f"{path} holds {vectors.dtype} {vectors.shape}; meta.json says float32 "
                f"({meta.count}, {meta.dim})"
            )
        if len(ids) != meta.count:
            raise UserError(f"{ids_path} holds {len(ids)} ids but meta.json says {meta.count}")
        index = read_ondisk_index(faiss, directory / "index.faiss", directory / "lists.ivfdata")
        expected_metric = faiss.METRIC_L2 if meta.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        ivf = faiss.extract_index_ivf(index)
        if (index.ntotal, index.d, index.metric_type) != (meta.count, meta.dim, expected_metric):
            raise UserError(
                f"{directory / 'index.faiss'} holds {index.ntotal} vectors of dimension "
                f"{index.d}, but meta.json says {meta.count} of dimension {meta.dim} "
                f"({meta.metric})"
            )
        ivf.nprobe = meta.params["nprobe"]
        return cls(faiss_index=index, ids=ids, vectors=vectors, meta=meta)

    def set_nprobe(self, nprobe: int) -> None:
        """Visit ``nprobe`` lists per query from now on instead of the recorded number
        (``embedforge search --nprobe``): more lists, higher recall, slower queries."""
        nlist = self.params["nlist"]
        if not 1 <= nprobe <= nlist:
            raise UserError(
                f"--nprobe must be between 1 and the index's nlist ({nlist}); got {nprobe}"
            )
        import_faiss().extract_index_ivf(self._faiss_index).nprobe = nprobe
        self.params["nprobe"] = nprobe

    def search(self, queries: Any, k: int) -> SearchResult:
        """The k nearest rows of each query (nq, d), nearest first; k is clipped to n.

        FAISS returns ``rerank·k`` candidates from the ``nprobe`` nearest lists; their exact
        distances (from ``embeddings.npy``) order them. Ties keep FAISS's order.
        """
        if k < 1:
            raise UserError(f"k must be at least 1 (neighbours per query, search -k); got {k}")
        queries = as_float32_matrix(queries, "queries")
        if queries.shape[1] != self.dim:
            raise UserError(
                f"queries have dimension {queries.shape[1]} but the index holds {self.dim}: "
                "was it built from another run's embeddings?"
            )
        distances, indices = ranked_search(
            self._faiss_index, self._vectors, queries, min(k, len(self)),
            rerank=self.params["rerank"], metric=self.metric,
        )  # fmt: skip
        return search_result(distances, indices, self.ids, self.metric)


def ranked_search(
    faiss_index: Any, vectors: np.ndarray, queries: np.ndarray, k: int, *, rerank: int,
    metric: Metric,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(distances, rows), each (nq, k), of an IVF-PQ search over ``vectors`` (n, d): FAISS's
    own with ``rerank=0``, else its ``rerank·k`` candidates ordered by exact distance,
    ``QUERY_CHUNK`` queries at a time. The build's calibration searches the same way."""
    if rerank == 0:
        distances, rows = faiss_index.search(queries, k)  # (nq, k) each
        return (np.sqrt(np.maximum(distances, 0.0)) if metric == "l2" else distances), rows
    candidates = min(len(vectors), rerank * k)
    parts = [
        _rerank(faiss_index, vectors, queries[start : start + QUERY_CHUNK], candidates, k, metric)
        for start in range(0, len(queries), QUERY_CHUNK)
    ]
    if not parts:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _rerank(
    faiss_index: Any, vectors: np.ndarray, queries: np.ndarray, candidates: int, k: int,
    metric: Metric,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """FAISS's ``candidates`` per query, ordered by exact distance, the first k kept."""
    _, found = faiss_index.search(queries, candidates)  # (q, c) rows, -1 if none
    rows = vectors[np.maximum(found, 0).reshape(-1)]  # (q*c, d), from the mmap
    rows = rows.reshape(len(queries), candidates, vectors.shape[1])  # (q, c, d)
    if metric == "l2":
        rows -= queries[:, None, :]  # in place: the gathered rows are a copy
        exact = np.sqrt(np.einsum("qcd,qcd->qc", rows, rows))  # (q, c)
        exact[found < 0] = np.inf
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]  # (q, k)
    else:
        exact = np.einsum("qcd,qd->qc", rows, queries)  # (q, c)
        exact[found < 0] = -np.inf
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(exact, order, 1), np.take_along_axis(found, order, 1)


def read_ondisk_index(faiss: Any, index_path: Path, ivfdata_path: Path) -> Any:
    """``index_path`` with its on-disk lists mapped, read-only, from ``ivfdata_path``, not
    from the path recorded inside the index file (see the module docstring)."""
    try:
        index = faiss.read_index(str(index_path), faiss.IO_FLAG_SKIP_IVF_DATA)
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(f"{index_path} is not a readable FAISS IVF index ({first_line})") from None
    if not isinstance(lists, faiss.OnDiskInvertedLists):
        raise UserError(f"{index_path} does not keep its inverted lists on disk")
    lists.filename = str(ivfdata_path)
    lists.read_only = True
    try:
        lists.do_mmap()
    except RuntimeError as error:
        raise UserError(f"{ivfdata_path} cannot be mapped ({error})") from None
    return index


def read_ivfpq_meta(path: Path) -> IVFPQMeta:
    """meta.json of an IVF-PQ folder, checked: format, version, metric, the parameters."""
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not an embedforge IVF-PQ index description")
    if meta.get("version") != FORMAT_VERSION:
        raise UserError(
            f"{path} has IVF-PQ index format version {meta.get('version')!r}; this embedforge "
            f"reads version {FORMAT_VERSION}"
        )
    try:
        metric, dim, count = meta["metric"], int(meta["dim"]), int(meta["count"])
        params, sha256 = dict(meta["params"]), dict(meta["sha256"])
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path} lacks or garbles key {error}") from None
    if metric not in ("l2", "inner_product"):
        raise UserError(f"{path} has unknown metric {metric!r}")
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in params.values())
    if set(params) != PARAMS or not integers or not 1 <= params["nprobe"] <= params["nlist"]:
        raise UserError(
            f"{path}: params {params} are not those of an IVF-PQ index (expected integers "
            f"{sorted(PARAMS)}, 1 <= nprobe <= nlist)"
        )
    return IVFPQMeta(metric, dim, count, params, sha256)
