"""The files of an index folder, read only once their sha256 is the one its meta.json records.

An index folder is trusted input: ``faiss.read_index`` is a C++ parser that is not hardened
against a crafted file. Each file is therefore hashed (streaming) and compared with the
digest the folder's ``meta.json`` recorded when the tool wrote it, before any parser sees
it; a changed, swapped or cut file is one clear error saying what to do instead. Both index
formats (:mod:`embedforge.index.embedding_index`, :mod:`embedforge.index.ivfpq_index`) read
their files through here.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from embedforge.errors import UserError
from embedforge.files.file_sha256 import file_sha256


def read_json(path: Path) -> Any:
    """A JSON file's value; a missing or garbled file is a UserError naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error})") from None


def check_sha256(path: Path, recorded: Mapping[str, Any], hint: str) -> None:
    """Refuse ``path`` unless its sha256 (hashed streaming) is ``recorded[path.name]``.

    Called before anything parses the file, so a changed or swapped file never reaches a
    parser; ``hint`` says what to do instead.
    """
    if not path.is_file():
        raise UserError(f"{path} is missing")
    try:
        found = file_sha256(path)
    except OSError as error:
        raise UserError(f"{path} cannot be read ({error})") from None
    expected = recorded.get(path.name)
    if found == expected:
        return
    said = f"records {expected[:12]}" if isinstance(expected, str) else "records no sha256"
    raise UserError(
        f"{path}: its sha256 is {found[:12]}, but meta.json {said} for it: the folder was "
        f"changed after it was saved, or comes from elsewhere; {hint}"
    )
