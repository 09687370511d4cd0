"""``embed --engine ray``: on a local Ray, the same embeddings as the single-process path,
row for row by id, with the ids as written; and what it refuses before writing anything."""

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from embedforge.cli import main
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.embed import embed_file
from embedforge.errors import UserError
from embedforge.files.markers import MARKER
from embedforge.ray_embed import PartEmbedder, embed_with_ray

ODD_IDS = ["007", " spaced ", 'a,"quoted",id', "ünïcödé", "NA", "1e3", "tab\there"]
"""Text ids a number parser or a CSV writer would change."""


CPUS = 2


@pytest.fixture(scope="module")
def ray_started() -> Iterator[ModuleType]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=CPUS, include_dashboard=False)
    # a job that cannot get its actors fails in two minutes, not Ray's default half hour
    ray.data.DataContext.get_current().execution_no_progress_timeout_s = 120
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_local(ray_started: ModuleType) -> Iterator[None]:
    """One local Ray for the module; after each test, every CPU free again: a finished or
    failed job must not leave its actors holding them (the next job would wait for them)."""
    yield
    deadline = time.monotonic() + 30
    while ray_started.available_resources().get("CPU", 0) < CPUS:
        assert time.monotonic() < deadline, "a Ray job's actors still hold CPUs after 30 s"
        time.sleep(0.2)


def _objects(seed: int, ids: list[object]) -> pd.DataFrame:
    """A palette.csv-layout table, each object's rows together, with the given ids."""
    rows = synthetic_palettes(len(ids), seed=seed).rows
    names = dict(zip(rows["object_id"].unique(), ids, strict=True))
    rows = rows.assign(object_id=rows["object_id"].map(names))
    order = {object_id: i for i, object_id in enumerate(ids)}
    return rows.sort_values("object_id", key=lambda c: c.map(order), kind="stable")


def _parts(table: pd.DataFrame, folder: Path, suffix: str, count: int) -> Path:
    """``table`` cut into ``count`` part files, each object in one of them."""
    folder.mkdir()
    ids = table["object_id"].unique()
    for i, chunk in enumerate(np.array_split(ids, count)):
        part = table[table["object_id"].isin(chunk)]
        if suffix == ".csv":
            part.to_csv(folder / f"part-{i}.csv", index=False)
        else:
            part.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def csv_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ids = [*ODD_IDS, *(f"object {i}" for i in range(33))]
    return _parts(_objects(3, ids), tmp_path_factory.mktemp("csv") / "parts", ".csv", 3)


@pytest.fixture(scope="module")
def parquet_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ids = [int(i) for i in np.random.default_rng(0).choice(10**12, 37, replace=False)]
    return _parts(_objects(4, [-1, *ids]), tmp_path_factory.mktemp("pq") / "parts", ".parquet", 4)


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("object_id").sort_index()


