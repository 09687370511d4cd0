from pathlib import Path

import pytest

from embedforge.errors import UserError
from embedforge.files.run_folder import HISTORY, read_history


def test_history_drops_a_last_line_cut_short_by_a_kill(tmp_path: Path) -> None:
    (tmp_path / HISTORY).write_text('{"epoch": 0, "loss": 1.5}\n{"epoch": 1, "lo')
    assert read_history(tmp_path) == [{"epoch": 0, "loss": 1.5}]


def test_history_with_a_broken_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    (tmp_path / HISTORY).write_text('{"epoch": 0, "lo\n{"epoch": 1, "loss": 1.0}\n')
    with pytest.raises(UserError, match="line 1"):
        read_history(tmp_path)


def test_no_history_is_an_empty_one(tmp_path: Path) -> None:
    assert read_history(tmp_path) == []
