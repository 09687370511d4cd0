"""Palettes as a data source: a user's table, or the bundled synthetic palettes.

The keyword arguments of :func:`embedforge.data.palettes.read_palettes`, plus where the table
comes from and how many objects are held out for the validation metric. The synthetic
palettes' hidden hue family is known (regenerated from the seed) and labels their objects; a
user's table has no labels.
"""

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import Tensor

from embedforge.data.palettes import Palettes, PaletteSpec, load_table
from embedforge.data.source import SetDataConfig, SetSource
from embedforge.data.synthetic_palettes import HUE_FAMILIES, synthetic_palettes
from embedforge.registry import DATA_SOURCES


class PalettesConfig(SetDataConfig):
    """Colour palettes (sets of weighted rows): a CSV/Parquet table, or synthetic ones."""

    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    file_keys: ClassVar[tuple[str, ...]] = ("path",)
    source: Literal["palettes"] = "palettes"
    path: str | None = Field(None, description="CSV/Parquet file; None: synthetic palettes")
    size: int = Field(24_000, gt=0, description="number of synthetic objects (path is None)")
    colour_space: Literal["rgb", "lab"] = "rgb"
    id_column: str | None = None
    weight_column: str | None = None
    feature_columns: list[str] | None = None
    max_rows: int = Field(64, gt=0, description="a larger set keeps its heaviest rows")
    validation_objects: int = Field(
        1000, ge=2, description="held out for the metric; at most a fifth of the objects"
    )
    seed: int = Field(0, description="synthetic data and the held-out subset")


def read(config: PalettesConfig, table: "str | pd.DataFrame | None" = None) -> Palettes:
    """The palettes ``table`` (data to embed) when given, else the config's own table, else
    ``size`` synthetic objects, read with the config's settings."""
    if table is None:
        table = config.path
    if table is None:
        table = synthetic_palettes(config.size, config.seed).rows
    spec = palette_spec(config)
    return spec.read(load_table(table, spec.text_id_column), sort_ids=True)


def palette_spec(config: PalettesConfig) -> PaletteSpec:
    """How the config says a table is read: what a stream of it needs too."""
    return PaletteSpec(
        id_column=config.id_column,
        weight_column=config.weight_column,
        feature_columns=config.feature_columns,
        colour_space=config.colour_space,
        max_rows=config.max_rows,
    )


def hue_families(config: PalettesConfig, ids: np.ndarray) -> Tensor | None:
    """The synthetic palettes' hue family of objects ``ids``; None for a user's table."""
    if config.path is not None:
        return None
    latents = synthetic_palettes(config.size, config.seed).latents.loc[ids]
    return torch.tensor(latents["hue_family"].to_numpy(), dtype=torch.int64)


DATA_SOURCES.register(PalettesConfig)(
    SetSource(read, hue_families, label_name="hue family", label_names=HUE_FAMILIES)
)
