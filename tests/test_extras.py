"""Optional packages: require() names the extra, and the core imports none of them."""

import sys
from pathlib import Path

import pytest

from embedforge.errors import UserError
from embedforge.extras import require


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
