"""What every loss's recipe section shares: its keyword arguments, and how the loss is called.

A loss is called in one of a few shapes, and the trainer's tasks pick the shape from the
config's ``calls`` (not from the loss's class), so a new loss says once how to feed it:

* ``labels``: ``loss(embeddings (B, D), labels (B,))`` — metric learning;
* ``two_views``: ``loss(z1 (B, D), z2 (B, D))`` — row i of both is the same item (SimCLR);
* ``anchor_positive_negative``: ``loss(a, p, n)``, each (B, D) — the palettes' cosine triplet;
* ``reconstruction``: ``loss(z (B, D), images (B, C, H, W), generator)`` — the VAE;
* ``momentum_views``: ``loss(z1, z2, t1, t2)``, the two views through the encoder and through
  the loss's ``target_encoder`` (a momentum copy: BYOL, MoCo, DINO; see
  :mod:`embedforge.methods.method`);
* ``palette_pairs``: ``loss(first (P, D), second (P, D), emd (P,))`` — pairs of palettes and
  their exact EMD (:mod:`embedforge.train.emd_task`).
"""

from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

import torch
from torch import Tensor, nn

from embedforge.config import Section
from embedforge.losses.precision import in_float32

Call = Literal[
    "labels",
    "two_views",
    "anchor_positive_negative",
    "reconstruction",
    "momentum_views",
    "palette_pairs",
]
Views = TypeVar("Views")


class LossConfig(Section):
    """A loss's recipe section: ``name`` plus the loss's keyword arguments."""

    calls: ClassVar[frozenset[Call]] = frozenset({"labels"})
    takes_references: ClassVar[bool] = False
    """Whether a labelled call also takes ``references=`` (a cross-batch memory's rows, see
    :mod:`embedforge.losses.references`)."""

    def options(self) -> dict[str, Any]:
        """The keyword arguments of the loss (everything but ``name``)."""
        return self.model_dump(exclude={"name"})


def loss_of_views(loss_fn: nn.Module, calls: frozenset[Call], z1: Tensor, z2: Tensor) -> Tensor:
    """The loss of (B, D) first- and second-view embeddings of the same B items, in float32:
    ``loss(z1, z2)``, or for an anchor/positive/negative loss ``loss(z1, z2, z2 rolled by
    one)`` (the negative: the next item's second view; batches are shuffled, so the pairing
    is random)."""
    if "two_views" in calls:
        return in_float32(loss_fn, z1, z2)
    if "anchor_positive_negative" in calls:
        return in_float32(loss_fn, z1, z2, z2.roll(1, dims=0))
    raise ValueError(f"{type(loss_fn).__name__} takes no views (calls: {sorted(calls)})")


def views_loss(
    loss_fn: nn.Module,
    calls: frozenset[Call],
    encode: Callable[[nn.Module, Views], Tensor],
    model: nn.Module,
    first: Views,
    second: Views,
) -> Tensor:
    """The loss of two views of the same items: ``encode(model, views)`` gives their (B, D)
    embeddings (gathered over ranks by the caller's ``encode`` in training); a loss called
    with ``momentum_views`` also gets them through its ``target_encoder``, without gradient."""
    z1, z2 = encode(model, first), encode(model, second)
    if "momentum_views" not in calls:
        return loss_of_views(loss_fn, calls, z1, z2)
    with torch.no_grad():
        t1 = encode(loss_fn.target_encoder, first)
        t2 = encode(loss_fn.target_encoder, second)
    return in_float32(loss_fn, z1, z2, t1, t2)
