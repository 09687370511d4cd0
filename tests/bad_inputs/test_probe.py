"""The probe itself: it must see every broken promise, or the table proves nothing."""

import warnings
from pathlib import Path

import pytest

from embedforge.bad_inputs.case import Case, Place
from embedforge.bad_inputs.probe import (
    CallOutcome,
    CommandOutcome,
    call_problems,
    command_problems,
    differences,
    meet_by_command,
    run_command,
    snapshot,
)

MISSING_RECIPE = Case(
    "a recipe that is not there",
    make=lambda at: None,
    argv=lambda at: ["train", at("missing.yaml"), "--out", at("run")],
    call=lambda at: None,
    expected="recipe file not found",
    path="missing.yaml",
)


def test_a_clean_refusal_breaks_no_promise(at: Place) -> None:
    assert command_problems(MISSING_RECIPE, at, meet_by_command(MISSING_RECIPE, at)) == []


def test_every_broken_promise_is_named(at: Place) -> None:
    outcome = CommandOutcome(
        argv=[],
        exit_code=1,
        stdout="",
        stderr="Traceback (most recent call last):\nValueError: no\n",
        changes=["added .run.1a2b.new"],
    )
    problems = command_problems(MISSING_RECIPE, at, outcome)
    assert problems[:3] == [
        "exit code 1, not 2",
        "a traceback on stderr",
        f"stderr is not one line starting 'embedforge: error: ': {outcome.stderr!r}",
    ]
    assert problems[3:] == [
        f"the message does not contain {at('missing.yaml')!r}",
        "the message does not contain 'recipe file not found'",
        "added .run.1a2b.new",
    ]
    assert call_problems(MISSING_RECIPE, at, CallOutcome(ValueError("x"), [])) == [
        "raised ValueError: x, not UserError"
    ]


def test_an_escaping_exception_is_a_traceback_and_exit_code_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("embedforge.embed.embed_file", broken)
    outcome = run_command(["embed", "run", "data.csv", "--out", "out.csv"], tmp_path)
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("Traceback") and "RuntimeError: a bug" in outcome.stderr


def test_a_warning_is_shown_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def warns(*args: object, **kwargs: object) -> None:
        warnings.warn("careful", UserWarning, stacklevel=2)

    monkeypatch.setattr("embedforge.embed.embed_file", warns)
    outcome = run_command(["embed", "run", "data.csv", "--out", "out.csv"], tmp_path)
    assert outcome.exit_code == 0 and "UserWarning: careful" in outcome.stderr


def test_a_hidden_file_left_behind_is_seen(tmp_path: Path) -> None:
    (tmp_path / "kept.csv").write_text("a\n")
    before = snapshot(tmp_path)
    (tmp_path / ".out.parquet.5f3c.tmp").write_bytes(b"half")
    (tmp_path / "kept.csv").write_text("b\n")
    assert differences(before, snapshot(tmp_path)) == [
        "added .out.parquet.5f3c.tmp",
        "changed kept.csv",
    ]
