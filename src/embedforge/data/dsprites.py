"""Procedural dSprites: 64×64 binary images of a square, an ellipse or a heart, with their latents.

Why generate rather than download: the tool never touches the network at run time, and the
self-supervised comparison (SimCLR against supervised, random and VAE encoders) only needs images
that follow dSprites' factors and geometry. The factors are those of the real data set
(Matthey et al., 2017, https://github.com/deepmind/dsprites-dataset): shape (3), scale
``linspace(0.5, 1, 6)``, orientation ``linspace(0, 2π, 40)``, position x and y
``linspace(0, 1, 32)`` each -- 737,280 combinations. :func:`dsprites` draws ``n`` of them
without replacement, as the tutorial's random subset does.

Geometry (0-indexed pixels, pixel centres at integer coordinates, rows growing downwards):
the shape's centre is at ``15.5 + 32·pos`` for x and y (``pos_y = 0`` is the top); a square has
side ``20·scale`` px; an ellipse's axes are about 25×15 px at scale 1 (major axis horizontal at
orientation 0); a heart is about 19×18 px at scale 1, upright with its point down at orientation
0, its centre of mass at the centre. Orientation turns the shape counter-clockwise as displayed.
Unrotated shapes stay within rows/columns 2–59; a square turned near 45° at scale 1 next to the
right or bottom edge reaches column/row 61 (its half-diagonal is 14.1 px).
"""

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedforge.data.source import ImageDataConfig, ImageSource
from embedforge.data.split import HeldOut, ImageSplit, split_generated
from embedforge.errors import UserError
from embedforge.registry import DATA_SOURCES

SIZE = 64
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = torch.linspace(0.5, 1.0, 6)
ORIENTATIONS = torch.linspace(0.0, 2 * math.pi, 40)
POSITIONS = torch.linspace(0.0, 1.0, 32)
GRID = (len(SHAPE_NAMES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))
NUM_COMBINATIONS = math.prod(GRID)  # 737,280, as in the real data set

_SQUARE_HALF_SIDE = 10.0  # px at scale 1
_ELLIPSE_SEMI_AXES = (12.5, 7.5)  # px at scale 1 (x, y)
# The heart (x² + y² − 1)³ − x²y³ ≤ 0 spans x in ±1.139, y in [−1, 1.236] (point at y = −1,
# centre of mass at y = 0.2935); these scales make it 19 px wide and 18 px high at scale 1.
_HEART_PX_PER_UNIT = (19 / 2.278, 18 / 2.236)
_HEART_CENTROID_Y = 0.2935
_CHUNK = 2048  # images rendered at once: about 16 MB per float32 temporary


@dataclass(frozen=True)
class DSpritesLatents:
    """The factors behind each image, all ``(n,)``: ``shape`` int64 (0 square, 1 ellipse,
    2 heart); ``scale``, ``orientation`` (radians, counter-clockwise), ``pos_x``, ``pos_y``
    float32 in their grids."""

    shape: Tensor
    scale: Tensor
    orientation: Tensor
    pos_x: Tensor
    pos_y: Tensor


@dataclass(frozen=True)
class DSprites:
    """Images ``(n, 1, 64, 64)`` float32 in {0, 1} (white shape on black) and their latents.

    >>> data = dsprites(4, seed=0)
    >>> tuple(data.images.shape), data.labels.dtype
    ((4, 1, 64, 64), torch.int64)
    """

    images: Tensor
    latents: DSpritesLatents

    @property
    def labels(self) -> Tensor:
        """``(n,)`` int64: the shape, the class the comparison predicts."""
        return self.latents.shape


