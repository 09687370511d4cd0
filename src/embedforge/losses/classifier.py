"""Softmax classifier loss: a linear classifier on the embeddings, trained with them.

The supervised baseline of the self-supervised comparison: the encoder is trained end to
end with its classifier by cross-entropy, and the classifier's own accuracy is the
baseline's score. Unlike pytorch-metric-learning's ``NormalizedSoftmaxLoss`` nothing is
normalised (a plain ``nn.Linear`` and ``F.cross_entropy``), so it has no PML counterpart.
"""

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.loss_config import LossConfig
from embedforge.registry import LOSSES


def softmax_classifier_loss(
    embeddings: Tensor, labels: Tensor, weight: Tensor, bias: Tensor | None = None
) -> Tensor:
    """Mean cross-entropy of the linear classifier ``embeddings @ weight.T + bias``.

    embeddings: (B, D); labels: (B,) int; weight: (C, D); bias: (C,) or None -> scalar.
    """
    return F.cross_entropy(F.linear(embeddings, weight, bias), labels.long())


class SoftmaxClassifierLoss(nn.Module):
    """Cross-entropy of a linear classifier on the embeddings (mean over the batch).

    Why a loss: the classifier is a head the encoder needs only while training, so it
    lives here, beside the loss it serves; ``model(x)`` stays the embedding and the trainer
    optimises and checkpoints the classifier as a loss parameter (like ArcFace's ``W``).

    Shapes: ``embeddings`` (B, embedding_size), ``labels`` (B,) int in [0, num_classes)
    -> scalar. :meth:`logits` gives the classifier's (B, num_classes) scores, to read its
    accuracy.

    >>> import torch
    >>> loss_fn = SoftmaxClassifierLoss(num_classes=3, embedding_size=4)
    >>> z, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> loss_fn(z, labels).shape, loss_fn.logits(z).shape
    (torch.Size([]), torch.Size([5, 3]))
    """

    def __init__(self, num_classes: int, embedding_size: int, *, bias: bool = True) -> None:
        super().__init__()
        if num_classes < 1 or embedding_size < 1:
            raise ValueError(
                "num_classes and embedding_size must be >= 1, "
                f"got {num_classes} and {embedding_size}"
            )
        self.classifier = nn.Linear(embedding_size, num_classes, bias=bias)

    def logits(self, embeddings: Tensor) -> Tensor:
        """(B, embedding_size) -> (B, num_classes) unnormalised class scores."""
        return self.classifier(embeddings)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        classifier = self.classifier
        return softmax_classifier_loss(embeddings, labels, classifier.weight, classifier.bias)


class SoftmaxConfig(LossConfig):
    """A linear classifier on the embeddings + cross-entropy (the supervised baseline)."""

    name: Literal["softmax"] = "softmax"
    bias: bool = True


@LOSSES.register(SoftmaxConfig)
def build(config: SoftmaxConfig, shapes: Shapes) -> SoftmaxClassifierLoss:
    return SoftmaxClassifierLoss(shapes.num_classes, shapes.embedding_dim, **config.options())


__all__ = ["SoftmaxClassifierLoss"]
