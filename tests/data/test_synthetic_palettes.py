import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedforge.data.palettes import read_palettes
from embedforge.data.synthetic_palettes import HUE_FAMILIES, synthetic_palettes

LATENTS = ["hue_family", "hue", "saturation", "lightness", "contrast", "num_colours", "dominance"]


def test_seeded_output_is_identical() -> None:
    first, second = synthetic_palettes(200, seed=7), synthetic_palettes(200, seed=7)
    pd.testing.assert_frame_equal(first.rows, second.rows)
    pd.testing.assert_frame_equal(first.latents, second.latents)
    pd.testing.assert_series_equal(first.likes, second.likes)
    other = synthetic_palettes(200, seed=8)
    assert not first.rows["ratio"].equals(other.rows["ratio"])


def test_shapes_and_layout() -> None:
    data = synthetic_palettes(300, seed=0)
    assert list(data.rows.columns) == ["ratio", "color_r", "color_g", "color_b", "object_id"]
    assert list(data.latents.columns) == LATENTS
    assert len(data.latents) == len(data.likes) == 300
    assert data.latents.index.is_monotonic_increasing and data.latents.index.is_unique
    assert data.likes.index.equals(data.latents.index)
    assert data.rows["object_id"].nunique() == 300
    assert set(data.rows["object_id"]) == set(data.latents.index)
    counts = data.rows.groupby("object_id").size()
    assert counts.loc[data.latents.index].tolist() == data.latents["num_colours"].tolist()


def test_values_in_range() -> None:
    data = synthetic_palettes(500, seed=1)
    rows, latents = data.rows, data.latents
    assert rows["ratio"].between(0, 1).all() and (rows["ratio"] > 0).all()
    np.testing.assert_allclose(rows.groupby("object_id")["ratio"].sum(), 1.0, atol=1e-9)
    colours = rows[["color_r", "color_g", "color_b"]]
    assert colours.dtypes.eq(np.int64).all() and colours.ge(0).all().all()
    assert colours.le(255).all().all()
    assert latents["hue_family"].between(0, len(HUE_FAMILIES) - 1).all()
    for name in ["saturation", "lightness", "dominance"]:
        assert latents[name].between(0, 1).all()
    assert (latents["num_colours"] >= 2).all()
    assert data.likes.dtype == np.int64 and (data.likes >= 0).all()


def test_latents_vary_and_drive_likes() -> None:
    data = synthetic_palettes(2000, seed=2)
    latents = data.latents
    assert latents["hue_family"].nunique() == len(HUE_FAMILIES)
    for name in LATENTS:
        assert latents[name].std() > 0, name
    log_likes = np.log1p(data.likes)
    assert abs(np.corrcoef(latents["saturation"], log_likes)[0, 1]) > 0.1
    assert log_likes.std() > 0.3


def test_latents_visible_in_the_colours() -> None:
    data = synthetic_palettes(1000, seed=4)
    palettes = read_palettes(data.rows)
    values, mask = palettes.sets.values.numpy(), palettes.sets.mask.numpy()
    weights = values[..., 0]  # (n, m), zero on padding
    brightness = values[..., 1:].mean(-1)  # (n, m)
    mean_brightness = (weights * brightness).sum(1)
    assert np.corrcoef(mean_brightness, data.latents["lightness"])[0, 1] > 0.7
    assert (mask.sum(1) == data.latents["num_colours"].to_numpy()).all()
    assert np.corrcoef(weights.max(1), data.latents["dominance"])[0, 1] > 0.5


def test_competition_size_is_fast() -> None:
    start = time.perf_counter()
    data = synthetic_palettes(24_000, seed=0)
    elapsed = time.perf_counter() - start
    assert len(data.latents) == 24_000
    assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_write_csv_round_trips(tmp_path: Path) -> None:
    data = synthetic_palettes(30, seed=5)
    path = tmp_path / "palette.csv"
    data.write_csv(path)
    assert [p.name for p in tmp_path.iterdir()] == ["palette.csv"]  # no temp file left
    pd.testing.assert_frame_equal(pd.read_csv(path), data.rows, check_dtype=False)


def test_needs_objects() -> None:
    with pytest.raises(ValueError, match="n_objects"):
        synthetic_palettes(0, seed=0)
