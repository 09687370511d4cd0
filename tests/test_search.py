import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedforge.cli import main
from embedforge.embed import PaletteRun
from embedforge.errors import UserError
from embedforge.recipe import parse_recipe
from embedforge.search import Searcher
from embedforge.train.trainer import train


def test_index_build_and_search_round_trip_through_the_cli(
    run_dir: Path, palette_csv: Path, tmp_path: Path, capsys
) -> None:
    index_dir = tmp_path / "index"
    assert main(["index", "build", str(run_dir), str(palette_csv), "--out", str(index_dir)]) == 0
    out = tmp_path / "neighbours.csv"
    assert main(["search", str(index_dir), str(palette_csv), "-k", "3", "--out", str(out)]) == 0
    neighbours = pd.read_csv(out)
    assert list(neighbours.columns) == ["query_id", "rank", "neighbour_id", "distance"]
    assert len(neighbours) == 3 * neighbours["query_id"].nunique()
    first = neighbours[neighbours["rank"] == 1]
    assert (first["query_id"] == first["neighbour_id"]).all()  # an object finds itself first
    assert np.allclose(first["distance"], 0.0, atol=1e-3)
    assert (neighbours.groupby("query_id")["distance"].diff().dropna() >= -1e-6).all()


def _brute_force_distances(run_dir: Path, palette_csv: Path, k: int) -> np.ndarray:
    """The k smallest Euclidean distances of each palette to all, flattened query by query."""
    matrix = PaletteRun.load(run_dir).embed(palette_csv, progress=False).to_numpy()
    distances = np.linalg.norm(matrix[:, None, :] - matrix[None, :, :], axis=2)
    return np.sort(distances, axis=1)[:, :k].reshape(-1)


def test_search_equals_brute_force_over_the_embedding(
    run_dir: Path, palette_csv: Path, tmp_path: Path
) -> None:
    searcher = Searcher.build(run_dir, palette_csv, progress=False)
    loaded = Searcher.load(searcher.save(tmp_path / "index"))
    found = loaded.search(palette_csv, k=5)
    expected = _brute_force_distances(run_dir, palette_csv, 5)
    assert np.allclose(found["distance"].to_numpy(), expected, atol=1e-4)


