"""Optional packages: require() names the extra, and the core imports none of them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import embedforge
from embedforge.errors import UserError
from embedforge.extras import require

OPTIONAL = (
    "matplotlib", "umap", "pynndescent", "numba", "tensorboard", "faiss", "timm", "onnx",
    "onnxruntime", "onnxscript", "ot", "ray",
)  # fmt: skip
"""The packages that only extras install (and umap's own heavy dependencies)."""
CORE_MODULES = (
    "embedforge",
    "embedforge.losses",
    "embedforge.estimators",
    "embedforge.train.fit",
    "embedforge.evaluate.evaluate_run",
    "embedforge.evaluate.report",  # plots and maps import their packages when they draw
    "embedforge.quickstart",
    "embedforge.embed",  # embed --backend onnx and export import onnx(runtime) when they run
    "embedforge.export",
    "embedforge.ray_embed",  # embed --engine ray imports ray when it runs
    "embedforge.cli",
)


def test_an_installed_module_is_returned() -> None:
    assert require("json", "report", "the report writes") is __import__("json")


def test_a_missing_module_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ModuleNotFoundError
    with pytest.raises(UserError) as raised:
        require("matplotlib", "report", "the report draws its plots")
    assert str(raised.value) == (
        "the report draws its plots with matplotlib, which is not installed: "
        "pip install embedforge[report]"
    )


def test_a_module_that_fails_to_import_keeps_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, but a dependency of its own is missing: the message says which."""
    (tmp_path / "half_installed.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        UserError, match=r"^the map is computed with half_installed, which fails"
    ) as e:
        require("half_installed", "report", "the map is computed")
    assert "no_such_dependency_of_it" in str(e.value)
    assert str(e.value).endswith(": pip install embedforge[report]")


def test_the_core_imports_no_optional_package() -> None:
    """In a fresh interpreter: the losses, the estimator, fit, evaluation (and the modules that
    only import the report) load none of the extras' packages."""
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        f"optional = {OPTIONAL!r}\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in optional or m.startswith('torch.utils.tensorboard')))\n"
    )
    src = str(Path(embedforge.__file__).parents[1])
    path = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        check=True,
    )
    assert run.stdout.strip() == "[]"
