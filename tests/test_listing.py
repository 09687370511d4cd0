"""``embedforge list``: every registered component appears with its summary and its keys."""

import pytest

from embedforge.cli import main
from embedforge.listing import STAGES


def test_every_entry_of_every_stage_is_listed_with_its_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for sections in STAGES.values():
        for _, registry in sections:
            for entry in registry.entries():
                assert f"  {entry.name}  " in out or f"  {entry.name} " in out
                assert entry.summary in out
                for key, kind, default in entry.options():
                    assert f"{key}: {kind} = {default}" in out


def test_one_stage_is_listed_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "losses"]) == 0
    out = capsys.readouterr().out
    assert "multi_similarity" in out and "set encoder" not in out


def test_an_unknown_stage_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "lossez"]) == 2
    assert (
        "unknown stage 'lossez'; expected one of losses, methods, encoders"
        in capsys.readouterr().err
    )
