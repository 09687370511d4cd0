"""Named image view presets: the views the papers and the tutorial use, to name and override.

Each is :class:`~embedforge.views.image_pipeline.ImageViews` with other defaults, so every
key of a preset can be changed in a recipe (``views: {preset: byol, solarize: 0}``) or in
Python (``SimCLRViews(grayscale=0)``). torchvision's hue jitter is not implemented; the
presets leave it out.
"""

from typing import Any, Literal

from pydantic import Field

from embedforge.registry import VIEWS
from embedforge.views.image_pipeline import ImageViews, Range


class TutorialAffineViews(ImageViews):
    """The dSprites tutorial's random affine (90°, shift 0.2, zoom 0.8–1.2, nearest)."""

    preset: Literal["tutorial_affine"] = "tutorial_affine"  # type: ignore[assignment]
    degrees: float | Range = 90.0
    translate: float = 0.2
    scale: Range = (0.8, 1.2)
    interpolation: Literal["bilinear", "nearest"] = "nearest"


class SimCLRViews(ImageViews):
    """SimCLR's views (arXiv:2002.05709): crop 0.08–1, flip, colour jitter 0.8, grey 0.2, blur."""

    preset: Literal["simclr"] = "simclr"  # type: ignore[assignment]
    crop_scale: Range | None = (0.08, 1.0)
    hflip: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    jitter_probability: float = 0.8
    grayscale: float = 0.2
    blur_sigma: Range | None = (0.1, 2.0)
    blur_probability: float = 0.5


class BYOLViews(ImageViews):
    """BYOL's asymmetric pair (arXiv:2006.07733): blur always in the first, rarely in the
    second, which is solarised 20% of the time."""

    preset: Literal["byol"] = "byol"  # type: ignore[assignment]
    crop_scale: Range | None = (0.08, 1.0)
    hflip: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    jitter_probability: float = 0.8
    grayscale: float = 0.2
    blur_sigma: Range | None = (0.1, 2.0)
    blur_probability: float = 1.0
    second: dict[str, Any] | None = Field(
        default_factory=lambda: {"blur_probability": 0.1, "solarize": 0.2}
    )


for preset in (TutorialAffineViews, SimCLRViews, BYOLViews):
    VIEWS.register(preset)(preset)
