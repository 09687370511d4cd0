"""The world every case copies from, built once per test session."""

from pathlib import Path

import pytest

from embedforge.bad_inputs.case import Place
from embedforge.bad_inputs.world import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def at(tmp_path: Path, world: World) -> Place:
    """The case's own empty folder."""
    folder = tmp_path / "case"
    folder.mkdir()
    return Place(folder, world)
