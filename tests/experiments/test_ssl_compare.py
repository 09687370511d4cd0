import json
from pathlib import Path

from embedforge.cli import main
from embedforge.experiments.ssl_compare import ENCODERS, machine
from embedforge.files.run_folder import LAST

# two methods of seven: every row type (baselines, SimCLR's variants, a method) in less time
METHODS = ["--methods", "simclr,byol"]
CHOSEN = [e for e in ENCODERS if e.method in (None, "simclr", "byol")]


def test_a_tiny_comparison_writes_every_file_and_reloads_its_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ssl"
    arguments = ["experiment", "ssl-compare", "--epochs-scale", "0.01", "--size", "300", *METHODS]
    assert main([*arguments, "--out", str(out)]) == 0
    for name in ("results.md", "results.json", "few_shot.png", "rsm.png", "report.html"):
        assert (out / name).is_file()
    results = json.loads((out / "results.json").read_text())
    assert [row["encoder"] for row in results["rows"]] == [e.name for e in CHOSEN]
    assert "BYOL" in [row["encoder"] for row in results["rows"]] and results["methods"] == [
        "byol",
        "simclr",
    ]
    for row in results["rows"]:  # the main probe is the few-shot curve's "all labels" point
        assert results["few_shot"][row["encoder"]][-1] == [1.0, row["probe"]]
    supervised = next(row for row in results["rows"] if row["encoder"] == "supervised")
    assert 0.0 <= supervised["joint"] <= 1.0  # its own classifier is read back too
    for row, encoder in zip(results["rows"], CHOSEN, strict=True):  # the tutorial's probe
        assert (row["tutorial_probe"] is None) == (encoder.tutorial_probe_epochs is None)
        assert row["tutorial_probe"] is None or 0.0 <= row["tutorial_probe"] <= 1.0
    assert [row["encoder"] for row in results["biased"]] == [
        e.name for e in CHOSEN if e.in_biased_test
    ]
    assert len(results["few_shot"]) == len(CHOSEN) + 1  # + supervised retrained per fraction
    assert all(len(curve) == 6 for curve in results["few_shot"].values())
    markdown = (out / "results.md").read_text()
    assert markdown.count("\n| SimCLR |") == 3  # main, biased and few-shot tables
    assert "--epochs-scale 0.01" in markdown and "| BYOL |" in markdown
    assert f"min on {machine()};" in markdown  # where the wall time was measured
    page = (out / "report.html").read_text()
    assert all(f"<section id='{s}'>" in page for s in ("results", "biased", "few-shot", "rsm"))

    checkpoints = sorted((out / "runs").glob(f"*/{LAST}"))
    trained = {path: path.stat().st_mtime_ns for path in checkpoints}
    assert main([*arguments, "--out", str(out)]) == 0  # the second time loads every run
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == trained
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]


def test_bad_arguments_are_one_clear_error(tmp_path: Path, capsys) -> None:
    arguments = ["experiment", "ssl-compare", "--epochs-scale", "0", "--out", str(tmp_path)]
    assert main(arguments) == 2
    assert "--epochs-scale must be positive" in capsys.readouterr().err
    arguments = ["experiment", "ssl-compare", "--methods", "simclr,byl", "--out", str(tmp_path)]
    assert main(arguments) == 2
    assert "--methods: unknown byl; expected barlow_twins, byol" in capsys.readouterr().err


def test_without_training_the_runs_not_complete_are_listed_as_pending(tmp_path: Path) -> None:
    out = tmp_path / "ssl"
    arguments = ["experiment", "ssl-compare", "--epochs-scale", "0.01", "--size", "300"]
    assert main([*arguments, "--no-train", "--out", str(out)]) == 0  # every method's row
    rows = json.loads((out / "results.json").read_text())["rows"]
    for row, encoder in zip(rows, ENCODERS, strict=True):
        trained = encoder.recipe is not None
        assert (row["pending"] or "").startswith("0/") == trained  # nothing was trained
        assert (row["probe"] is None) == trained
    markdown = (out / "results.md").read_text()
    assert "Not complete when this was written" in markdown and "pending (0/1 epochs)" in markdown
    assert not list((out / "runs").glob(f"*/{LAST}"))
