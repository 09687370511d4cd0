"""Multi-similarity loss: pairs weighted by their own and their neighbours' similarities.

Wang, Han, Huang, Dong & Scott, "Multi-Similarity Loss with General Pair Weighting for Deep
Metric Learning", CVPR 2019, arXiv:1904.06627 (the loss of its eq. 4, without the pair
mining step, as pytorch-metric-learning's ``MultiSimilarityLoss``, whose numbers it gives).
"""

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import pairwise_cosine_similarity
from embedforge.losses.loss_config import LossConfig
from embedforge.losses.references import References, pair_masks, reference_rows
from embedforge.registry import LOSSES


def _soft_count(logits: Tensor, keep: Tensor) -> Tensor:
    """``log(1 + sum_{keep} exp(logits))`` per row, 0 for a row that keeps nothing."""
    lowest = torch.finfo(logits.dtype).min
    masked = logits.masked_fill(~keep, lowest)  # (B, M)
    one = torch.zeros_like(masked[:, :1])  # the "1 +" term, exp(0)
    return torch.cat([masked, one], dim=1).logsumexp(dim=1) * keep.any(dim=1)  # (B,)


def multi_similarity_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    references: References | None = None,
) -> Tensor:
    """Per anchor ``log(1 + sum_p e^{-alpha (s_ap - base)}) / alpha + log(1 + sum_n
    e^{beta (s_an - base)}) / beta`` with s the cosine similarity, averaged over anchors;
    with ``references`` (a cross-batch memory) p and n are reference rows.

    embeddings: (B, D) float; labels: (B,) int. Returns a scalar; O(B·M) memory.

    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # one positive pair at similarity 1
    >>> round(multi_similarity_loss(x, torch.tensor([0, 0])).item(), 4)  # log(1 + e^-1) / 2
    0.1566
    """
    similarity = pairwise_cosine_similarity(embeddings, reference_rows(references))  # (B, M)
    positive, negative = pair_masks(labels.to(embeddings.device), references)  # (B, M) each
    pulled = _soft_count(-alpha * (similarity - base), positive) / alpha  # (B,)
    pushed = _soft_count(beta * (similarity - base), negative) / beta  # (B,)
    return (pulled + pushed).mean()


class MultiSimilarityLoss(nn.Module):
    """Multi-similarity loss (Wang et al., 2019, arXiv:1904.06627), PML's defaults.

    Why: weighs each pair by how hard it is relative to the anchor's other pairs (the
    log-sum-exp softens "hardest pair" into a weighted sum), a strong loss for retrieval that
    needs no explicit miner. ``alpha`` and ``beta`` sharpen the positive and negative terms,
    ``base`` is the similarity the pairs are measured from.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int -> scalar; ``references``
    compares the anchors with a cross-batch memory's rows instead.

    >>> loss = MultiSimilarityLoss()
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    >>> round(loss(x, torch.tensor([0, 0, 1])).item(), 4)
    0.7678
    """

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5) -> None:
        super().__init__()
        self.alpha, self.beta, self.base = alpha, beta, base

    def forward(
        self, embeddings: Tensor, labels: Tensor, *, references: References | None = None
    ) -> Tensor:
        return multi_similarity_loss(
            embeddings,
            labels,
            alpha=self.alpha,
            beta=self.beta,
            base=self.base,
            references=references,
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, base={self.base}"


class MultiSimilarityConfig(LossConfig):
    """Multi-similarity loss: pairs weighted relative to the anchor's other pairs."""

    takes_references: ClassVar[bool] = True
    name: Literal["multi_similarity"] = "multi_similarity"
    alpha: float = Field(2.0, gt=0, description="sharpness of the positive term")
    beta: float = Field(50.0, gt=0, description="sharpness of the negative term")
    base: float = Field(0.5, description="the similarity pairs are measured from")


@LOSSES.register(MultiSimilarityConfig)
def build(config: MultiSimilarityConfig, shapes: Shapes) -> MultiSimilarityLoss:
    return MultiSimilarityLoss(**config.options())


__all__ = ["MultiSimilarityLoss", "multi_similarity_loss"]
