"""Odd but right inputs work: exit code 0, nothing on stderr, the output written."""

import pytest

from embedforge.bad_inputs.accepted_cases import ACCEPTED
from embedforge.bad_inputs.case import Accepted, Place
from embedforge.bad_inputs.probe import accepted_problems, meet_by_call, meet_by_command

IDS = [accepted.name for accepted in ACCEPTED]


@pytest.mark.parametrize("accepted", ACCEPTED, ids=IDS)
def test_the_command_line_works(accepted: Accepted, at: Place) -> None:
    outcome = meet_by_command(accepted, at)
    assert accepted_problems(accepted, at, outcome) == [], outcome.stderr


@pytest.mark.parametrize("accepted", ACCEPTED, ids=IDS)
def test_python_works(accepted: Accepted, at: Place) -> None:
    assert meet_by_call(accepted, at).error is None
