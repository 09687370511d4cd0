"""Random views of images, batched on tensors, for self-supervised and metric learning.

Two views of one image should be "the same thing seen differently": turned, shifted, zoomed,
cropped, flipped, recoloured, blurred (SimCLR, Chen et al. 2020, arXiv:2002.05709). Each
function takes ``images (B, C, H, W)`` (any float dtype, values in [0, 1]) and a
``torch.Generator`` and draws its own parameters for every image of the batch at once, on the
generator's device, so a seeded run makes the same views and nothing leaves the GPU. Geometric
steps resample with ``F.grid_sample`` (bilinear by default, or nearest, which keeps binary
images binary as torchvision's ``RandomAffine`` does; zeros outside); shapes and dtypes are kept.

Every function also takes ``rows``: which rows of a global batch the images are
(:class:`~embedforge.views.batch_rows.BatchRows`; by default all of them). The parameters are
then drawn for the whole global batch and these rows kept, so that under torchrun each rank's
slice gets the views one process would give it (the trainer passes the rank's rows). The
parameters depend on the generator and the global batch size only, never on the pixels.

Parameters mean what torchvision's transforms of the same name mean (``RandomAffine``,
``RandomResizedCrop``, ``ColorJitter``, ``GaussianBlur``); the differences are noted where they
are. Angles are in degrees, positive = counter-clockwise as displayed (``torch.rot90(x, 1,
(-2, -1))`` is a turn of +90°).
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from embedforge.views.batch_rows import BatchRows


def _rows(images: Tensor, rows: BatchRows | None) -> BatchRows:
    """The rows of the global batch ``images`` are (all of them by default), checked."""
    if rows is None:
        return BatchRows.whole(images.shape[0])
    if rows.count != images.shape[0]:
        raise ValueError(
            f"rows {rows.start}:{rows.stop} of the global batch are {rows.count} images, "
            f"got {images.shape[0]}"
        )
    return rows


def _uniform(
    generator: torch.Generator, rows: BatchRows, low: float, high: float, like: Tensor
) -> Tensor:
    """``(rows.count,)`` uniform draws in [low, high) on the generator's device, as ``like``."""
    u = rows.rand(generator)
    return low + (high - low) * u.to(device=like.device, dtype=like.dtype)


def _coin(generator: torch.Generator, rows: BatchRows, probability: float, like: Tensor) -> Tensor:
    """``(rows.count,)`` bool, each True with ``probability``."""
    return (rows.rand(generator) < probability).to(like.device)


Interpolation = Literal["bilinear", "nearest"]


