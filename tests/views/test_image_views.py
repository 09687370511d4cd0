"""Batched image views: identity cases, the rotation convention, seeds, per-image draws."""

import pytest
import torch

from embedforge.views.batch_rows import BatchRows
from embedforge.views.image_pipeline import ImageViews
from embedforge.views.image_views import (
    colour_jitter,
    gaussian_blur,
    random_affine,
    random_flip,
    random_grayscale,
    random_resized_crop,
    random_solarize,
)
from embedforge.views.presets import BYOLViews, SimCLRViews

VIEWS = {
    "affine": lambda x, g, rows=None: random_affine(
        x, g, degrees=90, translate=0.2, scale=(0.8, 1.2), rows=rows
    ),
    "crop": lambda x, g, rows=None: random_resized_crop(x, g, scale=(0.2, 1.0), rows=rows),
    "flip": lambda x, g, rows=None: random_flip(x, g, horizontal=0.5, vertical=0.5, rows=rows),
    "jitter": lambda x, g, rows=None: colour_jitter(
        x, g, brightness=0.4, contrast=0.4, saturation=0.4, rows=rows
    ),
    "jitter_sometimes": lambda x, g, rows=None: colour_jitter(
        x, g, brightness=0.4, saturation=0.4, probability=0.5, rows=rows
    ),
    "blur": lambda x, g, rows=None: gaussian_blur(x, g, sigma=(0.5, 2.0), rows=rows),
    "grayscale": lambda x, g, rows=None: random_grayscale(x, g, probability=0.5, rows=rows),
    "solarize": lambda x, g, rows=None: random_solarize(x, g, probability=0.5, rows=rows),
    "pipeline": ImageViews(hflip=0.5, crop_scale=(0.5, 1.0), brightness=0.3, blur_sigma=(0.1, 1)),
    "simclr": SimCLRViews(),
    "byol_second": BYOLViews().second_view(),
}


def images(batch: int = 8, channels: int = 3, height: int = 12, width: int = 12, **kwargs):
    return torch.rand(
        batch, channels, height, width, generator=torch.Generator().manual_seed(1), **kwargs
    )


