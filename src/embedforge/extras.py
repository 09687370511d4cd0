"""Optional packages: import one where a feature needs it, or say which extra installs it.

``pip install embedforge`` brings what training and embedding need; plots and maps
(``[report]``), TensorBoard events (``[tensorboard]``), FAISS (``[faiss]``), timm
trunks (``[timm]``) and exact EMD between palettes (``[emd]``: POT) are extras. A
feature that needs one calls :func:`require` where it imports it, so a missing package is
one :class:`~embedforge.errors.UserError` line (the CLI's exit code 2) naming the extra,
instead of an ImportError traceback, and a plain ``import embedforge...`` never loads an
optional package.
"""

import importlib
from types import ModuleType

from embedforge.errors import UserError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """The top-level ``module``, imported; a UserError naming ``extra`` when it cannot be.

    Args:
        module: the import name (``"matplotlib"``, ``"umap"``), not a submodule: a stale
            ``matplotlib.figure`` left in ``sys.modules`` must not hide a missing package.
        extra: the embedforge extra that installs it (``"report"``).
        feature: what needs it, as the start of a sentence that goes on "with <module>"
            (``"the report draws its plots"``).

    A package that is installed but fails to import (a dependency of its own missing or of
    the wrong version) keeps the cause in the message.

    >>> require("json", "report", "the report writes its metrics").__name__
    'json'
    >>> require("no_such_package", "report", "the report draws its plots")
    Traceback (most recent call last):
    ...
    embedforge.errors.UserError: the report draws its plots with no_such_package, which is not installed: pip install embedforge[report]
    """  # noqa: E501 - a doctest's expected output is one line
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = isinstance(error, ModuleNotFoundError) and error.name == module
        state = "which is not installed" if missing else f"which fails to import ({error})"
        raise UserError(
            f"{feature} with {module}, {state}: pip install embedforge[{extra}]"
        ) from None