def _resample(images: Tensor, theta: Tensor, mode: Interpolation) -> Tensor:
    """Sample ``images`` at ``theta (B, 2, 3)``: output position (normalised) -> input position."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def random_affine(
    images: Tensor,
    generator: torch.Generator,
    *,
    degrees: float | tuple[float, float] = 0.0,
    translate: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    interpolation: Interpolation = "bilinear",
    rows: BatchRows | None = None,
) -> Tensor:
    """Turn, shift and zoom each image about its centre by its own random amounts.

    ``degrees``: angle uniform in [-degrees, degrees], or in [low, high] for a pair
    (counter-clockwise positive);
    ``translate``: shift uniform in ±translate·W horizontally and ±translate·H vertically
    (torchvision rounds it to whole pixels, here it is not); ``scale``: zoom factor uniform in
    the range (> 1 enlarges); ``interpolation``: how output pixels are read from the input
    (torchvision's default is nearest). Uncovered pixels are 0. ``(B, C, H, W)`` -> same.

    >>> x = torch.rand(2, 1, 8, 8)
    >>> torch.allclose(random_affine(x, torch.Generator()), x, atol=1e-6)
    True
    """
    _, _, height, width = images.shape
    rows = _rows(images, rows)
    low, high = (-degrees, degrees) if isinstance(degrees, int | float) else degrees
    angle = _uniform(generator, rows, low, high, images) * (math.pi / 180)
    zoom = _uniform(generator, rows, scale[0], scale[1], images)
    shift_x = _uniform(generator, rows, -translate, translate, images) * 2  # normalised units
    shift_y = _uniform(generator, rows, -translate, translate, images) * 2
    # Pixel p of the output shows input pixel R(-angle)(p - shift) / zoom (offsets from the
    # centre, rows downwards, so a counter-clockwise turn on screen is [[c, s], [-s, c]]).
    # In normalised coordinates x is divided by W/2 and y by H/2, hence the aspect factors.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # (B,)
    aspect = height / width
    theta = torch.stack(
        [
            torch.stack([cos, -sin * aspect, -(cos * shift_x - sin * aspect * shift_y)], dim=1),
            torch.stack([sin / aspect, cos, -(sin / aspect * shift_x + cos * shift_y)], dim=1),
        ],
        dim=1,
    )  # (B, 2, 3)
    return _resample(images, theta, interpolation)


def random_resized_crop(
    images: Tensor,
    generator: torch.Generator,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    interpolation: Interpolation = "bilinear",
    rows: BatchRows | None = None,
) -> Tensor:
    """Crop a random box from each image and stretch it back to the full ``H × W``.

    ``scale``: the box's area as a fraction of the image's, uniform in the range; ``ratio``:
    its width / height, log-uniform in the range. Where the box would not fit, its sides are
    cut to the image's (torchvision redraws up to 10 times, then takes a centre crop).
    Resizing is ``interpolation`` without antialiasing. ``(B, C, H, W)`` -> same.

    >>> x = torch.rand(2, 3, 8, 8)
    >>> random_resized_crop(x, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 8, 8])
    """
    _, _, height, width = images.shape
    rows = _rows(images, rows)
    area = _uniform(generator, rows, scale[0], scale[1], images)
    log_ratio = _uniform(generator, rows, math.log(ratio[0]), math.log(ratio[1]), images)
    aspect = torch.exp(log_ratio) * (height / width)  # box (w / W) / (h / H)
    box_w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of W and H
    box_h = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = _uniform(generator, rows, -1.0, 1.0, images) * (1 - box_w)  # normalised
    centre_y = _uniform(generator, rows, -1.0, 1.0, images) * (1 - box_h)
    zero = torch.zeros_like(box_w)
    theta = torch.stack(
        [torch.stack([box_w, zero, centre_x], dim=1), torch.stack([zero, box_h, centre_y], dim=1)],
        dim=1,
    )  # (B, 2, 3)
    return _resample(images, theta, interpolation)


def random_flip(
    images: Tensor,
    generator: torch.Generator,
    *,
    horizontal: float = 0.5,
    vertical: float = 0.0,
    rows: BatchRows | None = None,
) -> Tensor:
    """Mirror each image left-right with probability ``horizontal``, top-bottom with ``vertical``.

    Exact (no resampling). ``(B, C, H, W)`` -> same.

    >>> x = torch.arange(4.0).reshape(1, 1, 1, 4)
    >>> random_flip(x, torch.Generator(), horizontal=1.0).flatten().tolist()
    [3.0, 2.0, 1.0, 0.0]
    """
    rows = _rows(images, rows)
    flip_x = _coin(generator, rows, horizontal, images)[:, None, None, None]  # (B, 1, 1, 1)
    flip_y = _coin(generator, rows, vertical, images)[:, None, None, None]
    if horizontal > 0:
        images = torch.where(flip_x, images.flip(-1), images)
    if vertical > 0:
        images = torch.where(flip_y, images.flip(-2), images)
    return images


def _grey(images: Tensor) -> Tensor:
    """``(B, 1, H, W)`` luma (ITU-R 601, as torchvision) of RGB images; 1 channel is kept."""
    if images.shape[1] != 3:
        return images.mean(dim=1, keepdim=True)
    weights = images.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]
    return (images * weights).sum(dim=1, keepdim=True)


def colour_jitter(
    images: Tensor,
    generator: torch.Generator,
    *,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    probability: float = 1.0,
    rows: BatchRows | None = None,
) -> Tensor:
    """Scale brightness, contrast and saturation of each image by its own random factors.

    With ``probability`` < 1 each image is jittered or left as it is (SimCLR jitters 80%).

    Each strength ``s`` draws a factor uniform in [max(0, 1 - s), 1 + s]: brightness multiplies
    the pixels, contrast blends with the image's mean grey level, saturation with its grey
    version (3-channel images only; skipped for 1 channel). Applied in that fixed order
    (torchvision shuffles it), results clamped to [0, 1]; hue is not jittered.
    ``(B, C, H, W)`` -> same.

    >>> x = torch.full((1, 3, 2, 2), 0.5)
    >>> colour_jitter(x, torch.Generator(), brightness=0.0).equal(x)
    True
    """
    rows = _rows(images, rows)
    original = images
    apply = _coin(generator, rows, probability, images) if probability < 1 else None

    def factor(strength: float) -> Tensor:
        low = max(0.0, 1.0 - strength)
        return _uniform(generator, rows, low, 1.0 + strength, images)[:, None, None, None]

    if brightness > 0:
        images = (images * factor(brightness)).clamp(0, 1)
    if contrast > 0:
        mean = _grey(images).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        images = (mean + factor(contrast) * (images - mean)).clamp(0, 1)
    if saturation > 0 and images.shape[1] == 3:
        grey = _grey(images)  # (B, 1, H, W)
        images = (grey + factor(saturation) * (images - grey)).clamp(0, 1)
    return images if apply is None else torch.where(apply[:, None, None, None], images, original)


def random_grayscale(
    images: Tensor,
    generator: torch.Generator,
    *,
    probability: float = 0.2,
    rows: BatchRows | None = None,
) -> Tensor:
    """Turn each 3-channel image grey (kept as 3 equal channels) with ``probability``, as
    torchvision's ``RandomGrayscale``; 1-channel images are returned as they are.
    ``(B, C, H, W)`` -> same.

    >>> x = torch.rand(2, 3, 4, 4)
    >>> y = random_grayscale(x, torch.Generator(), probability=1.0)
    >>> bool((y[:, 0] == y[:, 1]).all() and (y[:, 1] == y[:, 2]).all())
    True
    """
    if images.shape[1] != 3:
        return images
    apply = _coin(generator, _rows(images, rows), probability, images)[:, None, None, None]
    return torch.where(apply, _grey(images).expand_as(images), images)


def random_solarize(
    images: Tensor,
    generator: torch.Generator,
    *,
    probability: float = 0.2,
    threshold: float = 0.5,
    rows: BatchRows | None = None,
) -> Tensor:
    """Invert the pixels at or above ``threshold`` of each image with ``probability``, as
    torchvision's ``RandomSolarize`` (BYOL's second view). ``(B, C, H, W)`` -> same.

    >>> x = torch.tensor([[[[0.25, 0.75]]]])
    >>> random_solarize(x, torch.Generator(), probability=1.0).tolist()
    [[[[0.25, 0.25]]]]
    """
    apply = _coin(generator, _rows(images, rows), probability, images)[:, None, None, None]
    solarized = torch.where(images >= threshold, 1.0 - images, images)
    return torch.where(apply, solarized, images)


def gaussian_blur(
    images: Tensor,
    generator: torch.Generator,
    *,
    sigma: tuple[float, float] = (0.1, 2.0),
    probability: float = 1.0,
    kernel_size: int | None = None,
    rows: BatchRows | None = None,
) -> Tensor:
    """Blur each image, with ``probability``, by a Gaussian of its own sigma (in pixels).

    ``sigma``: uniform in the range; ``kernel_size``: odd, by default ``2·ceil(3·sigma_max) + 1``
    (cut to the image). Separable, borders reflected, as torchvision's ``GaussianBlur``.
    ``(B, C, H, W)`` -> same.

    >>> x = torch.rand(2, 3, 16, 16)
    >>> y = gaussian_blur(x, torch.Generator().manual_seed(0), sigma=(1.0, 2.0))
    >>> y.shape, bool(y.std() < x.std())
    (torch.Size([2, 3, 16, 16]), True)
    """
    batch, channels, height, width = images.shape
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3 * sigma[1]) + 1
    limit = min(height, width)  # reflect padding needs half < size
    kernel_size = max(1, min(kernel_size, limit if limit % 2 else limit - 1))
    rows = _rows(images, rows)
    sigmas = _uniform(generator, rows, sigma[0], sigma[1], images).clamp_min(1e-3)  # (B,)
    apply = _coin(generator, rows, probability, images)
    half = kernel_size // 2
    taps = torch.arange(-half, half + 1, device=images.device, dtype=images.dtype)  # (K,)
    kernel = torch.exp(-(taps[None, :] ** 2) / (2 * sigmas[:, None] ** 2))  # (B, K)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    identity = (taps == 0).to(images.dtype).expand_as(kernel)
    kernel = torch.where(apply[:, None], kernel, identity)
    kernel = kernel.repeat_interleave(channels, dim=0)  # (B·C, K): one kernel per channel
    x = images.reshape(1, batch * channels, height, width)
    x = F.pad(x, (half, half, half, half), mode="reflect")
    x = F.conv2d(x, kernel[:, None, None, :], groups=batch * channels)  # horizontal
    x = F.conv2d(x, kernel[:, None, :, None], groups=batch * channels)  # vertical
    return x.reshape(batch, channels, height, width)
