"""What a registered data source is: images split into train and held-out, or sets of rows.

Each source (digits, dSprites, an image folder, palettes) registers its config — the recipe's
``data:`` section, told apart by ``source`` — next to its code, with one of these two as what
it gives (:data:`embedforge.registry.DATA_SOURCES`). The trainer, ``evaluate`` and the
report ask the entry, so a new source is its own file, and its labels' name is known when the
recipe is read rather than looked up later in a table keyed by source.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from embedforge.config import Section

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from torch import Tensor

    from embedforge.data.palettes import Palettes
    from embedforge.data.split import HeldOut, ImageSplit


class ImageDataConfig(Section):
    """An image source's section: its items are split into training and held-out images."""

    test_fraction: float = Field(0.3, gt=0, lt=1, description="held out for validation")
    seed: int = Field(0, description="the split (and generated data)")


class SetDataConfig(Section):
    """A set source's section (palettes: sets of weighted rows)."""


@dataclass(frozen=True)
class ImageSource:
    """An image source: ``split(config, held_out, allow_missing)`` gives its train/held-out
    split (``held_out``: a run's recorded split, found again by id; ``allow_missing`` drops
    recorded items the data no longer has); its labels are ``label_name`` values, named by
    ``label_names`` when there are few enough to list."""

    split: Callable[[Any, "HeldOut | None", bool], "ImageSplit"]
    label_name: str
    label_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SetSource:
    """A set source: ``read(config, table)`` gives its sets (``table``: data to read instead
    of the config's own, e.g. a table to embed); ``labels(config, ids)`` gives the known
    labels of the objects ``ids`` (None when the data has none), named by ``label_name``."""

    read: Callable[[Any, "str | pd.DataFrame | None"], "Palettes"]
    labels: Callable[[Any, "np.ndarray"], "Tensor | None"]
    label_name: str = ""
    label_names: tuple[str, ...] | None = None
