"""``embedforge embed --engine ray``: a palette table embedded as a Ray Data job, written as a
folder of Parquet part files.

The job (Ray Data, https://docs.ray.io/en/latest/data/transforming-data.html): one row per
part file of ``DATA`` → ``map_batches`` with :class:`PartEmbedder`, a callable class run by
a pool of ``N`` actors (``compute=ActorPoolStrategy(size=N)``), each loading the run once
and then embedding whole part files → ``write_parquet`` into ``DIR``.

Why a part file is the unit of work, and not Ray's own ``read_csv`` / ``read_parquet``
blocks: a palette object is several rows, and Ray cuts blocks wherever it likes, so an
object could be split between two batches and embedded as two half palettes. Grouping by id
(``groupby(id).map_groups``) would be correct but shuffles the whole table. Instead each
actor reads its part files with the single-process reader
(:func:`~embedforge.data.palette_stream.stream_file`, chunk by chunk, an object's rows
carried across chunks), so an object whose rows are together in one file — what the
single-process path already requires — is always one set, every cell gets the same check
and message, and ids come back exactly as written (Ray's CSV reader would parse ``007`` as
the number 7). An object whose rows are spread over two part files is refused by id before
``DIR`` exists: the ids of the finished parts are checked in the driver
(:class:`~embedforge.data.seen_ids.SeenIds`). The parallelism is the number of part files:
one big file runs on one actor, so split a table into at least ``N`` parts.

``DIR`` is written like every folder of the tool: refused when it holds anything but our own
embeddings (and then only replaced with ``overwrite``), filled as a hidden staging sibling
(:func:`~embedforge.files.atomic.staged_folder`) and renamed into place when every part is
written and checked, so a failure leaves no ``DIR``. Its part files ``part-*.parquet`` have
the single-process output's columns (the id column, then ``emb_0 … emb_{d-1}`` float32);
``pd.read_parquet(DIR)`` reads them together (the marker ``.embedforge.json`` is skipped as
a hidden file). Rows come in no particular order.

On a cluster (``--address``), ``RUN_DIR``, ``DATA`` and ``DIR`` must be paths every node
sees (a shared file system): the actors read the run and the parts, and write the output,
where they run.
"""

import gc
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from embedforge.data.palette_source import palette_spec
from embedforge.data.palette_stream import (
    DEFAULT_CHUNK_ROWS,
    PartLayout,
    check_chunk_rows,
    part_files,
    stream_file,
)
from embedforge.data.palettes import PaletteSpec
from embedforge.data.seen_ids import SeenIds
from embedforge.embed import Backend, PaletteRun, load_run
from embedforge.errors import UserError
from embedforge.extras import require
from embedforge.files.atomic import staged_folder
from embedforge.files.markers import FolderKind, prepare_folder, write_marker
from embedforge.onnx_encoder import load_run_onnx

EMBEDDINGS = FolderKind("embeddings", frozenset(), patterns=("part-*.parquet",))
"""The folder ``--engine ray`` writes: the marker and Ray's Parquet part files."""


class PartEmbedder:
    """A Ray actor's work: the run loaded once, then whole part files embedded, a chunk at a
    time; each chunk's embeddings leave as one Arrow table (id column, ``emb_*``).

    >>> import tempfile
    >>> from embedforge.recipe import parse_recipe
    >>> run_dir = Path(tempfile.mkdtemp()) / "run"
    >>> recipe = parse_recipe({"data": {"source": "palettes"}, "encoder": {"name": "deep_sets"}})
    >>> PaletteRun.from_recipe(recipe).save(run_dir)
    >>> table = run_dir.parent / "color.csv"
    >>> _ = table.write_text("object_id,percentage,hex\\n007,100,#ffffff\\n")
    >>> embedder = PartEmbedder(str(run_dir), "torch", None, 1024)
    >>> (out,) = embedder(pa.table({"path": [str(table)]}))
    >>> out.column("object_id").to_pylist(), out.num_columns
    (['007'], 65)
    """

    def __init__(
        self, run_dir: str, backend: Backend, layout: PartLayout | None, chunk_rows: int
    ) -> None:
        run = PaletteRun.load(run_dir)
        if backend == "onnx":
            run = replace(run, model=load_run_onnx(run_dir))
        self.run, self.layout, self.chunk_rows = run, layout, chunk_rows
        self.spec: PaletteSpec = palette_spec(run.recipe.data)
        self.device = torch.device("cpu")
        run.model.to(self.device)

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        for path in batch.column("path").to_pylist():
            chunks = stream_file(
                Path(path),
                self.spec,
                chunk_rows=self.chunk_rows,
                seen=SeenIds(),
                layout=self.layout,
            )
            for palettes in chunks:
                frame = self.run.embed_palettes(palettes, device=self.device)
                yield pa.Table.from_pandas(frame.reset_index(), preserve_index=False)


