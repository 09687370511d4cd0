"""Every malformed input of the table, through the command line and through Python.

The command must exit 2 with one line ``embedforge: error: ...`` on stderr naming the file
(or key) and saying what was expected, with no traceback, and leave the case's folder as it
was: no output, no temporary file beside it, every file there byte for byte the same. The
Python call must raise UserError with the same message, and change nothing either.
"""

import pytest

from embedforge.bad_inputs.case import Case, Place
from embedforge.bad_inputs.cases import CASES
from embedforge.bad_inputs.probe import (
    call_problems,
    command_problems,
    meet_by_call,
    meet_by_command,
)

IDS = [case.name for case in CASES]


def test_the_table_holds_forty_distinct_cases() -> None:
    assert len(CASES) >= 40
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_command_line_gives_one_clear_line_and_changes_nothing(case: Case, at: Place) -> None:
    outcome = meet_by_command(case, at)
    assert command_problems(case, at, outcome) == [], outcome.stderr


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_raises_user_error_and_changes_nothing(case: Case, at: Place) -> None:
    assert call_problems(case, at, meet_by_call(case, at)) == []