def dsprites(n: int, seed: int) -> DSprites:
    """``n`` distinct random dSprites images (a subset of all 737,280), the same for a seed.

    Shapes come out roughly balanced (each a third of the full set). 20,000 images take a
    few seconds on a CPU core.

    >>> data = dsprites(3, seed=1)
    >>> sorted(data.images.unique().tolist()), data.latents.scale.dtype
    ([0.0, 1.0], torch.float32)
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= NUM_COMBINATIONS:
        raise UserError(f"dsprites: n must be an integer in 1..{NUM_COMBINATIONS}, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    flat = torch.randperm(NUM_COMBINATIONS, generator=generator)[:n]  # (n,)
    indices = []
    for size in reversed(GRID):  # unravel: position y varies fastest, as in the real file
        indices.append(flat % size)
        flat = flat // size
    pos_y_i, pos_x_i, orientation_i, scale_i, shape = indices
    latents = DSpritesLatents(
        shape=shape,
        scale=SCALES[scale_i],
        orientation=ORIENTATIONS[orientation_i],
        pos_x=POSITIONS[pos_x_i],
        pos_y=POSITIONS[pos_y_i],
    )
    return DSprites(render_dsprites(latents), latents)


def render_dsprites(latents: DSpritesLatents) -> Tensor:
    """Draw each latent combination as a ``(n, 1, 64, 64)`` float32 binary image.

    Any values are accepted (not only the grid's), which is how tests check geometry.

    >>> one = DSpritesLatents(*(torch.tensor([v]) for v in (0, 1.0, 0.0, 0.5, 0.5)))
    >>> int(render_dsprites(one).sum())  # a 20 × 20 px square
    400
    """
    images = torch.zeros(latents.shape.shape[0], 1, SIZE, SIZE)
    for shape in range(len(SHAPE_NAMES)):
        rows = (latents.shape == shape).nonzero().squeeze(1)
        for part in rows.split(_CHUNK):
            x, y = _shape_frame(
                latents.scale[part].float(),
                latents.orientation[part].float(),
                latents.pos_x[part].float(),
                latents.pos_y[part].float(),
            )
            images[part, 0] = _INSIDE[shape](x, y).float()
    return images


def _shape_frame(
    scale: Tensor, orientation: Tensor, pos_x: Tensor, pos_y: Tensor
) -> tuple[Tensor, Tensor]:
    """Every pixel centre in each shape's own frame (x right, y up, unit = 1 px at scale 1).

    ``(k,)`` latents -> ``x, y`` each ``(k, 64, 64)``: the counter-clockwise rotation and the
    scale are undone about the shape's centre.
    """
    pixels = torch.arange(SIZE, dtype=torch.float32)
    dx = pixels[None, None, :] - (15.5 + 32 * pos_x)[:, None, None]  # (k, 1, 64)
    up = (15.5 + 32 * pos_y)[:, None, None] - pixels[None, :, None]  # (k, 64, 1)
    cos = (torch.cos(orientation) / scale)[:, None, None]  # (k, 1, 1)
    sin = (torch.sin(orientation) / scale)[:, None, None]
    return cos * dx + sin * up, cos * up - sin * dx  # (k, 64, 64) each


def _inside_square(x: Tensor, y: Tensor) -> Tensor:
    return torch.maximum(x.abs(), y.abs()) <= _SQUARE_HALF_SIDE


def _inside_ellipse(x: Tensor, y: Tensor) -> Tensor:
    a, b = _ELLIPSE_SEMI_AXES
    return (x / a).square_() + (y / b).square_() <= 1


def _inside_heart(x: Tensor, y: Tensor) -> Tensor:
    hx2 = (x / _HEART_PX_PER_UNIT[0]).square_()
    hy = y / _HEART_PX_PER_UNIT[1] + _HEART_CENTROID_Y
    return (hx2 + hy.square() - 1).pow_(3) <= hx2 * hy.pow_(3)


_INSIDE = (_inside_square, _inside_ellipse, _inside_heart)  # indexed by shape id


class DSpritesConfig(ImageDataConfig):
    """Procedural dSprites: white shapes (square, ellipse, heart) on black, split by shape."""

    source: Literal["dsprites"] = "dsprites"
    size: int = Field(20_000, gt=0, description="number of generated images")


def _split(config: DSpritesConfig, held_out: HeldOut | None, allow_missing: bool) -> ImageSplit:
    generated = dsprites(config.size, config.seed)
    return split_generated(
        generated.images,
        generated.labels,
        test_fraction=config.test_fraction,
        seed=config.seed,
        held_out=held_out,
        allow_missing=allow_missing,
        source="data.source 'dsprites'",
    )


DATA_SOURCES.register(DSpritesConfig)(
    ImageSource(_split, label_name="shape", label_names=SHAPE_NAMES)
)
