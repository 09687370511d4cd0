"""The embedder head: a linear map from trunk features to the embedding, no squashing.

A ReLU or sigmoid at the end would confine embeddings to one orthant and waste
half of every dimension; the head stays linear and optionally L2-normalises,
which metric-learning losses with cosine or normalised-Euclidean distance expect.
"""

import torch.nn.functional as F
from torch import Tensor, nn


class Embedder(nn.Module):
    """(B, in_dim) -> (B, dim) embeddings.

    >>> import torch
    >>> Embedder(84, 32, normalize=True)(torch.randn(3, 84)).norm(dim=1)
    tensor([1.0000, 1.0000, 1.0000], grad_fn=<LinalgVectorNormBackward0>)
    """

    def __init__(self, in_dim: int, dim: int, *, normalize: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, dim)
        self.normalize = normalize

    def forward(self, features: Tensor) -> Tensor:
        embeddings = self.linear(features)
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings
