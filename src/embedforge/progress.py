"""Progress bars drawn on a terminal only, so stderr elsewhere holds nothing but errors.

A bar is for a person watching a terminal, where it redraws itself in place. Anywhere else
(a pipe, a log file, a CI job, a script reading stderr) every redraw stays as text, and a
command that fails after the bar started leaves ``embedding:   0%|...`` lines above its one
line ``embedforge: error: ...``. So a bar asked for is drawn only when stderr is a terminal
(tqdm's ``disable=None``), and never when it is not asked for.
"""

from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_bar(iterable: Iterable[T], *, show: bool, **options: Any) -> "tqdm[T]":
    """``tqdm(iterable, **options)``, drawn only when ``show`` and stderr is a terminal.

    >>> import io, contextlib
    >>> with contextlib.redirect_stderr(io.StringIO()) as stderr:  # not a terminal
    ...     total = sum(progress_bar(range(3), show=True, desc="counting"))
    >>> total, stderr.getvalue()
    (3, '')
    """
    return tqdm(iterable, disable=None if show else True, **options)
