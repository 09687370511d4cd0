from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedforge.cli import main
from embedforge.embed import PaletteRun
from embedforge.errors import UserError
from embedforge.search import PaletteSearcher


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


def test_search_equals_brute_force_over_the_embedding(
    run_dir: Path, palette_csv: Path, tmp_path: Path
) -> None:
    searcher = PaletteSearcher.build(run_dir, palette_csv, progress=False)
    loaded = PaletteSearcher.load(searcher.save(tmp_path / "index"))
    found = loaded.search(palette_csv, k=5)
    vectors = PaletteRun.load(run_dir).embed(palette_csv, progress=False)
    matrix = vectors.to_numpy()
    distances = np.linalg.norm(matrix[:, None, :] - matrix[None, :, :], axis=2)
    expected = np.sort(distances, axis=1)[:, :5].reshape(-1)
    assert np.allclose(found["distance"].to_numpy(), expected, atol=1e-4)


def test_bad_index_folders_are_user_errors(
    tmp_path: Path, run_dir: Path, palette_csv: Path
) -> None:
    with pytest.raises(UserError, match="not an index folder"):
        PaletteSearcher.load(tmp_path)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    searcher = PaletteSearcher.build(run_dir, palette_csv, progress=False)
    with pytest.raises(UserError, match="not an embedforge index folder"):
        searcher.save(occupied)
    assert (occupied / "notes.txt").read_text() == "mine"
