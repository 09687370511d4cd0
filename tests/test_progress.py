import contextlib
import io

import pytest

from embedforge.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "show", "drawn"),
    [(Terminal, True, True), (Terminal, False, False), (io.StringIO, True, False)],
)
def test_a_bar_is_drawn_only_when_asked_for_on_a_terminal(stream, show, drawn) -> None:
    with contextlib.redirect_stderr(stream()) as stderr:
        assert list(progress_bar(range(3), show=show, desc="counting")) == [0, 1, 2]
    assert ("counting" in stderr.getvalue()) is drawn
