"""May a single output file be written here? Checked before any work, for every command that
writes one file (``embed --out``, ``search --out``, ``export --out``).

An existing file is replaced only when asked (``--overwrite``), a folder is never taken for a
file, and the extension must name a format the command writes, so a mistyped ``--out`` is one
error before minutes of embedding or exporting instead of after.
"""

from pathlib import Path

from embedforge.errors import UserError


def check_output_file(path: str | Path, *, suffixes: tuple[str, ...], overwrite: bool) -> Path:
    """``path`` as a Path, if its extension is one of ``suffixes`` and it may be written.

    >>> check_output_file("out.onnx", suffixes=(".onnx",), overwrite=False).name
    'out.onnx'
    >>> check_output_file("out.txt", suffixes=(".onnx",), overwrite=False)
    Traceback (most recent call last):
    ...
    embedforge.errors.UserError: out.txt: unknown output extension '.txt'; expected one of .onnx
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UserError(
            f"{path}: unknown output extension {path.suffix!r}; expected one of "
            f"{', '.join(suffixes)}"
        )
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected a file name")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: exists; pass --overwrite to replace it")
    return path