@pytest.mark.parametrize("parts", ["csv_parts", "parquet_parts"])
def test_ray_gives_the_single_process_embeddings_row_for_row_by_id(
    ray_local: None, run_dir: Path, parts: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data: Path = request.getfixturevalue(parts)
    embed_file(run_dir, data, tmp_path / "one.parquet", device="cpu", progress=False, chunk_rows=7)
    count = embed_with_ray(run_dir, data, tmp_path / "ray", workers=2, chunk_rows=7, progress=False)
    single = pd.read_parquet(tmp_path / "one.parquet")
    on_ray = pd.read_parquet(tmp_path / "ray")
    assert count == len(single) == len(on_ray)
    assert list(on_ray.columns) == list(single.columns)
    assert on_ray.dtypes.equals(single.dtypes)
    assert _by_id(on_ray).index.equals(_by_id(single).index)
    np.testing.assert_allclose(_by_id(on_ray), _by_id(single), atol=1e-6, rtol=0)
    written = sorted(path.name for path in (tmp_path / "ray").iterdir())
    assert written[0] == MARKER and all(name.startswith("part-") for name in written[1:])


def test_ids_come_back_exactly_as_written(ray_local: None, run_dir: Path, tmp_path: Path) -> None:
    table = _objects(5, ODD_IDS)
    data = _parts(table, tmp_path / "parts", ".csv", 2)
    embed_with_ray(run_dir, data, tmp_path / "ray", progress=False)
    assert sorted(pd.read_parquet(tmp_path / "ray")["object_id"]) == sorted(ODD_IDS)


def test_the_command_line_runs_it_and_replaces_only_its_own_folder(
    ray_local: None, run_dir: Path, csv_parts: Path, tmp_path: Path
) -> None:
    argv = ["embed", str(run_dir), str(csv_parts), "--out", str(tmp_path / "ray"), "--engine"]
    assert main([*argv, "ray", "--workers", "1"]) == 0
    assert main([*argv, "ray"]) == 2  # our own folder: only with --overwrite
    assert main([*argv, "ray", "--overwrite"]) == 0
    assert len(pd.read_parquet(tmp_path / "ray")) == 40


def test_an_object_in_two_part_files_is_refused_and_nothing_is_written(
    ray_local: None, run_dir: Path, tmp_path: Path
) -> None:
    table = _objects(6, ["a", "b", "c", "d"])
    data = tmp_path / "parts"
    data.mkdir()
    table[table["object_id"] != "d"].to_csv(data / "1.csv", index=False)
    table[table["object_id"].isin(["d", "b"])].to_csv(data / "2.csv", index=False)
    with pytest.raises(UserError, match=r"object 'b' \(column 'object_id'\) has rows in more"):
        embed_with_ray(run_dir, data, tmp_path / "ray", progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["parts"]


def test_a_bad_cell_in_a_later_part_is_the_readers_message(
    ray_local: None, run_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = _parts(_objects(7, ["a", "b", "c"]), tmp_path / "parts", ".csv", 3)
    lines = (data / "part-2.csv").read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1], "red", 1)
    (data / "part-2.csv").write_text("\n".join(lines) + "\n")
    expected = f"{data / 'part-2.csv'}, line 2, column 'color_r': expected a number, got 'red'"
    with pytest.raises(UserError) as raised:
        embed_with_ray(run_dir, data, tmp_path / "ray", progress=False)
    assert str(raised.value) == expected  # not Ray's traceback, nor its retry advice
    capfd.readouterr()
    argv = ["embed", str(run_dir), str(data), "--out", str(tmp_path / "ray"), "--engine", "ray"]
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert f"embedforge: error: {expected}\n" in err and "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["parts"]


def test_more_workers_than_cpus_is_refused(
    ray_local: None, run_dir: Path, csv_parts: Path, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"--workers 3: the Ray cluster has 2 CPUs"):
        embed_with_ray(run_dir, csv_parts, tmp_path / "ray", workers=3, progress=False)
    assert not (tmp_path / "ray").exists()


def test_without_ray_the_error_names_the_extra(
    run_dir: Path, csv_parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"which is not installed: pip install embedforge\[ray\]$"):
        embed_with_ray(run_dir, csv_parts, tmp_path / "ray")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--engine", "ray", "--workers", "0"], "--workers 0: expected at least 1 Ray actor"),
        (["--workers", "2"], "--workers and --address are options of --engine ray"),
        (["--address", "auto"], "--workers and --address are options of --engine ray"),
        (["--engine", "ray", "--device", "cuda"], "--engine ray runs its actors on the CPU"),
    ],
)
def test_bad_options_are_refused_before_ray_starts(
    run_dir: Path,
    csv_parts: Path,
    tmp_path: Path,
    options: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "ray"
    assert main(["embed", str(run_dir), str(csv_parts), "--out", str(out), *options]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_of_the_users_is_refused_and_kept(
    run_dir: Path, csv_parts: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")
    with pytest.raises(UserError, match=r"holds files embedforge did not write \(notes.txt\)"):
        embed_with_ray(run_dir, csv_parts, mine)
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "my notes\n"


def test_an_actor_on_the_onnx_backend_gives_the_torch_actors_vectors(
    run_dir: Path, csv_parts: Path, tmp_path: Path
) -> None:
    """The actor's work without Ray: ``--backend onnx`` swaps only the model."""
    pytest.importorskip("onnxruntime")
    from embedforge.export import export_run

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    export_run(run)
    batch = pa.table({"path": [str(csv_parts / "part-0.csv")]})
    (torch_table,) = PartEmbedder(str(run), "torch", None, 1 << 17)(batch)
    (onnx_table,) = PartEmbedder(str(run), "onnx", None, 1 << 17)(batch)
    assert torch_table.column(0).equals(onnx_table.column(0))
    np.testing.assert_allclose(
        onnx_table.drop_columns(["object_id"]).to_pandas(),
        torch_table.drop_columns(["object_id"]).to_pandas(),
        atol=1e-5,
        rtol=0,
    )


def test_an_image_run_is_refused_before_ray_starts(
    reid_run: Path, reid_folder: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    with pytest.raises(UserError, match=r"an image run; --engine ray embeds palette tables"):
        embed_with_ray(reid_run, reid_folder / "images", tmp_path / "ray")
    assert not (tmp_path / "ray").exists()
