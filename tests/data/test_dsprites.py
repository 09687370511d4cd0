"""The procedural dSprites: factors on the real grids, and the real images' measured geometry."""

import math

import pytest
import torch

from embedforge.data.dsprites import (
    NUM_COMBINATIONS,
    DSpritesLatents,
    dsprites,
    render_dsprites,
)
from embedforge.errors import UserError


@pytest.fixture(scope="module")
def data():
    return dsprites(3000, seed=0)


def render(
    shape: int, scale: float, orientation: float, pos_x: float, pos_y: float
) -> torch.Tensor:
    latents = DSpritesLatents(
        torch.tensor([shape]),
        torch.tensor([scale]),
        torch.tensor([orientation]),
        torch.tensor([pos_x]),
        torch.tensor([pos_y]),
    )
    return render_dsprites(latents)[0, 0]  # (64, 64)


def bbox(image: torch.Tensor) -> tuple[int, int, int, int]:
    """(first row, last row, first col, last col) of the white pixels."""
    rows = image.any(dim=1).nonzero().squeeze(1)
    cols = image.any(dim=0).nonzero().squeeze(1)
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    """(x, y) of the white pixels."""
    ys, xs = image.nonzero().double().T
    return float(xs.mean()), float(ys.mean())


def test_shapes_dtypes_and_values(data):
    assert data.images.shape == (3000, 1, 64, 64)
    assert data.images.dtype == torch.float32
    assert set(data.images.unique().tolist()) == {0.0, 1.0}
    assert data.labels is data.latents.shape
    assert data.labels.dtype == torch.int64
    for name in ("scale", "orientation", "pos_x", "pos_y"):
        values = getattr(data.latents, name)
        assert values.shape == (3000,) and values.dtype == torch.float32
    assert (data.images.sum(dim=(1, 2, 3)) > 0).all()  # every image shows its shape


def test_latents_on_the_dsprites_grids(data):
    latents = data.latents
    assert set(latents.shape.unique().tolist()) == {0, 1, 2}
    grids = {
        "scale": torch.linspace(0.5, 1, 6),
        "orientation": torch.linspace(0, 2 * math.pi, 40),
        "pos_x": torch.linspace(0, 1, 32),
        "pos_y": torch.linspace(0, 1, 32),
    }
    for name, grid in grids.items():
        values = getattr(latents, name)
        assert torch.isin(values, grid).all(), name
        assert len(values.unique()) == len(grid), name  # 3,000 draws hit every value


def test_shapes_roughly_balanced(data):
    counts = torch.bincount(data.labels, minlength=3).float()
    assert (counts / counts.sum() - 1 / 3).abs().max() < 0.05


def test_no_repeated_combination(data):
    latents = data.latents
    keys = torch.stack(
        [latents.shape.double(), latents.scale, latents.orientation, latents.pos_x, latents.pos_y],
        dim=1,
    )
    assert len(keys.unique(dim=0)) == 3000


def test_seeded_reproducible():
    a, b, c = dsprites(50, seed=3), dsprites(50, seed=3), dsprites(50, seed=4)
    assert a.images.equal(b.images) and a.latents.orientation.equal(b.latents.orientation)
    assert not a.images.equal(c.images)


@pytest.mark.parametrize("n", [0, -1, NUM_COMBINATIONS + 1, 2.5])
def test_bad_n(n):
    with pytest.raises(UserError, match="n must be"):
        dsprites(n, seed=0)


@pytest.mark.parametrize("scale", [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
def test_square_side_is_20_scale(scale):
    top, bottom, left, right = bbox(render(0, scale, 0.0, 0.5, 0.5))
    assert bottom - top + 1 == pytest.approx(20 * scale, abs=1)
    assert right - left + 1 == pytest.approx(20 * scale, abs=1)


def test_ellipse_25_by_15_horizontal():
    top, bottom, left, right = bbox(render(1, 1.0, 0.0, 0.5, 0.5))
    assert right - left + 1 == pytest.approx(25, abs=1.5)
    assert bottom - top + 1 == pytest.approx(15, abs=1.5)


def test_ellipse_turned_quarter_is_vertical():
    top, bottom, left, right = bbox(render(1, 1.0, math.pi / 2, 0.5, 0.5))
    assert bottom - top + 1 == pytest.approx(25, abs=1.5)
    assert right - left + 1 == pytest.approx(15, abs=1.5)


def test_heart_19_by_18_point_down():
    image = render(2, 1.0, 0.0, 0.5, 0.5)
    top, bottom, left, right = bbox(image)
    assert right - left + 1 == pytest.approx(19, abs=1.5)
    assert bottom - top + 1 == pytest.approx(18, abs=1.5)
    # The point: the bottom row is narrow, the top rows (two lobes) wide.
    assert image[bottom].sum() <= 4 < image[top + 2].sum()
    assert (image[top] == 1).nonzero().numel() >= 2  # the lobes
    assert image.flip(-1).equal(image)  # symmetric left-right


def test_heart_turns_counter_clockwise():
    """Point down, turned a quarter counter-clockwise on screen, points right."""
    image = render(2, 1.0, math.pi / 2, 0.5, 0.5)
    _, _, left, right = bbox(image)
    assert image[:, right].sum() <= 4 < image[:, left + 2].sum()


@pytest.mark.parametrize("shape", [0, 1, 2])
@pytest.mark.parametrize("pos", [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.3, 0.7)])
def test_centre_and_margins(shape, pos):
    image = render(shape, 1.0, 0.0, *pos)
    x, y = centre_of_mass(image)
    assert x == pytest.approx(15.5 + 32 * pos[0], abs=0.6)
    assert y == pytest.approx(15.5 + 32 * pos[1], abs=0.6)  # pos_y = 0 is the top
    top, bottom, left, right = bbox(image)
    assert min(top, left) >= 2 and max(bottom, right) <= 59


def test_rotation_keeps_area():
    areas = [render(2, 1.0, angle, 0.5, 0.5).sum() for angle in (0.0, 1.0, 2.5)]
    assert max(areas) / min(areas) < 1.05
