"""View matching: the palettes' own validation, with no labels needed.

Two views of each held-out object are drawn from a fixed seed (the same every epoch, so
epochs are compared fairly), embedded in eval mode, and each first view queries the second
views: ``view_precision_at_1`` is the fraction whose nearest second view is its own object's.
The collapse monitors (:mod:`embedforge.metrics.collapse`) of the first views, and their
alignment with the second, come with them. ``validation_loss`` is the training loss on those
views (``loss_of(first_views, second_views)``, which embeds them itself: a method with a
momentum target also needs its target's embeddings), when the loss is one of two views
(``loss_of=None`` otherwise: an EMD-distilled run's loss takes pairs of palettes, and its task
measures its own).
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from embedforge.data.set_batch import SetBatch
from embedforge.inference import embed_sets
from embedforge.metrics.collapse import collapse_metrics
from embedforge.metrics.retrieval import retrieval_metrics

VALIDATION_SEED = 20_240_601
"""Seed of the held-out objects' validation views: fixed, so epochs are compared fairly."""


def view_matching(
    model: nn.Module,
    views: Callable[[SetBatch, torch.Generator], SetBatch],
    sets: SetBatch,
    device: torch.device,
    loss_of: Callable[[SetBatch, SetBatch], Tensor] | None,
) -> dict[str, float]:
    """``view_precision_at_1`` (and ``validation_loss``, given ``loss_of``) of ``model`` on the
    held-out ``sets``, with the collapse monitors."""
    sets = sets.to(device)
    generator = torch.Generator(device).manual_seed(VALIDATION_SEED)
    first, second = views(sets, generator), views(sets, generator)
    z1 = embed_sets(model, first, device)  # (held, D)
    z2 = embed_sets(model, second, device)  # (held, D)
    objects = torch.arange(len(z1))
    metrics = retrieval_metrics(z1, objects, z2, objects, include=("precision_at_1",))
    matching = {"view_precision_at_1": metrics["precision_at_1"]}
    if loss_of is not None:
        with torch.no_grad():
            matching["validation_loss"] = loss_of(first, second).item()
    return {**matching, **collapse_metrics(z1, z2)}  # of the first views; alignment of the two