def seeded(device: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_reproducible(name, dtype, device):
    x = images(dtype=dtype).to(device)
    view = VIEWS[name]
    a, b = view(x, seeded(device)), view(x, seeded(device))
    assert a.shape == x.shape and a.dtype == dtype and a.device == x.device
    assert a.equal(b)
    assert torch.isfinite(a).all()
    assert not view(x, seeded(device, 1)).equal(a)


@pytest.mark.parametrize("name", ["affine", "crop", "jitter", "blur"])
def test_parameters_differ_across_the_batch(name, device):
    """The same image repeated comes out differently: each image draws its own parameters."""
    x = images(batch=1).expand(6, -1, -1, -1).contiguous().to(device)
    out = VIEWS[name](x, seeded(device))
    assert len({tuple(o.flatten().tolist()) for o in out.cpu()}) == 6


def test_flip_draws_per_image():
    x = images(batch=64)
    out = random_flip(x, torch.Generator().manual_seed(0), horizontal=0.5)
    flipped = torch.tensor([o.equal(i.flip(-1)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([o.equal(i) for o, i in zip(out, x, strict=True)])
    assert (flipped ^ kept).all() and 10 < flipped.sum() < 54


def test_flips_exact():
    x = images()
    generator = torch.Generator()
    assert random_flip(x, generator, horizontal=1.0).equal(x.flip(-1))
    assert random_flip(x, generator, horizontal=0.0, vertical=1.0).equal(x.flip(-2))
    assert random_flip(x, generator, horizontal=0.0).equal(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(12, 12), (10, 16)])
def test_identity_parameters_give_input_back(dtype, shape):
    x = images(height=shape[0], width=shape[1], dtype=dtype)
    generator = torch.Generator().manual_seed(0)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(random_affine(x, generator), x, atol=tolerance, rtol=0)
    crop = random_resized_crop(x, generator, scale=(1.0, 1.0), ratio=(shape[1] / shape[0],) * 2)
    torch.testing.assert_close(crop, x, atol=tolerance, rtol=0)
    assert colour_jitter(x, generator).equal(x)
    blurred = gaussian_blur(x, generator, sigma=(1.0, 2.0), probability=0.0)
    torch.testing.assert_close(blurred, x, atol=tolerance, rtol=0)
    views = ImageViews(degrees=0, translate=0, scale=(1.0, 1.0))
    assert views(x, generator).equal(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("turns", [1, -1, 2])
def test_quarter_turns_counter_clockwise_like_rot90(dtype, turns):
    """+90° turns the image counter-clockwise as displayed, as ``torch.rot90(x, 1, (-2, -1))``."""
    x = images(dtype=dtype)
    angle = 90.0 * turns
    out = random_affine(x, torch.Generator(), degrees=(angle, angle))
    expected = torch.rot90(x, turns, dims=(-2, -1))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_turn_of_a_known_image():
    """A dot right of the centre goes above it under +90° (rows grow downwards)."""
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 4] = 1.0  # right of the centre
    out = random_affine(x, torch.Generator(), degrees=(90.0, 90.0))
    assert out[0, 0, 0, 2] == pytest.approx(1.0, abs=1e-5)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_translate_is_a_fraction_of_the_size():
    """translate=t shifts by at most t·W and t·H; the largest shifts come close to it."""
    x = torch.zeros(200, 1, 20, 40)
    x[:, :, 10, 20] = 1.0  # one dot at the centre pixel (row 10, column 20)
    out = random_affine(x, torch.Generator().manual_seed(0), translate=0.25)
    mass = out.sum(dim=(1, 2, 3))
    inside = mass > 0.99  # dots not pushed off the border
    ys = (out[inside, 0].sum(dim=2) * torch.arange(20)).sum(dim=1) / mass[inside]
    xs = (out[inside, 0].sum(dim=1) * torch.arange(40)).sum(dim=1) / mass[inside]
    assert (xs - 20).abs().max() <= 10 + 1e-4 and (xs - 20).abs().max() > 8
    assert (ys - 10).abs().max() <= 5 + 1e-4 and (ys - 10).abs().max() > 4


def test_scale_above_one_enlarges():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 5:16, 5:16] = 1.0  # an 11 px square
    out = random_affine(x, torch.Generator(), scale=(1.5, 1.5))
    assert float(out.sum()) == pytest.approx(float(x.sum()) * 1.5**2, rel=0.1)


def test_crop_takes_a_part_and_stretches_it():
    """A crop of half the area of a left/right split image: mostly one side, shape kept."""
    x = torch.zeros(32, 1, 16, 16)
    x[..., 8:] = 1.0
    out = random_resized_crop(x, torch.Generator().manual_seed(0), scale=(0.25, 0.25), ratio=(1, 1))
    means = out.mean(dim=(1, 2, 3))
    assert means.min() < 0.3 and means.max() > 0.7  # some crops left, some right


def test_blur_keeps_constant_images_and_mass():
    x = torch.full((3, 3, 9, 9), 0.4)
    out = gaussian_blur(x, torch.Generator().manual_seed(0), sigma=(0.5, 3.0))
    torch.testing.assert_close(out, x)


def test_jitter_stays_in_unit_range():
    out = colour_jitter(
        images(), torch.Generator().manual_seed(0), brightness=0.9, contrast=0.9, saturation=0.9
    )
    assert out.min() >= 0 and out.max() <= 1


def test_jitter_saturation_skips_grey_images():
    x = images(channels=1)
    assert colour_jitter(x, torch.Generator(), saturation=0.5).equal(x)


@pytest.mark.parametrize("crop", [None, (0.5, 1.0)])
def test_nearest_interpolation_keeps_binary_images_binary(crop):
    """Binary shapes (dSprites) stay binary under nearest resampling, as in torchvision;
    bilinear resampling greys their edges (what the probe's clean images never show)."""
    x = (images(batch=16, channels=1, height=32, width=32) > 0.7).float()
    affine = {"degrees": 90.0, "translate": 0.2, "scale": (0.8, 1.2)}  # the tutorial's
    nearest = ImageViews(crop_scale=crop, interpolation="nearest", **affine)
    bilinear = ImageViews(crop_scale=crop, **affine)
    out = nearest(x, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    grey = bilinear(x, torch.Generator().manual_seed(0))
    assert ((grey > 0) & (grey < 1)).any()


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("ranks", [2, 3])
def test_rows_of_a_global_batch_get_the_views_of_the_whole_batch(name, ranks, device):
    """Each rank's slice, viewed with its rows and the shared seed, is that slice of the views
    of the whole batch (rank 1 does not repeat rank 0's draws), and every rank's generator ends
    where the whole batch's does."""
    x = images(batch=12).to(device)
    atol = 0.0 if device.type == "cpu" else 1e-6  # a GPU may pick kernels by batch size
    whole_generator = seeded(device)
    whole = VIEWS[name](x, whole_generator)
    after = torch.rand(4, generator=whole_generator, device=device)
    for start, part in zip(range(0, 12, 12 // ranks), x.split(12 // ranks), strict=True):
        generator = seeded(device)
        rows = BatchRows(start, start + len(part), total=12)
        view = VIEWS[name](part, generator, rows)
        torch.testing.assert_close(view, whole[start : start + len(part)], rtol=0, atol=atol)
        assert torch.equal(torch.rand(4, generator=generator, device=device), after)


def test_rows_must_match_the_images():
    with pytest.raises(ValueError, match=r"rows 0:3 of the global batch are 3 images, got 4"):
        random_flip(images(batch=4), torch.Generator(), rows=BatchRows(0, 3, total=6))
