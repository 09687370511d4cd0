"""lightly 1.6's loss files as test oracles, loaded without lightly's package ``__init__``.

``import lightly`` (and ``lightly.loss``) reaches torchvision, which cannot sit beside the CPU
torch wheel; the loss files themselves import only torch and a few plain-torch lightly
modules. So the packages are registered as bare modules pointing at the installed folders,
and only the files asked for are executed. lightly is installed without its dependencies
(``scripts/setup-venv``), as a test-only dependency like pytorch-metric-learning.
"""

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

PACKAGES = ("lightly", "lightly.loss", "lightly.models", "lightly.models.modules", "lightly.utils")


def lightly_class(module: str, name: str) -> Any:
    """``lightly.<module>.<name>``, e.g. ``lightly_class("loss.vicreg_loss", "VICRegLoss")``;
    the test is skipped when lightly is not installed."""
    if not getattr(sys.modules.get("lightly"), "_bare", False):
        spec = importlib.util.find_spec("lightly")
        if spec is None or spec.origin is None:
            pytest.skip("lightly is not installed (scripts/setup-venv dev installs it)")
        root = Path(spec.origin).parent
        for package in PACKAGES:
            bare = types.ModuleType(package)
            bare.__path__ = [str(root.joinpath(*package.split(".")[1:]))]
            bare._bare = True
            sys.modules[package] = bare
    return getattr(importlib.import_module(f"lightly.{module}"), name)