def _part_names(ray: ModuleType) -> object:
    """Ray's file names for the output parts: ``part-<write id>_<task>.parquet``."""

    class PartNames(ray.data.datasource.FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"part-{write_uuid}_{task_index:06d}.parquet"

    return PartNames()


def embed_with_ray(
    run_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    address: str | None = None,
    workers: int | None = None,
    backend: Backend = "torch",
    device: str = "auto",
    chunk_rows: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> int:
    """Embed the palette table ``data`` (a file or a folder of part files) with the run in
    ``run_dir`` on Ray, into the folder ``out``; the number of objects written.

    ``address``: the Ray cluster to join (``"auto"`` inside ``ray job submit``); None starts
    a local Ray, unless this process has already called ``ray.init``. ``workers``: the actor
    pool's size, one CPU each (None: one per part file, at most one per CPU of the cluster).
    Everything that can be checked is checked before Ray starts or anything is written: the
    options, ``out``, the run, and the first chunk of the first part file.
    """
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1 Ray actor")
    if data is None:
        raise UserError(
            "--engine ray embeds DATA (a palette table); omit --engine for a run's own items"
        )
    if device == "cuda":
        raise UserError("--engine ray runs its actors on the CPU: --device cpu (or auto)")
    chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
    check_chunk_rows(chunk_rows)
    out = Path(out)
    prepare_folder(out, EMBEDDINGS, overwrite=overwrite)
    ray = require("ray", "ray", "--engine ray runs the embedding")
    run = load_run(run_dir)
    if not isinstance(run, PaletteRun):
        raise UserError(
            f"{run_dir}: an image run; --engine ray embeds palette tables (embed images "
            "without --engine)"
        )
    if backend == "onnx":
        load_run_onnx(run_dir)  # a missing or stale model.onnx is refused here, not per actor
    parts = [path.resolve() for path in part_files(Path(data))]
    first = next(
        stream_file(parts[0], palette_spec(run.recipe.data), chunk_rows=chunk_rows, seen=SeenIds())
    )
    layout = PartLayout.of(first)

    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,  # an actor's error comes back as the job's exception
        )
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress and sys.stderr.isatty()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        size = workers or max(1, min(len(parts), cpus))
        if size > cpus:
            raise UserError(
                f"--workers {size}: the Ray cluster has {cpus} CPUs and each worker takes one; "
                f"expected at most {cpus}"
            )
        with staged_folder(out) as staging:
            write_marker(staging, EMBEDDINGS)
            job = (str(Path(run_dir).resolve()), backend, layout, chunk_rows)
            failure = _write_parts(ray, parts, staging, job, size, run.id_column)
            # Ray Data lets its actors go by reference counting, and its executor holds
            # reference cycles: collected here, a finished or failed job's actors give their
            # CPUs back now, not at some later collection (a second job on the same Ray
            # would wait for them)
            gc.collect()
            if failure is not None:
                raise failure
            count = _check_distinct(staging, run.id_column, data)
    finally:
        if started:
            ray.shutdown()
    print(f"embedded {count} items on {size} Ray workers: {out}")
    return count


def _write_parts(
    ray: ModuleType,
    parts: list[Path],
    staging: Path,
    job: tuple[str, Backend, PartLayout, int],
    size: int,
    id_column: str,
) -> UserError | None:
    """Run the job into ``staging``; the UserError an actor raised, if one did. The error
    is returned rather than raised here so that no traceback (which would keep this frame,
    the dataset and its actors alive) leaves with it. Parquet dictionaries for the id column
    only, as the single-process writer keeps them for its non-float columns
    (:func:`~embedforge.files.table_writer.dictionary_columns`)."""
    dataset = ray.data.from_items(
        [{"path": str(path)} for path in parts], override_num_blocks=len(parts)
    ).map_batches(
        PartEmbedder,
        fn_constructor_args=job,
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=size),
        num_cpus=1,
    )
    try:
        with _quiet("ray.data"):
            dataset.write_parquet(
                str(staging), filename_provider=_part_names(ray), use_dictionary=[id_column]
            )
    except Exception as error:
        found = _user_error(ray, error)
        if found is None:
            raise
        return found
    return None


def _user_error(ray: ModuleType, error: BaseException) -> UserError | None:
    """The UserError an actor raised, found in the chain of errors Ray raises around it (a
    ``RayTaskError`` is also an instance of the error it wraps, but its message is the
    whole remote traceback; its ``cause`` is the error itself)."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        if isinstance(found, UserError) and not isinstance(found, ray.exceptions.RayError):
            # Ray Data appends its retry advice to the error's message (ray/data/_internal/
            # util.py, _annotate_exception_with_retry_context): not ours to show
            return UserError(str(found).split("\nFailed to apply UDF", 1)[0])
        seen.add(id(found))
        found = getattr(found, "cause", None) or found.__cause__ or found.__context__
    return None


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only ``logger``'s critical messages while the job runs: Ray Data logs its plan, and
    an actor's error with its traceback, which the one UserError line already says."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _check_distinct(folder: Path, id_column: str, data: str | os.PathLike[str]) -> int:
    """The objects in the written parts, after refusing an id found twice: its rows were
    in two part files (each file's own ids were checked by its actor)."""
    seen, count = SeenIds(), 0
    for part in sorted(folder.glob("part-*.parquet")):
        ids = pq.read_table(part, columns=[id_column]).column(0).to_numpy(zero_copy_only=False)
        twice = pd.Index(ids).duplicated()  # (n,) two input parts may share an output part
        repeated = twice.copy()
        repeated[~twice] = seen.add(ids[~twice])
        if repeated.any():
            raise UserError(
                f"{data}: object {ids[int(np.argmax(repeated))]!r} (column {id_column!r}) has "
                "rows in more than one part file; expected each object's rows in one file: "
                "--engine ray embeds each part file on its own"
            )
        count += len(ids)
    return count
