"""A user's folder survives every command that writes: refused before anything is written.

The folder holds a ``meta.json`` (the name an index once took as its own, and deleted) and a
``results.csv``; every writer, through the CLI and through Python, with and without
``--overwrite``, must refuse it with exit code 2 and one line naming it, and leave every
byte as it was. An existing output file is likewise replaced only with ``--overwrite``.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from embedforge.cli import main
from embedforge.errors import UserError
from embedforge.estimators import PaletteEmbedder
from embedforge.index.embedding_index import EmbeddingIndex
from embedforge.recipe import BUNDLED

RECIPE = str(BUNDLED / "digits_triplet.yaml")


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def users_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "meta.json").write_text('{"experiment": "mine"}\n')
    (folder / "results.csv").write_text("id,score\n007,0.91\n")
    return folder


def _cli_writers(run_dir: Path, palette_csv: Path) -> dict[str, Callable[[Path], list[str]]]:
    return {
        "train": lambda out: ["train", RECIPE, "--out", str(out)],
        "train --resume": lambda out: ["train", RECIPE, "--out", str(out), "--resume"],
        "index build": lambda out: ["index", "build", str(run_dir), str(palette_csv), "--out",
                                    str(out)],
        "quickstart": lambda out: ["quickstart", "--out", str(out)],
        "ssl-compare": lambda out: ["experiment", "ssl-compare", "--out", str(out)],
    }  # fmt: skip


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(
    "writer", ["train", "train --resume", "index build", "quickstart", "ssl-compare"]
)
def test_every_folder_writer_refuses_a_users_folder(
    writer: str,
    overwrite: bool,
    users_folder: Path,
    run_dir: Path,
    palette_csv: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if overwrite and writer in ("train --resume", "ssl-compare"):
        pytest.skip("--resume with --overwrite is refused alone; an experiment always continues")
    before = _checksums(users_folder)
    argv = _cli_writers(run_dir, palette_csv)[writer](users_folder)
    assert main(argv + (["--overwrite"] if overwrite else [])) == 2
    error = capsys.readouterr().err
    assert f"{users_folder}: holds files embedforge did not write" in error
    assert error.count("\n") == 1 and "Traceback" not in error
    assert _checksums(users_folder) == before


@pytest.mark.filterwarnings("ignore:.*cannot express this run's recipe")  # a CLI recipe
def test_python_writers_refuse_a_users_folder(
    users_folder: Path, run_dir: Path, palette_csv: Path
) -> None:
    from embedforge.search import Searcher

    before = _checksums(users_folder)
    table = pd.read_csv(palette_csv)
    for overwrite in (False, True):
        with pytest.raises(UserError, match="holds files embedforge did not write"):
            PaletteEmbedder(run_dir=users_folder, overwrite=overwrite, epochs=1).fit(table)
        with pytest.raises(UserError, match="holds files embedforge did not write"):
            EmbeddingIndex.build([[0.0, 1.0]], ["a"]).save(users_folder, overwrite=overwrite)
        with pytest.raises(UserError, match="holds files embedforge did not write"):
            Searcher.build(run_dir, palette_csv, progress=False).save(
                users_folder, overwrite=overwrite
            )
        with pytest.raises(UserError, match="holds files embedforge did not write"):
            PaletteEmbedder.load(run_dir).save(users_folder, overwrite=overwrite)
    assert _checksums(users_folder) == before


def test_an_existing_output_file_is_replaced_only_with_overwrite(
    users_folder: Path, run_dir: Path, palette_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = users_folder / "results.csv"
    before = results.read_bytes()
    assert main(["embed", str(run_dir), str(palette_csv), "--out", str(results)]) == 2
    assert f"{results}: exists; pass --overwrite" in capsys.readouterr().err
    assert results.read_bytes() == before
    assert (
        main(["embed", str(run_dir), str(palette_csv), "--out", str(results), "--overwrite"]) == 0
    )
    assert results.read_bytes() != before
