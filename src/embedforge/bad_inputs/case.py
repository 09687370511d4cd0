"""One row of the table: a malformed input, where it enters, and what the user must be told.

A case is data plus three small functions of a :class:`Place` (the case's own empty folder
and the :class:`~embedforge.bad_inputs.world.World` it may copy from): ``make`` writes the
bad input, ``argv`` is the command line that meets it, ``call`` the Python call that meets
it. Paths are made inside the folder, so a message naming one can be checked exactly and
shown shortened to the part inside the folder.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embedforge.bad_inputs.world import World, copy_into


@dataclass(frozen=True)
class Place:
    """Where a case runs: its own folder, and the world it copies good inputs from.

    >>> import tempfile
    >>> at = Place(Path(tempfile.mkdtemp()), world=None)
    >>> at.write("a.csv", "x\\n").name, at("a.csv") == str(at.folder / "a.csv")
    ('a.csv', True)
    """

    folder: Path
    world: World

    def __call__(self, name: str) -> str:
        """The path of ``name`` in the case's folder, as a command line spells it."""
        return str(self.folder / name)

    def write(self, name: str, content: str | bytes) -> Path:
        """Write a file of the case (text as UTF-8), creating its folders; its path."""
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    def copy(self, source: Path, name: str) -> Path:
        """The case's own copy of a file or folder of the world, at ``name``."""
        return copy_into(source, self.folder / name)


Make = Callable[[Place], object]
Argv = Callable[[Place], list[str]]
Call = Callable[[Place], object]


def steps(*makes: Make) -> Make:
    """One ``make`` doing each of ``makes`` in turn (a case's folder built from parts)."""

    def make(at: Place) -> None:
        for part in makes:
            part(at)

    return make


@dataclass(frozen=True)
class Entrance:
    """A command that reads one input file, and its Python twin.

    ``needs`` copies or writes what the command reads besides the input (a run, an index, a
    recipe naming the input) into the case's folder; ``argv`` and ``call`` take the input's
    path. A table of entrances lets one kind of bad file reach every command that reads it.
    """

    needs: Callable[[Place, str], object]
    argv: Callable[[Place, str], list[str]]
    call: Callable[[Place, str], object]

    def meeting(self, given: str, make: Make) -> tuple[Make, Argv, Call]:
        """A case's ``make``, ``argv`` and ``call`` for an input at ``given`` (relative to the
        case's folder): ``make`` writes it, then what the command needs besides is put there."""

        def make_all(at: Place) -> None:
            make(at)
            self.needs(at, at(given))

        return make_all, lambda at: self.argv(at, at(given)), lambda at: self.call(at, at(given))


@dataclass(frozen=True)
class Case:
    """A malformed input that must be refused with one clear message.

    Attributes:
        name: a short id (test ids, the report's rows).
        make: writes the bad input (and copies what the command needs) into the folder.
        argv: the ``embedforge`` arguments that meet it.
        call: the Python call that meets it; it must raise UserError.
        expected: the fragment of the message that says what was expected.
        path: the file the message must name, relative to the case's folder.
        key: the recipe key or option the message must name (when it is about a key).
    """

    name: str
    make: Make
    argv: Argv
    call: Call
    expected: str
    path: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.path is None and self.key is None:
            raise ValueError(f"case {self.name!r}: name the file (path) or the key it is about")

    def named(self, at: Place) -> list[str]:
        """What the message must contain besides ``expected``: the file's path, the key."""
        path = [at(self.path)] if self.path is not None else []
        return path + ([self.key] if self.key is not None else [])


@dataclass(frozen=True)
class Accepted:
    """An input that looks unusual but is right, and must work: ``writes`` is the output
    (relative to the case's folder) the command must leave."""

    name: str
    make: Make
    argv: Argv
    call: Call
    writes: str
