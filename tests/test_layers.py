"""Imports point one way: each package, imported alone (every module of it), loads no
embedforge package above it, so ``train`` and ``evaluate`` never import each other and the
helpers several stages need (files, metrics, inference, build) sit below them all.
"""

import json
import subprocess
import sys

import pytest

COMMANDS = {
    "cli", "demo", "embed", "estimators", "experiments", "export", "image_run", "listing",
    "quickstart", "search",
}  # fmt: skip
ONNX = {"onnx_export", "onnx_encoder"}
ABOVE_COMPONENTS = {"recipe", "build", "files", "metrics", "inference", "run_items"} | ONNX
FORBIDDEN = {
    "data": ABOVE_COMPONENTS | {"views", "encoders", "losses", "samplers"},
    "views": ABOVE_COMPONENTS | {"encoders", "losses", "samplers"},
    "encoders": ABOVE_COMPONENTS | {"data", "views", "losses", "samplers"},
    "losses": ABOVE_COMPONENTS | {"data", "views", "samplers"},
    "samplers": ABOVE_COMPONENTS | {"data", "views", "encoders", "losses"},
    "metrics": {"recipe", "build", "files", "run_items"} | ONNX,
    "files": {"build", "metrics", "inference", "run_items"} | ONNX,
    "train": {"evaluate", "index", "run_items"},
    "evaluate": {"train", "index"},
    "index": {"train", "evaluate", "build", "recipe", "run_items", "inference"} | ONNX,
}
ALWAYS_FORBIDDEN = COMMANDS | {"train", "evaluate", "index"}

PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module("embedforge." + sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
loaded = {name.split(".")[1] for name in sys.modules if name.startswith("embedforge.")}
print(json.dumps(sorted(loaded)))
"""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_loads_nothing_above_it(package: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, package], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    forbidden = (FORBIDDEN[package] | ALWAYS_FORBIDDEN) - {package}
    assert not loaded & forbidden, f"embedforge.{package} loads {sorted(loaded & forbidden)}"