def test_search_rebuild_never_reads_the_faiss_file(
    run_dir: Path, palette_csv: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("faiss")  # without it the folder has no index.faiss
    folder = Searcher.build(run_dir, palette_csv, progress=False).save(tmp_path / "index")
    (folder / "index" / "index.faiss").write_bytes(b"\x00garbage from elsewhere")
    assert main(["search", str(folder), str(palette_csv)]) == 2
    assert "--rebuild" in capsys.readouterr().err
    out = tmp_path / "neighbours.csv"
    assert (
        main(["search", str(folder), str(palette_csv), "-k", "5", "--rebuild", "--out", str(out)])
        == 0
    )
    expected = _brute_force_distances(run_dir, palette_csv, 5)
    assert np.allclose(pd.read_csv(out)["distance"].to_numpy(), expected, atol=1e-4)
    found = Searcher.load(folder, rebuild=True).search(palette_csv, k=5)
    assert np.allclose(found["distance"].to_numpy(), expected, atol=1e-4)
    assert (folder / "index" / "index.faiss").read_bytes() == b"\x00garbage from elsewhere"


def test_index_rebuild_rewrites_the_faiss_file_in_place(
    run_dir: Path, palette_csv: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("faiss")  # without it the folder has no index.faiss
    searcher = Searcher.build(run_dir, palette_csv, progress=False)
    folder = searcher.save(tmp_path / "index")
    saved = (folder / "index" / "index.faiss").read_bytes()
    (folder / "index" / "index.faiss").write_bytes(b"\x00garbage from elsewhere")
    assert main(["index", "rebuild", str(folder)]) == 0
    assert f"rebuilt the flat index of {len(searcher.index)} objects" in capsys.readouterr().out
    assert (folder / "index" / "index.faiss").read_bytes() == saved  # a flat index: the same
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temporary left
    found = Searcher.load(folder).search(palette_csv, k=5)  # no --rebuild needed any more
    assert np.allclose(
        found["distance"], _brute_force_distances(run_dir, palette_csv, 5), atol=1e-4
    )

    (folder / "index" / "notes.txt").write_text("mine")
    assert main(["index", "rebuild", str(folder)]) == 2
    assert "holds files embedforge did not write (notes.txt)" in capsys.readouterr().err
    assert (folder / "index" / "notes.txt").read_text() == "mine"
    assert main(["index", "rebuild", str(tmp_path)]) == 2
    assert "not an embedforge index folder" in capsys.readouterr().err


def test_bad_index_folders_are_user_errors(
    tmp_path: Path, run_dir: Path, palette_csv: Path
) -> None:
    with pytest.raises(UserError, match="not an embedforge index folder"):
        Searcher.load(tmp_path)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    searcher = Searcher.build(run_dir, palette_csv, progress=False)
    with pytest.raises(UserError, match="occupied: holds files embedforge did not write"):
        searcher.save(occupied)
    assert (occupied / "notes.txt").read_text() == "mine"


def test_an_image_folder_run_indexes_and_searches_image_files(
    reid_run: Path, reid_folder: Path, tmp_path: Path, capsys
) -> None:
    index = tmp_path / "index"
    images = reid_folder / "images"
    assert main(["index", "build", str(reid_run), str(images), "--out", str(index)]) == 0
    assert f"indexed {len(list(images.iterdir()))} objects" in capsys.readouterr().out
    queries = tmp_path / "queries"
    queries.mkdir()
    names = ["whale0_3.png", "whale4_1.png", "whale7_0.png"]
    for name in names:
        shutil.copy(images / name, queries / name)
    (queries / "queries.csv").write_text("image\n" + "\n".join(names) + "\n")
    out = tmp_path / "neighbours.csv"
    assert (
        main(["search", str(index), str(queries / "queries.csv"), "-k", "3", "--out", str(out)])
        == 0
    )
    found = pd.read_csv(out)
    first = found[found["rank"] == 1].set_index("query_id")
    assert sorted(first.index) == sorted(names)
    assert (first["neighbour_id"] == first.index).all()  # each photo finds itself first
    assert (first["distance"] < 1e-3).all()
    by_folder = Searcher.load(index).search(queries, k=3)  # a folder of queries works too
    assert sorted(by_folder["query_id"].unique()) == sorted(names)


def test_image_files_need_a_run_trained_on_an_image_folder(tmp_path: Path, capsys) -> None:
    recipe = parse_recipe({"embedder": {"dim": 8}, "train": {"epochs": 1}})
    train(recipe, tmp_path / "digits", progress=False)
    assert (
        main(
            [
                "index",
                "build",
                str(tmp_path / "digits"),
                str(tmp_path),
                "--out",
                str(tmp_path / "i"),
            ]
        )
        == 2
    )
    assert "needs a run trained on an image folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def palette_embeddings(
    run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """400 palettes and their embeddings, as `embedforge embed` writes them."""
    from embedforge.data.synthetic_palettes import synthetic_palettes

    folder = tmp_path_factory.mktemp("ivfpq")
    synthetic_palettes(400, seed=7).rows.to_csv(folder / "palettes.csv", index=False)
    argv = ["embed", str(run_dir), str(folder / "palettes.csv"), "--out"]
    assert main([*argv, str(folder / "emb.parquet")]) == 0
    return folder / "palettes.csv", folder / "emb.parquet"


def test_an_ivfpq_index_builds_in_shards_and_searches_through_the_cli(
    run_dir: Path, palette_embeddings: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    pytest.importorskip("faiss")
    palettes, embeddings = palette_embeddings
    index_dir = tmp_path / "index"
    argv = ["index", "build", str(run_dir), str(embeddings), "--out", str(index_dir)]
    assert main([*argv, "--kind", "ivfpq", "--shards", "3", "--nlist", "4"]) == 0
    assert "3 shards" in capsys.readouterr().out
    out = tmp_path / "neighbours.csv"
    assert main(["search", str(index_dir), str(palettes), "-k", "3", "--out", str(out)]) == 0
    neighbours = pd.read_csv(out)
    first = neighbours[neighbours["rank"] == 1]
    assert len(first) == 400 and (first["query_id"] == first["neighbour_id"]).all()
    assert np.allclose(first["distance"], 0.0, atol=1e-3)  # re-ranked: exact distances
    moved = Path(shutil.move(index_dir, tmp_path / "moved"))
    again = tmp_path / "again.csv"
    assert main(["search", str(moved), str(palettes), "-k", "3", "--out", str(again)]) == 0
    assert pd.read_csv(again).equals(neighbours)  # the moved folder answers the same
    wider = tmp_path / "wider.csv"
    assert main(["search", str(moved), str(palettes), "--nprobe", "4", "--out", str(wider)]) == 0
    nearest = pd.read_csv(wider).query("rank == 1")
    assert (nearest["neighbour_id"] == nearest["query_id"]).all()
    assert main(["search", str(moved), str(palettes), "--nprobe", "5"]) == 2
    assert "--nprobe must be between 1 and the index's nlist (4)" in capsys.readouterr().err
    assert main(["search", str(moved), str(palettes), "--rebuild"]) == 2
    assert "not rebuilt in place" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--kind", "ivfpq", "--shards", "0"], "--shards must be between 1 and the number of rows"),
        (["--kind", "ivfpq", "--shards", "401"], "--shards must be between 1"),
        (["--kind", "flat", "--shards", "2"], "--shards: options of --kind ivfpq"),
    ],
)
def test_bad_ivfpq_options_are_one_line_and_write_nothing(
    run_dir: Path, palette_embeddings: tuple[Path, Path], tmp_path: Path, capsys,
    options: list[str], message: str,
) -> None:  # fmt: skip
    out = tmp_path / "index"
    argv = ["index", "build", str(run_dir), str(palette_embeddings[1]), "--out", str(out)]
    assert main([*argv, *options]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []
