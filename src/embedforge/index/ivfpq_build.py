"""Build an IVF-PQ index shard by shard and merge the shards into on-disk inverted lists.

The recipe of FAISS's ``demos/demo_ondisk_ivf.py`` and ``faiss.contrib.ondisk``: train the
coarse quantiser (k-means, ``nlist`` centroids) and the product quantiser (``pq_m``
sub-vectors of ``pq_bits`` bits) once, on a sample of ``train_size`` rows; add each shard
of the table to a copy of the trained, empty index and write it out; then
``merge_ondisk`` concatenates the shards' lists into one ``lists.ivfdata`` file. Memory
holds the sample or one shard (plus one Parquet batch), never the table: the shards'
lists are memory-mapped during the merge.

Rows keep their number in the table (0 … n-1) as their FAISS id, and shards are runs of
consecutive rows merged in order, so each inverted list holds its rows in the order an
unsharded build adds them: a sharded index answers exactly like the same index built in
one shard (tests check it).

The folder (see :mod:`embedforge.index.ivfpq_index`) is built in a temporary sibling, the
shard files inside it, and renamed into place at the end; a folder the tool did not write
is refused, like bad options or part files, before anything is written.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedforge.errors import UserError
from embedforge.extras import require
from embedforge.files.atomic import fsync_path, staged_folder
from embedforge.files.file_sha256 import file_sha256
from embedforge.files.markers import prepare_folder, write_marker
from embedforge.index.embedding_index import Metric, default_nlist
from embedforge.index.embedding_parts import (
    EmbeddingParts,
    open_embedding_parts,
    read_rows,
    read_shards,
    shard_bounds,
)
from embedforge.index.ivfpq_index import FILES, FORMAT, FORMAT_VERSION, IVFPQ_INDEX
from embedforge.index.nprobe_calibration import QUERIES, ExactNeighbours, K, choose_nprobe
from embedforge.progress import progress_bar

PQ_BITS = 8  # 256 centroids per sub-quantiser: one byte per sub-vector, FAISS's fast path
TRAIN_POINTS_PER_LIST = 50  # FAISS warns under 39 points per k-means centroid
MIN_TRAIN_SIZE = 10_000  # the PQ's 256 centroids want >= 39 * 256 points too
SAMPLE_SEED = 1234  # the training sample's rows; FAISS seeds its k-means with 1234 as well


def default_pq_m(dim: int) -> int:
    """Sub-quantisers for ``dim``: the largest divisor of ``dim`` at most dim / 4, so each
    code byte covers about 4 dimensions (16 bytes for 64-d).

    >>> default_pq_m(64), default_pq_m(16), default_pq_m(10), default_pq_m(3)
    (16, 4, 2, 1)
    """
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


def default_train_size(count: int, nlist: int) -> int:
    """Rows sampled to train on: 50 per list, at least 10,000, at most all of them."""
    return min(count, max(TRAIN_POINTS_PER_LIST * nlist, MIN_TRAIN_SIZE))


@dataclass(frozen=True)
class IVFPQPlan:
    """A build checked before anything is written: the table and the resolved parameters
    (``nprobe`` is added once the calibration chose or measured it)."""

    parts: EmbeddingParts
    params: dict[str, int]
    metric: Metric
    nprobe: int | None
    target_recall: float


def plan_ivfpq(
    source: str | os.PathLike[str],
    *,
    shards: int = 1,
    metric: Metric = "l2",
    nlist: int | None = None,
    nprobe: int | None = None,
    pq_m: int | None = None,
    rerank: int = 10,
    train_size: int | None = None,
    target_recall: float = 0.95,
) -> IVFPQPlan:
    """Check the embeddings table ``source`` (a Parquet file or a folder of part files, as
    ``embedforge embed`` writes) and the options, from the Parquet footers alone.

    Args:
        shards: runs of consecutive rows added one at a time (memory: one shard).
        metric: ``"l2"`` or ``"inner_product"``.
        nlist: inverted lists; default round(sqrt(n)) (:func:`default_nlist`).
        nprobe: lists visited per query, recorded; default the fewest that reach
            ``target_recall`` on the table's own rows (:mod:`~embedforge.index.nprobe_calibration`).
        pq_m: PQ sub-quantisers, a divisor of the dimension (:func:`default_pq_m`).
        rerank: candidates per neighbour re-ranked exactly (0: PQ distances only).
        train_size: rows sampled for training (:func:`default_train_size`).
        target_recall: the recall@10 the chosen nprobe must reach, measured against exact
            search for 1,000 rows of the table outside the training sample (their own row
            left out).
    """
    parts = open_embedding_parts(source)
    params = resolve_params(
        parts, shards=shards, nlist=nlist, nprobe=nprobe, pq_m=pq_m, rerank=rerank,
        train_size=train_size,
    )  # fmt: skip
    if metric not in ("l2", "inner_product"):
        raise UserError(f"metric must be 'l2' or 'inner_product', not {metric!r}")
    if not 0.0 < target_recall <= 1.0:
        raise UserError(f"--target-recall must be in (0, 1]; got {target_recall}")
    return IVFPQPlan(parts, params, metric, nprobe, target_recall)


def build_ivfpq(
    source: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = False,
    **options: Any,
) -> Path:
    """Index the embeddings table ``source`` into the IVF-PQ folder ``directory``, with the
    options of :func:`plan_ivfpq`; ``overwrite`` replaces an IVF-PQ folder this tool wrote.
    """
    return write_ivfpq(plan_ivfpq(source, **options), directory, overwrite=overwrite,
                       progress=progress)  # fmt: skip


def write_ivfpq(
    plan: IVFPQPlan, directory: str | os.PathLike[str], *, overwrite: bool, progress: bool
) -> Path:
    """Build the planned index into ``directory`` (staged, renamed into place at the end)."""
    directory = Path(directory)
    parts, params, metric = plan.parts, dict(plan.params), plan.metric
    prepare_folder(directory, IVFPQ_INDEX, overwrite=overwrite, hint="pass --overwrite")
    faiss = require("faiss", "faiss", "an IVF-PQ index is built")
    from faiss.contrib.ondisk import merge_ondisk  # after require: a clear error first

    with staged_folder(directory) as staging:
        trained, query_rows, queries = _train(faiss, parts, params, metric)
        exact = ExactNeighbours(queries, k=min(K, parts.count - 1), metric=metric)
        shard_files = _add_shards(faiss, parts, trained, exact, staging, params["shards"], progress)
        merge_ondisk(trained, [str(path) for path in shard_files], str(staging / "lists.ivfdata"))
        shutil.rmtree(staging / "shards")
        calibration = choose_nprobe(
            trained, np.load(staging / "embeddings.npy", mmap_mode="r"), exact, query_rows,
            nlist=params["nlist"], rerank=params["rerank"], target=plan.target_recall,
            fixed=plan.nprobe,
        )  # fmt: skip
        params["nprobe"] = trained.nprobe = calibration.nprobe
        faiss.write_index(trained, str(staging / "index.faiss"))
        del trained  # unmaps lists.ivfdata before the folder moves
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "metric": metric,
            "kind": "ivfpq",
            "dim": parts.dim,
            "count": parts.count,
            "params": params,
            "calibration": {
                "recall": calibration.recall,
                "k": calibration.k,
                "queries": calibration.queries,
                "target": plan.target_recall,
            },
            "sha256": {name: file_sha256(staging / name) for name in FILES},
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        write_marker(staging, IVFPQ_INDEX)
        for name in (*FILES, "meta.json"):
            fsync_path(staging / name)
    return directory


def resolve_params(
    parts: EmbeddingParts,
    *,
    shards: int,
    nlist: int | None,
    nprobe: int | None,
    pq_m: int | None,
    rerank: int,
    train_size: int | None,
) -> dict[str, int]:
    """The build's parameters, defaults filled in and each checked against the table; a
    given ``nprobe`` is checked here and recorded after the calibration measured it."""
    count, dim = parts.count, parts.dim
    if count < 1 << PQ_BITS:
        raise UserError(
            f"{parts.source}: {count} rows; "
            f"IVF-PQ trains {1 << PQ_BITS} centroids per sub-quantiser and needs at least that "
            "many rows: use --kind flat (exact) for a collection this small"
        )
    shard_bounds(count, shards)  # checks 1 <= shards <= count
    nlist = default_nlist(count) if nlist is None else nlist
    if not 1 <= nlist <= count:
        raise UserError(f"--nlist must be between 1 and the number of rows ({count}); got {nlist}")
    if nprobe is not None and not 1 <= nprobe <= nlist:
        raise UserError(f"--nprobe must be between 1 and nlist ({nlist}); got {nprobe}")
    pq_m = default_pq_m(dim) if pq_m is None else pq_m
    if pq_m < 1 or dim % pq_m:
        raise UserError(f"--pq-m must divide the embedding dimension {dim}; got {pq_m}")
    if rerank < 0:
        raise UserError(f"--rerank must be 0 (off) or more candidates per neighbour; got {rerank}")
    train_size = default_train_size(count, nlist) if train_size is None else train_size
    if not max(nlist, 1 << PQ_BITS) <= train_size <= count:
        raise UserError(
            f"--train-size must be at least nlist ({nlist}) and {1 << PQ_BITS} (the PQ's "
            f"centroids) and at most the number of rows ({count}); got {train_size}"
        )
    return {
        "nlist": nlist, "pq_m": pq_m, "pq_bits": PQ_BITS, "rerank": rerank,
        "shards": shards, "train_size": train_size,
    }  # fmt: skip


def _train(
    faiss: Any, parts: EmbeddingParts, params: dict[str, int], metric: Metric
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The trained, empty IVF-PQ index (k-means and PQ on a seeded sample of rows), and the
    calibration queries: row numbers and vectors, read in the same pass as the sample."""
    rng = np.random.default_rng(SAMPLE_SEED)
    order = rng.permutation(parts.count)  # the first train_size rows train, the next query
    train_rows = np.sort(order[: params["train_size"]])
    rest = order[params["train_size"] : params["train_size"] + QUERIES]
    query_rows = rest if len(rest) else order[:QUERIES]  # all rows train: query with them
    rows = np.union1d(train_rows, query_rows)  # sorted
    vectors = read_rows(parts, rows)  # (train + queries, d)
    queries = vectors[np.searchsorted(rows, query_rows)]
    sample = vectors[np.searchsorted(rows, train_rows)]
    del vectors
    faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    quantizer = faiss.IndexFlat(parts.dim, faiss_metric)
    index = faiss.IndexIVFPQ(
        quantizer, parts.dim, params["nlist"], params["pq_m"], params["pq_bits"], faiss_metric
    )
    index.own_fields = True  # the index frees its quantiser
    quantizer.this.disown()
    index.train(sample)
    return index, query_rows, queries


