import sys
from pathlib import Path

import pandas as pd
import pytest

from embedforge.cli import build_parser, main
from embedforge.quickstart import run_quickstart


def test_quickstart_writes_every_stage_and_says_where(tmp_path: Path, capsys) -> None:
    out = tmp_path / "qs"
    files = run_quickstart(out, palette_objects=300, palette_epochs=1, digits_epochs=1)
    printed = capsys.readouterr().out
    assert all(path.exists() and str(path) in printed for path in files.values())
    assert not [p for p in tmp_path.iterdir() if p != out]  # the staging folder is gone
    palettes = pd.read_parquet(out / "palettes" / "embeddings.parquet")
    assert len(palettes) == 300 and palettes["object_id"].is_unique
    found = pd.read_csv(out / "palettes" / "neighbours.csv")
    first = found[found["rank"] == 1]
    assert (first["query_id"] == first["neighbour_id"]).all()  # each query finds itself first
    digits = pd.read_parquet(out / "digits" / "embeddings.parquet")
    assert len(digits) == 1797 and set(digits["split"]) == {"train", "test"}
    for report in ("palettes", "digits"):
        assert "<section id='map'>" in (out / report / "run" / "report.html").read_text()


def test_quickstart_command_writes_to_a_quickstart_folder_by_default() -> None:
    args = build_parser().parse_args(["quickstart"])
    assert args.out == "quickstart" and args.handler.__name__ == "_run_quickstart"


def test_quickstart_without_the_report_extra_stops_before_any_work(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ModuleNotFoundError
    assert main(["quickstart", "--out", str(tmp_path / "qs")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no stage started
    assert captured.err.splitlines() == [
        "embedforge: error: the report draws its plots with matplotlib, which is not installed: "
        "pip install embedforge[report]"
    ]
    assert list(tmp_path.iterdir()) == []
