"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", 2020, arXiv:2002.05709. Matches pytorch-metric-learning's
``NTXentLoss`` (labelled form) and ``SelfSupervisedLoss(NTXentLoss())`` (two views)
without ever building its (positive pairs x negative pairs) tensor.
"""

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import pairwise_cosine_similarity
from embedforge.losses.loss_config import Call, LossConfig
from embedforge.losses.references import References, pair_masks, reference_rows
from embedforge.registry import LOSSES


def sample_negatives(
    neg_mask: Tensor, num: int, *, generator: torch.Generator | None = None
) -> Tensor:
    """Keep ``num`` negatives per row of ``neg_mask`` (B, B), chosen uniformly without replacement.

    Rows are sampled independently; a row with fewer than ``num`` negatives keeps
    them all. Random scores + top-k, so there is no loop over the batch.
    """
    if num < 0:
        raise ValueError(f"neg_pairs must be >= 0, got {num}")
    k = min(num, neg_mask.shape[1])
    scores = torch.rand(neg_mask.shape, generator=generator, device=neg_mask.device)  # (B, B)
    scores = scores.masked_fill(~neg_mask, -1.0)  # non-negatives rank last
    chosen = scores.topk(k, dim=1).indices  # (B, k)
    keep = torch.zeros_like(neg_mask).scatter_(1, chosen, True)  # (B, B)
    return keep & neg_mask


def ntxent_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.07,
    neg_pairs: int | None = None,
    decoupled: bool = False,
    generator: torch.Generator | None = None,
    references: References | None = None,
) -> Tensor:
    """NT-Xent over every positive pair (a, p) of a labelled batch.

    Per pair: ``-s_ap/t + log(exp(s_ap/t) + sum_n exp(s_an/t))`` over the
    negatives n of anchor a, with s the cosine similarity; averaged over all
    positive pairs. ``decoupled``: the positive is left out of the denominator,
    ``-s_ap/t + log(sum_n exp(s_an/t))`` (Yeh et al., "Decoupled Contrastive
    Learning", 2022, arXiv:2110.06848; also the dSprites tutorial's form when it
    keeps only a few negatives). The negative sum is one logsumexp per anchor, so memory is
    O(B^2). An anchor with positives but no negatives contributes 0; with no
    positive or no negative pair in the batch the loss is 0 (on the graph).

    pytorch-metric-learning takes ``log(ratio + tiny)``, which caps a pair's loss
    at about 87 (float32) once the ratio underflows; here there is no cap, so the
    two differ only in that saturated regime (e.g. temperature 1e-3).

    With ``references`` (a cross-batch memory) p and n are reference rows, the anchor's own
    copy excluded.

    embeddings: (B, D) float; labels: (B,) int. Returns a scalar.
    """
    logits = pairwise_cosine_similarity(embeddings, reference_rows(references)) / temperature
    pos_mask, neg_mask = pair_masks(labels, references)  # (B, M) each
    if neg_pairs is not None:
        neg_mask = sample_negatives(neg_mask, neg_pairs, generator=generator)
    if not pos_mask.any() or not neg_mask.any():
        return embeddings.sum() * 0.0
    anchor, positive = pos_mask.nonzero(as_tuple=True)  # (P,) each: only B*K pairs
    pos_logits = logits[anchor, positive]  # (P,), taken before the in-place fill below
    has_neg = neg_mask.any(dim=1)  # (B,)
    lowest = torch.finfo(logits.dtype).min  # finite, so logsumexp's gradient stays finite
    neg_lse = logits.masked_fill_(~neg_mask, lowest).logsumexp(dim=1)  # (B,), in place: no copy
    if decoupled:
        pair_loss = torch.where(has_neg[anchor], neg_lse[anchor] - pos_logits, 0.0)
        return pair_loss.mean()
    neg_lse = torch.where(has_neg, neg_lse, float("-inf"))  # no negatives -> pair loss 0
    return (torch.logaddexp(pos_logits, neg_lse[anchor]) - pos_logits).mean()


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent loss (Chen et al., 2020, arXiv:2002.05709).

    Why: each item must pick out its positive among all the batch's negatives,
    which spreads embeddings over the sphere with no labels at all.

    Two call forms, told apart by the second argument:

    * ``loss(z1, z2)``, two float (N, D) views of the same N items: the views of
      one item are the positives, all 2N - 2 other rows the negatives
      (pytorch-metric-learning's ``SelfSupervisedLoss(NTXentLoss(t))``);
    * ``loss(embeddings, labels)``, (B, D) and int (B,): same-label rows are the
      positives (pytorch-metric-learning's ``NTXentLoss(t)``).

    ``neg_pairs=N`` keeps only N random negatives per anchor (an ablation, e.g.
    SimCLR with 2 negatives). They are drawn from ``generator`` when given (it
    must live on the embeddings' device), otherwise from the global RNG, so
    ``torch.manual_seed`` makes them reproducible. ``decoupled=True`` leaves the
    positive out of the denominator (see :func:`ntxent_loss`); the dSprites
    tutorial's 2-negative ablation is ``neg_pairs=2, decoupled=True``.

    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> loss = NTXentLoss(temperature=1.0)
    >>> round(loss(z, z).item(), 4)  # s_ap = 1, two negatives at 0: -1 + log(e + 2)
    0.5514
    """

    def __init__(
        self,
        temperature: float = 0.07,
        *,
        neg_pairs: int | None = None,
        decoupled: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if neg_pairs is not None and neg_pairs < 0:
            raise ValueError(f"neg_pairs must be >= 0 or None, got {neg_pairs}")
        self.temperature = temperature
        self.neg_pairs = neg_pairs
        self.decoupled = decoupled
        self.generator = generator

    def forward(
        self,
        embeddings: Tensor,
        labels_or_view: Tensor,
        *,
        references: References | None = None,
    ) -> Tensor:
        if references is not None and labels_or_view.is_floating_point():
            raise ValueError("references (a cross-batch memory) need labels, not a second view")
        embeddings, labels = _as_labelled(embeddings, labels_or_view)
        return ntxent_loss(
            embeddings,
            labels,
            temperature=self.temperature,
            neg_pairs=self.neg_pairs,
            decoupled=self.decoupled,
            generator=self.generator,
            references=references,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, neg_pairs={self.neg_pairs}, "
            f"decoupled={self.decoupled}"
        )


def _as_labelled(embeddings: Tensor, other: Tensor) -> tuple[Tensor, Tensor]:
    """Turn either call form of :class:`NTXentLoss` into (embeddings, labels)."""
    if embeddings.ndim != 2 or not embeddings.is_floating_point():
        raise ValueError(
            "embeddings must be a float (B, D) tensor, "
            f"got {embeddings.dtype} {tuple(embeddings.shape)}"
        )
    if other.is_floating_point():
        if other.shape != embeddings.shape:
            raise ValueError(
                "second view must have the shape of the first, "
                f"got {tuple(other.shape)} and {tuple(embeddings.shape)}"
            )
        ids = torch.arange(embeddings.shape[0], device=embeddings.device)  # (N,)
        return torch.cat([embeddings, other]), torch.cat([ids, ids])  # (2N, D), (2N,)
    if other.dtype == torch.bool or other.is_complex():
        raise ValueError(f"labels must be an integer tensor, got {other.dtype}")
    if other.shape != embeddings.shape[:1]:
        raise ValueError(
            f"labels must have shape ({embeddings.shape[0]},) to match the embeddings, "
            f"got {tuple(other.shape)}"
        )
    return embeddings, other.to(embeddings.device)


class NTXentConfig(LossConfig):
    """NT-Xent / InfoNCE: two views of each item (SimCLR), or embeddings with labels."""

    calls: ClassVar[frozenset[Call]] = frozenset({"labels", "two_views"})
    takes_references: ClassVar[bool] = True
    name: Literal["ntxent"] = "ntxent"
    temperature: float = Field(0.07, gt=0)
    neg_pairs: int | None = Field(None, gt=0, description="random negatives kept per anchor")
    decoupled: bool = Field(False, description="the positive left out of the denominator")


@LOSSES.register(NTXentConfig)
def build(config: NTXentConfig, shapes: Shapes) -> NTXentLoss:
    return NTXentLoss(**config.options())


__all__ = ["NTXentLoss", "ntxent_loss", "sample_negatives"]
