"""The small CNN trunk: two conv blocks and three fully connected layers to an 84-d feature.

It is the encoder of the well-known dSprites representation-learning tutorial
(LeNet-like: average pooling, batch norm without affine parameters), so results
can be compared with that tutorial's table. For small inputs such as 8×8
digits the convolutions keep the spatial size (kernel 3, padding 1) instead of
shrinking it (kernel 5, no padding), which would leave nothing to pool.
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Section, Shapes
from embedforge.registry import ENCODERS


def conv_geometry(image_size: int) -> tuple[int, int]:
    """(kernel, padding) of both convolutions for ``image_size`` inputs (see the module)."""
    return (3, 1) if image_size < 32 else (5, 0)


class SmallCNN(nn.Module):
    """(B, C, H, W) images -> (B, feature_dim) features.

    >>> cnn = SmallCNN(image_size=8)
    >>> cnn(torch.zeros(4, 1, 8, 8)).shape
    torch.Size([4, 84])
    """

    def __init__(self, *, image_size: int, in_channels: int = 1, feature_dim: int = 84) -> None:
        super().__init__()
        kernel, padding = conv_geometry(image_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel, padding=padding),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.BatchNorm2d(6, affine=False),
            nn.Conv2d(6, 16, kernel, padding=padding),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.BatchNorm2d(16, affine=False),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat_size = self.features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
        self.head = nn.Sequential(
            nn.Linear(flat_size, 120),
            nn.ReLU(),
            nn.BatchNorm1d(120, affine=False),
            nn.Linear(120, feature_dim),
            nn.ReLU(),
            nn.BatchNorm1d(feature_dim, affine=False),
            nn.Linear(feature_dim, feature_dim),
            nn.ReLU(),
            nn.BatchNorm1d(feature_dim, affine=False),
        )
        self.feature_dim = feature_dim

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


class SmallCNNConfig(Section):
    """The tutorial's small CNN trunk (its embedding comes from the ``embedder`` section)."""

    name: Literal["small_cnn"] = "small_cnn"
    feature_dim: int = Field(84, gt=0)


@ENCODERS.register(SmallCNNConfig)
def build(config: SmallCNNConfig, shapes: Shapes) -> SmallCNN:
    return SmallCNN(
        image_size=shapes.image_size, in_channels=shapes.in_channels, feature_dim=config.feature_dim
    )
