"""A loss computed on projected embeddings, the head trained with the loss.

SimCLR (Chen et al., 2020, arXiv:2002.05709) puts its NT-Xent loss on g(h) and keeps h
for downstream use. Holding g here, in the loss module, keeps ``model(x)`` = h: what is
embedded, exported and probed is unchanged, and the trainer optimises and checkpoints the
head as a loss parameter, with no change to the trainer or to checkpoints.

Distributed: :func:`~embedforge.train.distributed.global_batch_loss` gathers the
embeddings before calling the loss, so the head (its batch norm included) runs on the
same global batch on every rank: every rank computes the same projections, loss and head
gradient (the single-process ones), and the head's copies stay identical without DDP.
"""

import torch
from torch import Tensor, nn


class Projected(nn.Module):
    """``loss(head(z), ...)``: every embedding argument goes through ``head`` first.

    Two call forms, as for the losses it wraps:

    * ``(z1, z2)``, two float (N, D) views: both are projected in one call, so the head's
      batch norm normalises over all 2N items, as in SimCLR;
    * ``(embeddings, labels)``, (B, D) and int (B,): the embeddings are projected.

    >>> import torch
    >>> from embedforge.encoders.projection_head import ProjectionHead
    >>> from embedforge.losses.ntxent import NTXentLoss
    >>> loss_fn = Projected(ProjectionHead(8, 16, 4), NTXentLoss(temperature=0.5))
    >>> loss_fn(torch.randn(6, 8), torch.randn(6, 8)).shape
    torch.Size([])
    """

    def __init__(self, head: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.head = head
        self.loss = loss

    def forward(self, embeddings: Tensor, labels_or_view: Tensor) -> Tensor:
        if labels_or_view.is_floating_point():
            both = self.head(torch.cat([embeddings, labels_or_view]))  # (2N, out_dim)
            n = len(embeddings)
            return self.loss(both[:n], both[n:])
        return self.loss(self.head(embeddings), labels_or_view)


__all__ = ["Projected"]
