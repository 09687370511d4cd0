"""A plain anchor/positive/negative cosine loss for self-supervised palettes."""

from typing import ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.loss_config import Call, LossConfig
from embedforge.registry import LOSSES


def cosine_triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """``mean(1 - cos(a, p)) + mean(cos(a, n))`` over rows; each input (B, D)."""
    pos_cos = F.cosine_similarity(anchor, positive, dim=1)  # (B,)
    neg_cos = F.cosine_similarity(anchor, negative, dim=1)  # (B,)
    return (1.0 - pos_cos).mean() + neg_cos.mean()


class CosineTripletLoss(nn.Module):
    """Pull each anchor towards its positive and away from its negative, by cosine.

    Why: the simplest self-supervised signal, as first used for colour
    palettes (a view of the same palette as positive, another palette as
    negative). No margin and no mining: a baseline for NT-Xent. The loss lies
    in [-1, 3]; it is 0 when positives align and negatives are orthogonal.

    Shapes: ``anchor``, ``positive``, ``negative`` each (B, D) -> scalar.

    >>> import torch
    >>> a = torch.tensor([[1.0, 0.0]])
    >>> CosineTripletLoss()(a, a, torch.tensor([[0.0, 1.0]])).item()
    0.0
    """

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        if not anchor.shape == positive.shape == negative.shape or anchor.ndim != 2:
            raise ValueError(
                "anchor, positive and negative must all be (B, D) of one shape, got "
                f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
            )
        return cosine_triplet_loss(anchor, positive, negative)


class CosineTripletConfig(LossConfig):
    """Anchor/positive/negative cosine loss (palettes: the negative is another object's view)."""

    calls: ClassVar[frozenset[Call]] = frozenset({"anchor_positive_negative"})
    name: Literal["cosine_triplet"] = "cosine_triplet"


@LOSSES.register(CosineTripletConfig)
def build(config: CosineTripletConfig, shapes: Shapes) -> CosineTripletLoss:
    return CosineTripletLoss()


__all__ = ["CosineTripletLoss", "cosine_triplet_loss"]
