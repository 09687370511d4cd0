"""DINO's loss: the student's distribution over prototypes matches the teacher's, centred and
sharpened, across different views.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", 2021,
arXiv:2104.14294, Algorithm 1: ``P_t = softmax((t − c) / τ_t)`` (no gradient),
``L = mean over (teacher view i, student view j ≠ i) and items of −Σ P_t log softmax(s / τ_s)``;
the centre c is an EMA of the teacher's batch mean (momentum 0.9), which with sharpening
(τ_t 0.04 < τ_s 0.1) keeps the teacher from collapsing to one prototype or to uniform. The
teacher's views are the first of the student's (multi-crop: the global crops). Equals
lightly 1.6's ``DINOLoss`` (its loss and its centre update).
"""

import torch
from torch import Tensor


def dino_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    center: Tensor,
    *,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
) -> Tensor:
    """(V_s, B, K) student and (V_t, B, K) teacher logits, (K,) centre; V_s + V_t ≥ 3 views
    in all so that some pair differs (pairs of the same view index are left out).

    >>> uniform = torch.zeros(2, 3, 5)
    >>> round(dino_loss(uniform, uniform, torch.zeros(5)).item(), 4)  # log K
    1.6094
    """
    teacher = torch.softmax((teacher_logits.detach() - center) / teacher_temperature, dim=-1)
    student = torch.log_softmax(student_logits / student_temperature, dim=-1)
    pair_losses = -torch.einsum("tbk,sbk->ts", teacher, student)  # (V_t, V_s), summed over b
    same_view = torch.eye(*pair_losses.shape, dtype=torch.bool, device=pair_losses.device)
    pairs = pair_losses.numel() - int(same_view.sum())
    if pairs == 0:
        raise ValueError("DINO needs two views or more: every pair here is of one view")
    return pair_losses.masked_fill(same_view, 0.0).sum() / (pairs * student_logits.shape[1])


def updated_center(center: Tensor, teacher_logits: Tensor, momentum: float = 0.9) -> Tensor:
    """The centre after a batch: ``m · c + (1 − m) ·`` the teacher logits' mean over views and
    items (the caller passes the global batch's, so it is the same on every rank)."""
    return momentum * center + (1 - momentum) * teacher_logits.detach().mean(dim=(0, 1))


__all__ = ["dino_loss", "updated_center"]
