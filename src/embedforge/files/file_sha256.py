"""The sha256 of a file, read in 1 MiB blocks so that a large file never sits whole in memory.

Used wherever a file we wrote is checked before it is trusted again: a run's data files
(:mod:`embedforge.files.data_pin`) and an index folder's files
(:mod:`embedforge.index.embedding_index`), whose FAISS file must match before FAISS's
C++ parser is handed it.
"""

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_bytes(b"abc")
    >>> file_sha256(path)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
