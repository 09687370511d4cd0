"""The image view pipeline, as a recipe section: every option of the view functions, in one
place, with one set of defaults for recipes and Python alike.

``ImageViews()`` (the ``identity`` preset, what ``views: {}`` means in a recipe) changes
nothing; each step is on when its strength is above 0 (or its range is given). Named presets
(:mod:`embedforge.views.presets`: ``tutorial_affine``, ``simclr``, ``byol``) are subclasses
with other defaults, and a recipe names one and overrides any of its keys::

    views: {preset: simclr, crop_scale: [0.2, 1.0]}

Order: resized crop, affine, flips, colour jitter, grayscale, blur, solarisation. ``second``
overrides options for the second view of a pair (BYOL's asymmetric views); ``pair`` says
which images a self-supervised step views: ``both`` contrasts two random views (SimCLR),
``one`` the image itself against one view (the dSprites tutorial's first setting).
"""

from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from embedforge.config import Section
from embedforge.registry import VIEWS
from embedforge.views.batch_rows import BatchRows
from embedforge.views.image_views import (
    Interpolation,
    colour_jitter,
    gaussian_blur,
    random_affine,
    random_flip,
    random_grayscale,
    random_resized_crop,
    random_solarize,
)

Range = tuple[float, float]
Probability = Field(0.0, ge=0, le=1)


class ImageViews(Section):
    """No augmentation unless asked: every view step off (each option turns one on).

    >>> views = ImageViews(hflip=0.5)
    >>> x = torch.rand(4, 1, 16, 16)
    >>> views(x, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 1, 16, 16])
    >>> bool(ImageViews()(x, torch.Generator()).equal(x))
    True
    """

    preset: Literal["identity"] = "identity"
    crop_scale: Range | None = Field(None, description="resized crop's area fraction")
    crop_ratio: Range = Field((3 / 4, 4 / 3), description="resized crop's width / height")
    degrees: float | Range = Field(0.0, description="±degrees, or a (low, high) range")
    translate: float = Field(0.0, ge=0, description="fraction of width / height")
    scale: Range = (1.0, 1.0)
    hflip: float = Probability
    vflip: float = Probability
    brightness: float = Field(0.0, ge=0)
    contrast: float = Field(0.0, ge=0)
    saturation: float = Field(0.0, ge=0)
    jitter_probability: float = Field(1.0, ge=0, le=1, description="images colour-jittered")
    grayscale: float = Probability
    blur_sigma: Range | None = Field(None, description="pixels, e.g. [0.1, 2.0]")
    blur_probability: float = Field(0.5, ge=0, le=1)
    solarize: float = Probability
    interpolation: Interpolation = Field("bilinear", description="of the crop and affine steps")
    pair: Literal["both", "one"] = "both"
    second: dict[str, Any] | None = Field(
        None, description="options that differ for the second view of a pair"
    )

    @model_validator(mode="after")
    def _second_names_options(self) -> "ImageViews":
        if self.second is not None:
            unknown = set(self.second) - set(type(self).model_fields) - {"preset", "second"}
            if unknown or {"preset", "second", "pair"} & set(self.second):
                raise ValueError(f"views.second: unknown or fixed keys {sorted(self.second)}")
            self.second_view()  # its values are checked like the first view's
        return self

    def second_view(self) -> "ImageViews":
        """The pipeline of a pair's second view (the same one unless ``second`` is given)."""
        if not self.second:
            return self
        options = {**self.model_dump(), **self.second, "second": None}
        return type(self).model_validate(options)

    def __call__(
        self, images: Tensor, generator: torch.Generator, rows: BatchRows | None = None
    ) -> Tensor:
        """Views of ``images``, rows ``rows`` of a global batch (by default the whole batch)."""
        if self.crop_scale is not None:
            images = random_resized_crop(
                images,
                generator,
                scale=self.crop_scale,
                ratio=self.crop_ratio,
                interpolation=self.interpolation,
                rows=rows,
            )
        if self.degrees not in (0, (0, 0)) or self.translate > 0 or self.scale != (1.0, 1.0):
            images = random_affine(
                images,
                generator,
                degrees=self.degrees,
                translate=self.translate,
                scale=self.scale,
                interpolation=self.interpolation,
                rows=rows,
            )
        if self.hflip > 0 or self.vflip > 0:
            images = random_flip(
                images, generator, horizontal=self.hflip, vertical=self.vflip, rows=rows
            )
        if self.brightness > 0 or self.contrast > 0 or self.saturation > 0:
            images = colour_jitter(
                images,
                generator,
                brightness=self.brightness,
                contrast=self.contrast,
                saturation=self.saturation,
                probability=self.jitter_probability,
                rows=rows,
            )
        if self.grayscale > 0:
            images = random_grayscale(images, generator, probability=self.grayscale, rows=rows)
        if self.blur_sigma is not None and self.blur_probability > 0:
            images = gaussian_blur(
                images,
                generator,
                sigma=self.blur_sigma,
                probability=self.blur_probability,
                rows=rows,
            )
        if self.solarize > 0:
            images = random_solarize(images, generator, probability=self.solarize, rows=rows)
        return images


VIEWS.register(ImageViews)(ImageViews)
