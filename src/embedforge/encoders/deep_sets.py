"""DeepSets over weighted rows: per-row MLP, weight-aware pooling, MLP on the pooled vector.

Zaheer et al., "Deep Sets", 2017, arXiv:1703.06114. Pooling by a sum is what
makes the encoder permutation invariant; here the sum is weighted by each
row's share (a palette colour covering 60% of the picture counts for 60%), and
a masked max pool sits beside it so that a small but striking colour is not
averaged away. Empty sets give the encoding of "nothing" (zeros in, ρ out).
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Section, Shapes
from embedforge.registry import SET_ENCODERS


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class DeepSets(nn.Module):
    """(values (B, M, F), mask (B, M)) -> (B, dim); column ``weight_index`` holds row weights.

    >>> encoder = DeepSets(in_features=4, dim=16)
    >>> values, mask = torch.rand(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    >>> encoder(values, mask).shape
    torch.Size([2, 16])
    """

    def __init__(
        self, *, in_features: int, dim: int, hidden: int = 128, weight_index: int = 0
    ) -> None:
        super().__init__()
        self.phi = _mlp(in_features, hidden, hidden)
        self.rho = _mlp(2 * hidden, hidden, dim)
        self.weight_index = weight_index
        self.dim = dim

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        rows = self.phi(values)  # (B, M, H)
        weights = values[..., self.weight_index] * mask  # (B, M)
        weighted_sum = (rows * weights.unsqueeze(-1)).sum(dim=1)  # (B, H)
        masked = rows.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        max_pool = masked.amax(dim=1)  # (B, H)
        max_pool = torch.where(mask.any(dim=1, keepdim=True), max_pool, 0.0)
        return self.rho(torch.cat([weighted_sum, max_pool], dim=1))


class DeepSetsConfig(Section):
    """DeepSets: a per-row MLP, weighted sum and max pooled, then an MLP (invariant)."""

    name: Literal["deep_sets"] = "deep_sets"
    dim: int = Field(64, gt=0, description="the embedding size")
    hidden: int = Field(128, gt=0)


@SET_ENCODERS.register(DeepSetsConfig)
def build(config: DeepSetsConfig, shapes: Shapes) -> DeepSets:
    return DeepSets(in_features=shapes.in_features, dim=config.dim, hidden=config.hidden)
