"""Reliability: every malformed input of the table, and exactly what a user is told.

Runs the table ``tests/bad_inputs`` runs (:mod:`embedforge.bad_inputs`): builds the small
trained world the cases copy from, then meets each case twice, in a fresh folder each time,
through the command line (``embedforge.cli.main`` in this process, stdout and stderr
captured) and through its Python twin, and writes benchmarks/results/reliability.md: the
command, the message, the exit code, whether every file in the case's folder kept its
sha256, and what Python raised; then the inputs that must work. Needs nothing beyond
``pip install -e .[dev]`` and no network (under a minute on a 2-core CPU).

    python benchmarks/reliability.py

Exits 1 when a case broke a promise (after writing the results, which say which).
"""

import argparse
import shlex
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from embedforge.bad_inputs.accepted_cases import ACCEPTED
from embedforge.bad_inputs.case import Accepted, Case, Place
from embedforge.bad_inputs.cases import CASES
from embedforge.bad_inputs.probe import (
    CommandOutcome,
    accepted_problems,
    call_problems,
    command_problems,
    meet_by_call,
    meet_by_command,
)
from embedforge.bad_inputs.world import World, build_world
from measure import command_line, machine_line, write_report


def shortened(text: str, at: Place) -> str:
    """``text`` with the case's folder left out of its paths (``CASE/x.csv`` -> ``x.csv``)
    and the world's folder called ``world``."""
    world = at.world.palette_csv.parent
    for folder, shown in ((at.folder, ""), (world, "world/")):
        text = text.replace(f"{folder}/", shown).replace(str(folder), shown.rstrip("/") or ".")
    return text


def code(text: str) -> str:
    """``text`` as a Markdown code span that survives a table cell."""
    text = text.replace("|", "\\|").replace("\n", " ⏎ ")
    return f"``{text}``" if "`" in text else f"`{text}`"


def command(outcome: CommandOutcome, at: Place) -> str:
    return code(shortened(shlex.join(["embedforge", *outcome.argv]), at))


def places(folder: Path, name: str, world: World) -> tuple[Place, Place]:
    """Two fresh folders for one case: one for the command line, one for Python."""
    made = Place(folder / f"{name}-command", world), Place(folder / f"{name}-python", world)
    for at in made:
        at.folder.mkdir()
    return made


def case_row(case: Case, at: Place, twin: Place) -> tuple[list[str], list[str]]:
    """The report's row for one case, and the promises it broke (none: ``[]``)."""
    outcome = meet_by_command(case, at)
    broken = command_problems(case, at, outcome)
    in_python = call_problems(case, twin, meet_by_call(case, twin))
    python = "; ".join(shortened(problem, twin) for problem in in_python)
    row = [
        case.name,
        command(outcome, at),
        code(shortened(outcome.stderr.removesuffix("\n"), at)),
        str(outcome.exit_code) if outcome.exit_code == 2 else f"**{outcome.exit_code}**",
        "yes" if not outcome.changes else "**no**: " + ", ".join(outcome.changes),
        "UserError, same fragment" if not in_python else f"**{python}**",
    ]
    return row, [f"{case.name}: {problem}" for problem in broken + in_python]


def accepted_row(accepted: Accepted, at: Place, twin: Place) -> tuple[list[str], list[str]]:
    """The report's row for an input that must work, and what went wrong (none: ``[]``)."""
    outcome = meet_by_command(accepted, at)
    broken = accepted_problems(accepted, at, outcome)
    error = meet_by_call(accepted, twin).error
    if error is not None:
        broken.append(f"Python raised {type(error).__name__}: {shortened(str(error), twin)}")
    row = [
        accepted.name,
        command(outcome, at),
        str(outcome.exit_code),
        code(shortened(outcome.stderr, at)) if outcome.stderr else "(nothing)",
        "yes" if (at.folder / accepted.writes).exists() else "**no**",
        "returned" if error is None else f"**{type(error).__name__}**",
    ]
    return row, [f"{accepted.name}: {problem}" for problem in broken]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "reliability.md"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        world = build_world(folder / "world")
        refused, accepted, broken = [], [], []
        for number, case in enumerate(CASES, start=1):
            row, problems = case_row(case, *places(folder, f"{number:02d}", world))
            refused.append(row)
            broken += problems
            print(f"{number:3d} {case.name}: {problems or 'ok'}", flush=True)
        for number, good in enumerate(ACCEPTED, start=1):
            row, problems = accepted_row(good, *places(folder, f"ok{number:02d}", world))
            accepted.append(row)
            broken += problems
    seconds = time.perf_counter() - started
    kept = sum(row[4] == "yes" for row in refused)
    failing = {problem.split(": ", 1)[0] for problem in broken}
    report = [
        "# Reliability: what a user is told about a bad input",
        "",
        f"Command: `{command_line()}` ({date.today().isoformat()}; {machine_line()}).",
        f"Wall time of the run: {seconds:.0f} s.",
        "",
        f"{len(CASES)} malformed inputs from the table in `embedforge.bad_inputs` (the one "
        "`tests/bad_inputs` runs), each met in a fresh folder through the command line and "
        "through its Python twin. The promise, for each: exit code 2; stderr exactly one line "
        "`embedforge: error: ...` naming the file (or key) and saying what was expected; no "
        "traceback; no output and no temporary file left; every file that was in the folder "
        "(the case's copy of a run included) with the same sha256 afterwards; in Python a "
        "`UserError` (a `ValueError`) with the same message.",
        "",
        f"**{len(CASES) + len(ACCEPTED) - len(failing)} of {len(CASES) + len(ACCEPTED)} "
        f"inputs kept every promise** ({len(broken)} broken); every checksum held in {kept} "
        f"of {len(CASES)} refusals.",
        "",
        "Paths are shown relative to the case's folder (the commands ran with full paths under "
        "a temporary folder); `world/` is the folder of good inputs the cases copy from. "
        "Messages are verbatim otherwise.",
        "",
        "## Refused",
        "",
        *table(
            ["case", "command", "message (stderr)", "exit", "files unchanged", "Python"], refused
        ),
        "",
        "## Accepted",
        "",
        "Inputs that look odd but are right: exit code 0, nothing on stderr, the output written.",
        "",
        *table(["input", "command", "exit", "stderr", "output written", "Python"], accepted),
        "",
    ]
    if broken:
        report += ["## Broken promises", "", *[f"- {code(problem)}" for problem in broken], ""]
    write_report(args.out, "\n".join(report))
    print(f"{len(broken)} promises broken; results in {args.out}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
