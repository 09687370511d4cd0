"""An index folder that was changed after it was saved is refused at every entrance.

Each way of changing a saved search folder's ``index/`` — a truncated or swapped
``index.faiss``, a swapped ``ids.json``, an edited ``embeddings.npy``, a ``meta.json``
without the hashes or of format version 1 — must give one UserError naming the file and
what to do, through ``EmbeddingIndex.load``, ``Searcher.load`` and ``embedforge search``
(exit code 2, one line on stderr, no traceback).
"""

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedforge.cli import main
from embedforge.errors import UserError
from embedforge.index.embedding_index import EmbeddingIndex
from embedforge.search import Searcher

CHANGED = "the folder was changed after it was saved, or comes from elsewhere"
REBUILD = "`embedforge search --rebuild`"
BUILD_AGAIN = "build the index again (`embedforge index build`)"


@pytest.fixture(scope="module")
def saved(run_dir: Path, palette_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search folder over the palettes, and beside it (``other/``) the index of another
    collection with the same dim, count and kind."""
    root = tmp_path_factory.mktemp("trust")
    searcher = Searcher.build(run_dir, palette_csv, progress=False)
    searcher.save(root / "search")
    index = searcher.index
    other = np.random.default_rng(0).normal(size=(len(index), index.dim))
    EmbeddingIndex.build(other, [f"other{i}" for i in range(len(index))]).save(root / "other")
    return root


def _meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _truncate(index: Path, other: Path) -> None:
    data = (index / "index.faiss").read_bytes()
    (index / "index.faiss").write_bytes(data[: len(data) // 2])


def _edit_vectors(index: Path, other: Path) -> None:
    vectors = np.load(index / "embeddings.npy", allow_pickle=False)
    vectors[0, 0] += 1.0
    np.save(index / "embeddings.npy", vectors, allow_pickle=False)


def _drop_hashes(index: Path, other: Path, **changes: object) -> None:
    meta = _meta(index)
    del meta["sha256"]
    (index / "meta.json").write_text(json.dumps({**meta, **changes}))


Harm = Callable[[Path, Path], None]
TAMPERS: dict[str, tuple[Harm, str, str]] = {  # harm(index, other), culprit file, the way out
    "truncated index.faiss": (_truncate, "index.faiss", REBUILD),
    "swapped index.faiss": (
        lambda index, other: shutil.copy(other / "index.faiss", index / "index.faiss"),
        "index.faiss",
        REBUILD,
    ),
    "swapped ids.json": (
        lambda index, other: shutil.copy(other / "ids.json", index / "ids.json"),
        "ids.json",
        BUILD_AGAIN,
    ),
    "edited embeddings.npy": (_edit_vectors, "embeddings.npy", BUILD_AGAIN),
    "no hashes": (_drop_hashes, "ids.json", BUILD_AGAIN),
    "version 1": (lambda index, other: _drop_hashes(index, other, version=1), "meta.json", ""),
}
NEEDS_FAISS = {"truncated index.faiss", "swapped index.faiss"}


def _expected_message(index: Path, case: str, culprit: str, recorded: dict) -> str:
    """A regex for the whole message: the file, the hashes (12 hex digits), the way out."""
    path = re.escape(str(index / culprit))
    if case == "version 1":
        return rf"^{path}: index format version 1, .*{re.escape(BUILD_AGAIN)}$"
    way_out = re.escape(TAMPERS[case][2])
    found = hashlib.sha256((index / culprit).read_bytes()).hexdigest()[:12]
    expected = f"records {recorded[culprit][:12]}" if case != "no hashes" else "records no sha256"
    return (
        rf"^{path}: its sha256 is {found}, but meta\.json {expected} for it: {CHANGED}; .*{way_out}"
    )


@pytest.mark.parametrize("case", TAMPERS)
def test_a_changed_index_folder_is_one_user_error_everywhere(
    saved: Path, palette_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    if case in NEEDS_FAISS:
        pytest.importorskip("faiss")  # without it the folder has no index.faiss
    folder = Path(shutil.copytree(saved / "search", tmp_path / "search"))
    index = folder / "index"
    recorded = _meta(index)["sha256"]
    harm, culprit, _ = TAMPERS[case]
    harm(index, saved / "other")
    message = _expected_message(index, case, culprit, recorded)

    for load in (lambda: EmbeddingIndex.load(index), lambda: Searcher.load(folder)):
        with pytest.raises(UserError, match=message):
            load()
    capsys.readouterr()
    assert main(["search", str(folder), str(palette_csv)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("embedforge: error: ")
    assert re.search(message, lines[0].removeprefix("embedforge: error: "))
