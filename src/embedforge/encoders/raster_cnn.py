"""The baseline set encoder: paint the set as an image, run a small CNN, mean-pool.

This is how palette embeddings were first made (each pixel of a square image
takes a colour drawn with probability equal to its share), kept so that the
set encoders can be compared with it. The painting is one batched
``torch.multinomial`` draw for all sets, not a per-object loop, so the speed
comparison is about the model and not about pandas. In training mode every
call paints a new random picture (the original's only augmentation). In eval
mode the picture is fixed: rows in a canonical order, each colour given its share
of the pixels (to the pixel) at positions fixed by a seed, so an exported
embedding depends on the set alone: not on its row order, nor on the batch it is
embedded in.
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Section, Shapes
from embedforge.registry import SET_ENCODERS


def rasterise(
    values: Tensor,
    mask: Tensor,
    *,
    size: int,
    generator: torch.Generator | None,
    weight_index: int = 0,
    quantiles: Tensor | None = None,
) -> Tensor:
    """(values (B, M, F), mask (B, M)) -> (B, F-1, size, size) images of the non-weight features.

    Each pixel shows a row drawn with probability equal to its weight: at random from
    ``generator``, or, given ``quantiles`` (size², values in (0, 1)), pixel p shows the row
    whose share of the cumulative weight covers ``quantiles[p]`` (the same for every set).
    """
    weights = values[..., weight_index] * mask  # (B, M)
    weights = torch.where(weights.sum(dim=1, keepdim=True) > 0, weights, mask.float() + 1e-12)
    if quantiles is None:
        pixels = torch.multinomial(
            weights, size * size, replacement=True, generator=generator
        )  # (B, P)
    else:
        cumulative = weights.cumsum(dim=1) / weights.sum(dim=1, keepdim=True)  # (B, M)
        targets = quantiles.to(cumulative).expand(len(weights), -1).contiguous()  # (B, P)
        pixels = torch.searchsorted(cumulative, targets, right=True).clamp_max(weights.shape[1] - 1)
    features = torch.cat([values[..., :weight_index], values[..., weight_index + 1 :]], dim=-1)
    painted = features.gather(
        1, pixels.unsqueeze(-1).expand(-1, -1, features.shape[-1])
    )  # (B, P, C)
    return painted.transpose(1, 2).reshape(values.shape[0], -1, size, size)


def canonical_order(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Rows sorted by every feature, padding last: the same order whatever order rows came in."""
    keys = values.masked_fill(~mask.unsqueeze(-1), float("inf"))
    order = torch.arange(values.shape[1], device=values.device).expand(mask.shape)
    for column in reversed(range(values.shape[-1])):  # stable sorts: last key first
        column_keys = keys.gather(1, order.unsqueeze(-1).expand(-1, -1, keys.shape[-1]))[
            ..., column
        ]
        order = order.gather(1, column_keys.argsort(dim=1, stable=True))
    return values.gather(1, order.unsqueeze(-1).expand_as(values)), mask.gather(1, order)


class RasterCNN(nn.Module):
    """(values (B, M, F), mask (B, M)) -> (B, dim) through a painted image and a 2-layer CNN.

    >>> encoder = RasterCNN(in_features=4, dim=16, image_size=16).eval()
    >>> values, mask = torch.rand(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    >>> encoder(values, mask).shape
    torch.Size([2, 16])
    """

    EVAL_SEED = 0
    ONNX_UNSUPPORTED = (
        "its eval-mode painting sorts rows (stable argsort) and looks up weights with "
        "searchsorted, which torch's ONNX exporter does not translate; export deep_sets or "
        "set_transformer"
    )

    def __init__(
        self,
        *,
        in_features: int,
        dim: int,
        image_size: int = 32,
        channels: int = 32,
        weight_index: int = 0,
    ) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(in_features - 1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.output = nn.Linear(2 * channels, dim)
        self.image_size = image_size
        self.weight_index = weight_index
        self.dim = dim

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        quantiles = None
        if not self.training:
            values, mask = canonical_order(values, mask)
            quantiles = self.eval_quantiles(self.image_size)
        images = rasterise(
            values,
            mask,
            size=self.image_size,
            generator=None,
            weight_index=self.weight_index,
            quantiles=quantiles,
        )
        return self.output(self.cnn(images))

    @classmethod
    def eval_quantiles(cls, size: int) -> Tensor:
        """``(size²,)`` evenly spaced quantiles at seeded pixel positions: each row gets its
        share of the pixels, scattered as in a random painting, identically for every set."""
        pixels = size * size
        evenly = (torch.arange(pixels, dtype=torch.float64) + 0.5) / pixels
        scatter = torch.randperm(pixels, generator=torch.Generator().manual_seed(cls.EVAL_SEED))
        return evenly[scatter]


class RasterCNNConfig(Section):
    """The raster-CNN baseline: the palette painted as an image, then a small CNN."""

    name: Literal["raster_cnn"] = "raster_cnn"
    dim: int = Field(64, gt=0, description="the embedding size")
    image_size: int = Field(32, gt=1)
    channels: int = Field(32, gt=0)


@SET_ENCODERS.register(RasterCNNConfig)
def build(config: RasterCNNConfig, shapes: Shapes) -> RasterCNN:
    options = config.model_dump(exclude={"name"})
    return RasterCNN(in_features=shapes.in_features, **options)
