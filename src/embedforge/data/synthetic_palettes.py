"""Synthetic palettes with known latent factors: the bundled data set and the quality yardstick.

Each object draws hidden factors -- a hue family, saturation, lightness, contrast, number of
colours and how dominant its main colour is -- and its palette is generated from them: colours
in HLS around the family's hue with the object's saturation and lightness, contrast spreading
the colours' lightness, weights from a Dirichlet whose mean share of the main colour is the
dominance. A count target ``likes`` depends nonlinearly on the factors, with noise.

The factors are visible only through colours and weights, so a good set encoder's embedding
should let a linear probe recover them, and should help a model predict ``likes``.
Rows are written in the competition's ``palette.csv`` layout, shuffled across objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HUE_FAMILIES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta")
"""Names of the ``hue_family`` codes 0..7."""
_FAMILY_HUES = np.array([0.0, 30.0, 55.0, 120.0, 180.0, 225.0, 270.0, 315.0])  # degrees
_CONCENTRATION = 12.0  # Dirichlet total concentration: how close shares stay to their means
_FLOOR = 0.02  # a share of every object spread evenly, so no colour's share is ~0


@dataclass(frozen=True)
class SyntheticPalettes:
    """A generated palette table, its hidden factors and a target.

    Attributes:
        rows: the palette.csv layout: ``ratio, color_r, color_g, color_b, object_id``.
        latents: one row per object (index ``object_id``, sorted): ``hue_family`` (int code
            into :data:`HUE_FAMILIES`), ``hue`` (degrees; circular, so probe its sin and cos),
            ``saturation``, ``lightness``, ``contrast``, ``num_colours``,
            ``dominance`` (mean share of the main colour).
        likes: ``int64`` counts, same index as ``latents``.

    >>> data = synthetic_palettes(3, seed=1)
    >>> data.likes.index.equals(data.latents.index)
    True
    >>> int(data.latents["num_colours"].sum()) == len(data.rows)
    True
    """

    rows: pd.DataFrame
    latents: pd.DataFrame
    likes: pd.Series

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write ``rows`` as a palette.csv, atomically (temp file, then rename)."""
        path = Path(path)
        temporary = path.with_name(f".{path.name}.tmp")
        self.rows.to_csv(temporary, index=False)
        os.replace(temporary, path)


def synthetic_palettes(n_objects: int, seed: int = 0) -> SyntheticPalettes:
    """Generate ``n_objects`` palettes; the same seed gives the same output.

    >>> data = synthetic_palettes(5, seed=0)
    >>> list(data.rows.columns)
    ['ratio', 'color_r', 'color_g', 'color_b', 'object_id']
    >>> len(data.latents), data.rows.groupby("object_id")["ratio"].sum().round(6).unique()
    (5, array([1.]))
    """
    if n_objects < 1:
        raise ValueError(f"n_objects must be at least 1, got {n_objects}")
    rng = np.random.default_rng(seed)
    n = n_objects

    # per-object latent factors, (n,) each
    family = rng.integers(0, len(HUE_FAMILIES), n)
    hue = (_FAMILY_HUES[family] + rng.normal(0.0, 8.0, n)) % 360.0
    saturation = rng.beta(2.0, 2.0, n) * 0.9 + 0.05
    lightness = rng.beta(2.5, 2.5, n) * 0.6 + 0.2
    contrast = rng.uniform(0.0, 0.4, n)
    num_colours = np.clip(2 + rng.poisson(6.0, n), 2, 30)
    dominance = rng.uniform(0.2, 0.8, n)
    ids = _object_ids(rng, n)

    # rows: object of each row, its rank within the object (0 = main colour)
    owner = np.repeat(np.arange(n), num_colours)  # (rows,)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(num_colours) - num_colours, num_colours)
    main = rank == 0
    k = num_colours[owner]

    # Dirichlet(c * [d, (1 - d)/(k - 1), ...]) via normalised Gamma draws
    share = np.where(main, dominance[owner], (1.0 - dominance[owner]) / (k - 1))
    gamma = rng.gamma(_CONCENTRATION * share)
    ratio = gamma / np.bincount(owner, weights=gamma)[owner]
    ratio = (1.0 - _FLOOR) * ratio + _FLOOR / k  # still sums to 1 per object

    # colours around the object's hue; contrast spreads lightness (the main colour stays put)
    row_hue = (hue[owner] + rng.normal(0.0, 12.0, len(owner))) % 360.0
    row_sat = np.clip(saturation[owner] + rng.normal(0.0, 0.06, len(owner)), 0.0, 1.0)
    spread = np.where(main, 0.0, rng.uniform(-1.0, 1.0, len(owner)))
    row_light = np.clip(lightness[owner] + contrast[owner] * spread, 0.03, 0.97)
    rgb = np.rint(_hls_to_rgb(row_hue / 360.0, row_light, row_sat) * 255.0).astype(np.int64)

    likes = _likes(rng, family, saturation, lightness, contrast, num_colours, dominance)

    shuffle = rng.permutation(len(owner))
    rows = pd.DataFrame(
        {
            "ratio": ratio[shuffle],
            "color_r": rgb[shuffle, 0],
            "color_g": rgb[shuffle, 1],
            "color_b": rgb[shuffle, 2],
            "object_id": ids[owner[shuffle]],
        }
    )
    order = np.argsort(ids)
    index = pd.Index(ids[order], name="object_id")
    latents = pd.DataFrame(
        {
            "hue_family": family,
            "hue": hue,
            "saturation": saturation,
            "lightness": lightness,
            "contrast": contrast,
            "num_colours": num_colours,
            "dominance": dominance,
        }
    ).iloc[order]
    latents.index = index
    return SyntheticPalettes(rows, latents, pd.Series(likes[order], index=index, name="likes"))


def _object_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct 16-hex-digit ids, like the competition's hashed object ids."""
    numbers = rng.choice(2**62, size=n, replace=False)
    return np.char.mod("%016x", numbers).astype(object)


def _hls_to_rgb(h: np.ndarray, lightness: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Vectorised :func:`colorsys.hls_to_rgb`: arrays in [0, 1] -> ``(n, 3)`` RGB in [0, 1]."""
    chroma = (1.0 - np.abs(2.0 * lightness - 1.0)) * s
    k = (np.array([0.0, 8.0, 4.0]) + h[:, None] * 12.0) % 12.0  # (n, 3) for R, G, B
    a = chroma[:, None] / 2.0
    return lightness[:, None] - a * np.clip(np.minimum(k - 3.0, 9.0 - k), -1.0, 1.0)


def _likes(
    rng: np.random.Generator,
    family: np.ndarray,
    saturation: np.ndarray,
    lightness: np.ndarray,
    contrast: np.ndarray,
    num_colours: np.ndarray,
    dominance: np.ndarray,
) -> np.ndarray:
    """Negative-binomial counts whose log-mean mixes the factors nonlinearly."""
    family_effect = np.array([0.4, 0.2, -0.3, 0.1, -0.2, 0.5, 0.3, -0.4])[family]
    log_mean = (
        1.5
        + family_effect
        + 1.2 * saturation
        - 6.0 * (lightness - 0.55) ** 2  # mid-light pictures do best
        + 4.0 * saturation * contrast  # vivid and contrasted together
        + 0.6 * np.log(num_colours)
        - 1.0 * (dominance - 0.5) ** 2
    )
    dispersion = 2.0
    mean = np.exp(log_mean)
    return rng.negative_binomial(dispersion, dispersion / (dispersion + mean)).astype(np.int64)
