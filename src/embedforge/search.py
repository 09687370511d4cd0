"""Search by example: a trained model and a FAISS index over a collection, together.

Palette runs index and search palette tables; runs trained on an image folder index and
search image files (a folder of them, or a CSV naming them), the re-identification use:
index the known photos, search with new ones.

An index folder is self-contained, so ``embedforge search`` needs nothing else:

    INDEX_DIR/run/     the run's recipe and weights (embeds raw queries the same way)
    INDEX_DIR/index/   the EmbeddingIndex over the collection's embeddings, with its ids

It is written into a temporary sibling and renamed into place, so an interrupted
build never leaves half an index where a whole one was; an existing folder is
replaced only if it is a search folder of ours and ``overwrite`` is given.

An index folder is trusted input: each file of ``index/`` is checked against the sha256
its ``meta.json`` records before it is parsed (see :mod:`embedforge.index.embedding_index`).
To use a folder from elsewhere without trusting its FAISS file, load it with
``rebuild=True`` (``embedforge search --rebuild``), which builds the index again from the
kept vectors, or rewrite the folder's index once with :func:`rebuild_index`
(``embedforge index rebuild``).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from embedforge.embed import Run, load_run
from embedforge.errors import UserError
from embedforge.files.atomic import staged_folder
from embedforge.files.markers import FolderKind, is_folder_of, prepare_folder, write_marker
from embedforge.index.embedding_index import EmbeddingIndex
from embedforge.index.ivfpq_build import plan_ivfpq, write_ivfpq
from embedforge.index.ivfpq_index import IVFPQ_INDEX, IVFPQIndex

Source = str | os.PathLike[str] | pd.DataFrame
SEARCH = FolderKind("search", frozenset({"run", "index"}))


@dataclass
class Searcher:
    """A model and an index over a collection: embeds raw queries, returns neighbours."""

    run: Run
    index: EmbeddingIndex | IVFPQIndex

    @classmethod
    def build(
        cls,
        run_dir: str | os.PathLike[str],
        collection: Source,
        *,
        metric: Literal["l2", "inner_product"] = "l2",
        kind: Literal["flat", "ivf", "hnsw"] = "flat",
        progress: bool = True,
    ) -> "Searcher":
        run = load_run(run_dir)
        frame = run.embed(collection, progress=progress)
        return cls.from_embeddings(run, frame, metric=metric, kind=kind)

    @classmethod
    def from_embeddings(
        cls,
        run: Run,
        frame: pd.DataFrame,
        *,
        metric: Literal["l2", "inner_product"] = "l2",
        kind: Literal["flat", "ivf", "hnsw"] = "flat",
    ) -> "Searcher":
        """Index a collection ``run`` has already embedded (``frame``: ids as index, one
        column per dimension), so a caller that wrote them out need not embed them again."""
        vectors = frame.to_numpy(dtype=np.float32)  # (n, d)
        return cls(
            run, EmbeddingIndex.build(vectors, frame.index.to_numpy(), metric=metric, kind=kind)
        )

    def search(self, queries: Source, k: int = 10, *, progress: bool = False) -> pd.DataFrame:
        """One row per (query, rank): ``query_id, rank, neighbour_id, distance``, nearest first."""
        frame = self.run.embed(queries, progress=progress)
        found = self.index.search(frame.to_numpy(dtype=np.float32), k)
        count = found.ids.shape[1]
        return pd.DataFrame(
            {
                "query_id": np.repeat(frame.index.to_numpy(), count),
                "rank": np.tile(np.arange(1, count + 1), len(frame)),
                "neighbour_id": found.ids.reshape(-1),
                "distance": found.distances.reshape(-1),
            }
        )

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the index folder (``run/`` and ``index/``) atomically."""
        directory = Path(directory)
        check_search_folder(directory, overwrite=overwrite)
        with staged_folder(directory) as staging:
            write_marker(staging, SEARCH)
            self.run.save(staging / "run")
            self.index.save(staging / "index")
        return directory

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, rebuild: bool = False, nprobe: int | None = None
    ) -> "Searcher":
        """Read a folder written by :meth:`save` or :func:`build_ivfpq_search`; ``rebuild``
        builds the index again from its kept vectors instead of reading ``index.faiss``
        (:meth:`EmbeddingIndex.load`); ``nprobe`` overrides an IVF index's recorded one."""
        directory = Path(directory)
        _require_search_folder(directory)
        index = _load_index(directory / "index", rebuild=rebuild)
        if nprobe is not None:
            index.set_nprobe(nprobe)
        return cls(load_run(directory / "run"), index)


def build_ivfpq_search(
    run_dir: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = False,
    **options: Any,
) -> IVFPQIndex:
    """A search folder over a table ``run_dir`` has already embedded (``embedforge embed``:
    a Parquet file or a folder of part files), its index IVF-PQ built shard by shard
    (:func:`~embedforge.index.ivfpq_build.plan_ivfpq` takes the ``options``); ``embedforge
    search`` then embeds raw queries with the run, as for any index. The table, the options
    and the folder are all checked before anything is written."""
    directory = Path(directory)
    plan = plan_ivfpq(embeddings, **options)
    check_search_folder(directory, overwrite=overwrite)
    run = load_run(run_dir)
    with staged_folder(directory) as staging:
        write_marker(staging, SEARCH)
        run.save(staging / "run")
        write_ivfpq(plan, staging / "index", overwrite=False, progress=progress)
    return IVFPQIndex.load(directory / "index")


def _load_index(directory: Path, *, rebuild: bool) -> EmbeddingIndex | IVFPQIndex:
    """The index in ``directory``, of whichever format its marker names."""
    if not is_folder_of(directory, IVFPQ_INDEX):
        return EmbeddingIndex.load(directory, rebuild=rebuild)
    if rebuild:
        raise UserError(
            f"{directory}: an IVF-PQ index is not rebuilt in place; build it again from the "
            "embeddings (`embedforge index build --kind ivfpq`)"
        )
    return IVFPQIndex.load(directory)


def rebuild_index(directory: str | os.PathLike[str]) -> EmbeddingIndex:
    """Build a search folder's index again from its kept vectors and write it in place.

    ``index.faiss`` is not read; the rebuilt index (the same kind, with the recorded
    parameters) replaces ``index/`` atomically, with fresh hashes in its ``meta.json``, so a
    folder from elsewhere is then searched with a FAISS file built here. Only our own index
    folder is replaced (``prepare_folder``): a file the user put inside is never deleted.
    """
    directory = Path(directory)
    _require_search_folder(directory)
    index = _load_index(directory / "index", rebuild=True)  # refuses an IVF-PQ index
    assert isinstance(index, EmbeddingIndex)
    index.save(directory / "index", overwrite=True)
    return index


def check_search_folder(directory: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, a folder ``save`` may not write (see embedforge.files.markers)."""
    prepare_folder(directory, SEARCH, overwrite=overwrite, hint="pass --overwrite to replace it")


def _require_search_folder(directory: Path) -> None:
    if not is_folder_of(directory, SEARCH):
        raise UserError(
            f"{directory}: not an embedforge index folder (expected one written by "
            "'embedforge index build')"
        )