def _add_shards(
    faiss: Any,
    parts: EmbeddingParts,
    trained: Any,
    exact: ExactNeighbours,
    staging: Path,
    shards: int,
    progress: bool,
) -> list[Path]:
    """Add each shard to a copy of ``trained`` and write it to ``staging/shards/``; append
    its vectors to ``staging/embeddings.npy`` and its ids to ``staging/ids.json``, so
    neither the vectors nor the ids of the whole table are ever held; and find the
    calibration queries' ``exact`` neighbours among its rows."""
    (staging / "shards").mkdir()
    files = []
    header = {"descr": "<f4", "fortran_order": False, "shape": (parts.count, parts.dim)}
    with (
        open(staging / "embeddings.npy", "wb") as vectors_file,
        open(staging / "ids.json", "w", encoding="utf-8") as ids_file,
    ):
        np.lib.format.write_array_header_1_0(vectors_file, header)
        ids_file.write("[")
        for shard in progress_bar(read_shards(parts, shards), show=progress, total=shards,
                                  desc="shards"):  # fmt: skip
            index = faiss.clone_index(trained)
            rows = np.arange(shard.start, shard.start + len(shard.ids), dtype=np.int64)
            index.add_with_ids(shard.vectors, rows)
            files.append(staging / "shards" / f"shard_{len(files):05d}.faiss")
            faiss.write_index(index, str(files[-1]))
            del index
            vectors_file.write(shard.vectors.tobytes())
            exact.add(shard.vectors, start=shard.start)
            ids_file.write(("," if shard.start else "") + json.dumps(shard.ids.tolist())[1:-1])
        ids_file.write("]")
    return files
