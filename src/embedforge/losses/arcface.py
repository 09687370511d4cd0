"""ArcFace: additive angular margin softmax.

Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
CVPR 2019, arXiv:1801.07698. Matches pytorch-metric-learning's ``ArcFaceLoss``,
with a gradient that stays finite where the cosine reaches +-1.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import safe_sqrt
from embedforge.losses.loss_config import LossConfig
from embedforge.registry import LOSSES


def arcface_logits(cosine: Tensor, labels: Tensor, *, margin: float, scale: float) -> Tensor:
    """Add the angular margin to each row's target class and scale: (B, C) -> (B, C).

    ``margin`` is in radians. cos(theta + m) is expanded as
    ``c cos m - sqrt(1 - c^2) sin m`` (no ``acos``), with a square root whose
    gradient is 0 at 0, so c = +-1 gives a finite gradient. Past theta = pi - m
    the target logit becomes ``c - m sin m`` to keep it decreasing in theta.
    """
    target = cosine.gather(1, labels.unsqueeze(1)).clamp(-1.0, 1.0)  # (B, 1)
    sin = safe_sqrt(1.0 - target * target)  # (B, 1)
    with_margin = target * math.cos(margin) - sin * math.sin(margin)  # (B, 1)
    fallback = target - margin * math.sin(margin)  # (B, 1)
    in_range = target >= math.cos(math.pi - margin)  # theta <= pi - m
    target_logit = torch.where(in_range, with_margin, fallback)  # (B, 1)
    logits = cosine.scatter(1, labels.unsqueeze(1), target_logit)  # (B, C)
    return logits * scale


def arcface_loss(
    embeddings: Tensor, labels: Tensor, weight: Tensor, *, margin: float = 28.6, scale: float = 64.0
) -> Tensor:
    """Mean cross-entropy of the margin-added, scaled cosines to the class centres.

    embeddings: (B, D); labels: (B,) int; weight: the class centres (D, C); ``margin`` in
    degrees. Returns a scalar.
    """
    labels = labels.long()
    weight = weight.to(embeddings.dtype)  # (D, C)
    cosine = F.normalize(embeddings, dim=1) @ F.normalize(weight, dim=0)  # (B, C)
    logits = arcface_logits(cosine, labels, margin=math.radians(margin), scale=scale)  # (B, C)
    return F.cross_entropy(logits, labels)


class ArcFaceLoss(nn.Module):
    """ArcFace loss (Deng et al., 2019, arXiv:1801.07698).

    Why: a softmax over learned class centres with an angular margin on the
    true class gives tight, well-separated classes on the sphere; a strong
    choice for identification with many classes.

    The class centres ``W`` are an ``nn.Parameter`` of shape
    (embedding_size, num_classes), initialised from N(0, 1) as in
    pytorch-metric-learning: train them with the model. ``margin`` is in degrees.

    Shapes: ``embeddings`` (B, embedding_size), ``labels`` (B,) int in
    [0, num_classes) -> scalar (mean cross-entropy over the batch).

    >>> import torch
    >>> model = torch.nn.Linear(8, 4)
    >>> loss_fn = ArcFaceLoss(num_classes=3, embedding_size=4)
    >>> params = list(model.parameters()) + list(loss_fn.parameters())
    >>> optimizer = torch.optim.SGD(params, lr=0.01)
    >>> loss = loss_fn(model(torch.randn(5, 8)), torch.tensor([0, 1, 2, 0, 1]))
    >>> loss.backward(); optimizer.step()
    >>> loss_fn.W.grad.shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        *,
        margin: float = 28.6,
        scale: float = 64.0,
    ) -> None:
        super().__init__()
        if num_classes < 1 or embedding_size < 1:
            raise ValueError(
                "num_classes and embedding_size must be >= 1, "
                f"got {num_classes} and {embedding_size}"
            )
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.margin = margin
        self.scale = scale
        self.W = nn.Parameter(torch.empty(embedding_size, num_classes))
        nn.init.normal_(self.W)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return arcface_loss(embeddings, labels, self.W, margin=self.margin, scale=self.scale)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"margin={self.margin}, scale={self.scale}"
        )


class ArcFaceConfig(LossConfig):
    """ArcFace: an additive angular margin on learned class centres (W is trained)."""

    name: Literal["arcface"] = "arcface"
    margin: float = Field(28.6, description="degrees")
    scale: float = 64.0


@LOSSES.register(ArcFaceConfig)
def build(config: ArcFaceConfig, shapes: Shapes) -> ArcFaceLoss:
    return ArcFaceLoss(shapes.num_classes, shapes.embedding_dim, **config.options())


__all__ = ["ArcFaceLoss", "arcface_logits"]
