"""Supervised contrastive loss (SupCon).

Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, arXiv:2004.11362
(the L_out variant). Matches pytorch-metric-learning's ``SupConLoss``.
"""

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import pairwise_cosine_similarity
from embedforge.losses.loss_config import LossConfig
from embedforge.losses.reductions import mean_of_positive
from embedforge.losses.references import References, pair_masks, reference_rows
from embedforge.registry import LOSSES


def supcon_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    references: References | None = None,
) -> Tensor:
    """Per anchor, minus the mean log-probability of its positives among all other rows.

    ``loss_a = -mean_p [s_ap/t - log sum_{j != a} exp(s_aj/t)]`` with s the cosine
    similarity. Anchors without positives score 0 and, as in
    pytorch-metric-learning (AvgNonZero reduction), are left out of the mean. With
    ``references`` (a cross-batch memory) the other rows are the reference rows but the
    anchor's own copy.

    embeddings: (B, D) float; labels: (B,) int. Returns a scalar.
    """
    logits = pairwise_cosine_similarity(embeddings, reference_rows(references)) / temperature
    pos_mask, neg_mask = pair_masks(labels, references)  # (B, M) each
    if not pos_mask.any() or not neg_mask.any():
        return embeddings.sum() * 0.0
    others = pos_mask | neg_mask  # (B, M): every row but the anchor itself
    lowest = torch.finfo(logits.dtype).min  # finite, so logsumexp's gradient stays finite
    log_norm = logits.masked_fill(~others, lowest).logsumexp(dim=1, keepdim=True)  # (B, 1)
    log_prob = logits - log_norm  # (B, M)
    num_pos = pos_mask.sum(dim=1)  # (B,)
    pos_log_prob = torch.where(pos_mask, log_prob, 0.0).sum(dim=1)  # (B,)
    per_anchor = -pos_log_prob / num_pos.clamp_min(1)  # (B,); 0 without positives
    return mean_of_positive(per_anchor)


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al., 2020, arXiv:2004.11362).

    Why: NT-Xent with labels. Every same-label row is a positive, so a class
    is pulled together as a whole while all other classes serve as negatives;
    more stable than cross-entropy and than pair/triplet losses.

    Shapes: ``embeddings`` (B, D), ``labels`` (B,) int -> scalar; ``references``
    compares the anchors with a cross-batch memory's rows instead.

    >>> import torch
    >>> loss = SupConLoss(temperature=1.0)
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> round(loss(x, torch.tensor([0, 0, 1])).item(), 4)  # -1 + log(e + 1), anchors 0 and 1
    0.3133
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self, embeddings: Tensor, labels: Tensor, *, references: References | None = None
    ) -> Tensor:
        return supcon_loss(embeddings, labels, temperature=self.temperature, references=references)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class SupConConfig(LossConfig):
    """Supervised contrastive loss: every same-label item is a positive."""

    takes_references: ClassVar[bool] = True
    name: Literal["supcon"] = "supcon"
    temperature: float = Field(0.1, gt=0)


@LOSSES.register(SupConConfig)
def build(config: SupConConfig, shapes: Shapes) -> SupConLoss:
    return SupConLoss(**config.options())


__all__ = ["SupConLoss", "supcon_loss"]
