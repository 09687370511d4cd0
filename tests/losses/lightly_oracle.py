"""lightly 1.6's loss files as oracles, loaded without lightly's package ``__init__``.

``import lightly`` (and ``lightly.loss``) reaches torchvision, which cannot sit beside the CPU
torch wheel; the loss files themselves import only torch and a few plain-torch lightly
modules. So the packages are registered as bare modules pointing at the installed folders,
and only the files asked for are executed. One of them, the memory bank behind
``NTXentLoss`` (SimCLR's loss, MoCo's with a bank), imports ``lightly.models.utils`` — which
imports torchvision — for its multi-process gather only; that module is an empty stand-in, so
lightly code reaching into it would fail loudly (AttributeError), not run something else.
lightly is installed without its dependencies (``scripts/setup-venv``), as a test-only
dependency like pytorch-metric-learning; the tests (:func:`lightly_class`) and
``benchmarks/ssl_methods.py`` (:func:`lightly_attribute`) load it from here.
"""

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

PACKAGES = ("lightly", "lightly.loss", "lightly.models", "lightly.models.modules", "lightly.utils")
STAND_IN = "lightly.models.utils"  # empty: the memory bank's gather is all it would use


class LightlyMissing(ModuleNotFoundError):
    """lightly is not installed (only that: a file of it that fails to import raises as is)."""


def lightly_attribute(module: str, name: str) -> Any:
    """``lightly.<module>.<name>``, e.g. ``lightly_attribute("loss.vicreg_loss", "VICRegLoss")``;
    :class:`LightlyMissing` when lightly is not installed."""
    if not getattr(sys.modules.get("lightly"), "_bare", False):
        spec = importlib.util.find_spec("lightly")
        if spec is None or spec.origin is None:
            raise LightlyMissing("lightly is not installed (scripts/setup-venv dev installs it)")
        root = Path(spec.origin).parent
        for package in PACKAGES:
            bare = types.ModuleType(package)
            bare.__path__ = [str(root.joinpath(*package.split(".")[1:]))]
            bare._bare = True
            sys.modules[package] = bare
        sys.modules[STAND_IN] = types.ModuleType(STAND_IN)
    return getattr(importlib.import_module(f"lightly.{module}"), name)


def lightly_class(module: str, name: str) -> Any:
    """:func:`lightly_attribute` for a test: the test is skipped when lightly is not installed."""
    try:
        return lightly_attribute(module, name)
    except LightlyMissing as missing:
        pytest.skip(str(missing))
