"""Meet a case through the command line or through Python, and list the promises it broke.

The command runs in this process, through :func:`embedforge.cli.main` (what the console
script calls), with stdout and stderr captured; an exception escaping it is written to the
captured stderr as the interpreter would print it, with exit code 1, and a warning as the
interpreter would show it (Python's default filters). Output written straight to file
descriptor 2 by C code would not be seen.

Before and after, every entry under the case's folder is listed with the sha256 of each
file, so "nothing was written" covers the ``--out`` path, a temporary file left beside it,
and every file the case put there (its copy of a run included).
"""

import contextlib
import hashlib
import io
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from embedforge.bad_inputs.case import Accepted, Case, Place
from embedforge.errors import UserError

PREFIX = "embedforge: error: "
_HIDDEN_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
"""Warning categories a fresh ``python`` process does not show (outside ``__main__``)."""


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too): a file's sha256, or ``"folder"``."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        )
        for path in sorted(folder.rglob("*"))
    }


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed between two snapshots, one line per entry, sorted by entry.

    >>> differences({"a": "1", "b": "2"}, {"b": "3", ".c.tmp": "4"})
    ['added .c.tmp', 'removed a', 'changed b']
    """
    added = [f"added {name}" for name in after.keys() - before.keys()]
    removed = [f"removed {name}" for name in before.keys() - after.keys()]
    kept = before.keys() & after.keys()
    changed = [f"changed {name}" for name in kept if before[name] != after[name]]
    return sorted(added + removed + changed, key=lambda line: line.split(" ", 1)[1])


@dataclass(frozen=True)
class CommandOutcome:
    """What the command line did: exit code, captured output, changes to the folder."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    changes: list[str]


@dataclass(frozen=True)
class CallOutcome:
    """What the Python call did: the exception it raised (None: none), changes to the folder."""

    error: BaseException | None
    changes: list[str]


@contextlib.contextmanager
def _shown_warnings(stderr: io.StringIO):
    """Warnings raised inside the block, written to ``stderr`` as a fresh process shows them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in _HIDDEN_BY_DEFAULT:
            warnings.simplefilter("ignore", category)
        try:
            yield
        finally:
            for warning in caught:
                stderr.write(
                    warnings.formatwarning(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )
                )


def run_command(argv: list[str], folder: Path) -> CommandOutcome:
    """Run ``embedforge ARGV`` in this process and see what it changed under ``folder``."""
    from embedforge.cli import main

    before = snapshot(folder)
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        _shown_warnings(stderr),
    ):
        try:
            exit_code = main(argv)
        except SystemExit as stop:  # argparse refusing the arguments
            exit_code = stop.code if isinstance(stop.code, int) else 1
        except Exception:  # what the interpreter prints for an uncaught exception
            stderr.write(traceback.format_exc())
            exit_code = 1
    return CommandOutcome(
        argv, exit_code, stdout.getvalue(), stderr.getvalue(), differences(before, snapshot(folder))
    )


def meet_by_command(case: Case | Accepted, at: Place) -> CommandOutcome:
    """Make the case's input in ``at`` and run its command line."""
    case.make(at)
    return run_command(case.argv(at), at.folder)


def meet_by_call(case: Case | Accepted, at: Place) -> CallOutcome:
    """Make the case's input in ``at`` and run its Python call."""
    case.make(at)
    before = snapshot(at.folder)
    error = None
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            case.call(at)
        except Exception as raised:
            error = raised
    return CallOutcome(error, differences(before, snapshot(at.folder)))


def _message_problems(case: Case, at: Place, message: str) -> list[str]:
    missing = [text for text in [*case.named(at), case.expected] if text not in message]
    return [f"the message does not contain {text!r}" for text in missing]


def command_problems(case: Case, at: Place, outcome: CommandOutcome) -> list[str]:
    """Every promise the command broke (none: ``[]``): exit code 2, stderr one line
    ``embedforge: error: ...`` naming the file or key with the expected fragment, no
    traceback, and nothing under the folder added, removed or changed."""
    problems = [] if outcome.exit_code == 2 else [f"exit code {outcome.exit_code}, not 2"]
    err = outcome.stderr
    if "Traceback" in err:
        problems.append("a traceback on stderr")
    if not err.startswith(PREFIX) or not err.endswith("\n") or err.count("\n") != 1:
        problems.append(f"stderr is not one line starting {PREFIX!r}: {err!r}")
    problems += _message_problems(case, at, err.removeprefix(PREFIX))
    return problems + outcome.changes


def call_problems(case: Case, at: Place, outcome: CallOutcome) -> list[str]:
    """Every promise the Python call broke: a UserError with the same message, nothing
    under the folder added, removed or changed."""
    error = outcome.error
    if not isinstance(error, UserError):
        raised = "nothing" if error is None else f"{type(error).__name__}: {error}"
        return [f"raised {raised}, not UserError", *outcome.changes]
    return _message_problems(case, at, str(error)) + outcome.changes


def accepted_problems(accepted: Accepted, at: Place, outcome: CommandOutcome) -> list[str]:
    """What went wrong with an input that must work: exit code 0, nothing on stderr, and the
    output written."""
    problems = [] if outcome.exit_code == 0 else [f"exit code {outcome.exit_code}, not 0"]
    if outcome.stderr:
        problems.append(f"stderr is not empty: {outcome.stderr!r}")
    if not (at.folder / accepted.writes).exists():
        problems.append(f"{accepted.writes} was not written")
    return problems
