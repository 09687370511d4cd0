"""DINO (Caron et al., 2021, arXiv:2104.14294): a student matches a momentum teacher's
centred, sharpened distribution over K prototypes.

Both networks end in the DINO head: an MLP (GELU, no batch norm), L2 normalisation and a
weight-normalised linear layer onto K prototypes (its weight rows kept at unit norm, the
paper's frozen weight-norm gain). The teacher (encoder + head) is an EMA of the student,
its rate raised from 0.996 to 1 on a cosine (0.99 here by default, for short runs); its
outputs are centred by an EMA of their batch mean (0.9) and sharpened (τ_t 0.04 vs τ_s
0.1). Two global views, no multi-crop. The centre is updated from the gathered global
batch, so it is the same on every rank; only in training, after the loss.
"""

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.dino import dino_loss, updated_center
from embedforge.losses.loss_config import Call
from embedforge.methods.method import MethodConfig, MomentumMethod
from embedforge.registry import METHODS


class DINOHead(nn.Module):
    """(B, in_dim) -> (B, prototypes) logits: MLP -> L2 normalise -> unit-norm prototypes.

    >>> DINOHead(8, 16, 4, 32)(torch.randn(3, 8)).shape
    torch.Size([3, 32])
    """

    def __init__(self, in_dim: int, hidden_dim: int, bottleneck_dim: int, prototypes: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.prototypes = nn.Parameter(torch.randn(prototypes, bottleneck_dim) * 0.02)

    def forward(self, embeddings: Tensor) -> Tensor:
        bottleneck = F.normalize(self.mlp(embeddings), dim=1)  # (B, bottleneck)
        return bottleneck @ F.normalize(self.prototypes, dim=1).T  # (B, prototypes)


class DINO(MomentumMethod):
    """``forward(z1, z2, t1, t2)``: the student's two views against the teacher's other view.

    >>> dino = DINO(nn.Linear(4, 8), 8, hidden_dim=16, bottleneck_dim=4, prototypes=32)
    >>> z, t = torch.randn(6, 8), torch.randn(6, 8)
    >>> dino(z, z, t, t).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        embedding_dim: int,
        *,
        hidden_dim: int = 256,
        bottleneck_dim: int = 64,
        prototypes: int = 1024,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        center_momentum: float = 0.9,
        momentum: float = 0.99,
        final_momentum: float = 1.0,
    ) -> None:
        head = DINOHead(embedding_dim, hidden_dim, bottleneck_dim, prototypes)
        super().__init__(encoder, head, momentum=momentum, final_momentum=final_momentum)
        self.student_temperature, self.teacher_temperature = (
            student_temperature,
            teacher_temperature,
        )
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(prototypes))

    def forward(self, z1: Tensor, z2: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
        n = len(z1)
        student = self.head(torch.cat([z1, z2])).unflatten(0, (2, n))  # (2, B, K)
        teacher = self.target(torch.cat([t1, t2])).unflatten(0, (2, n))  # (2, B, K)
        loss = dino_loss(
            student,
            teacher,
            self.center,
            student_temperature=self.student_temperature,
            teacher_temperature=self.teacher_temperature,
        )
        if self.training:
            with torch.no_grad():
                center = updated_center(self.center, teacher.float(), self.center_momentum)
                self.center.copy_(center)
        return loss


class DINOConfig(MethodConfig):
    """DINO: self-distillation onto a momentum teacher's centred, sharpened prototypes."""

    calls: ClassVar[frozenset[Call]] = frozenset({"momentum_views"})

    name: Literal["dino"] = "dino"
    hidden_dim: int = Field(256, gt=0)
    bottleneck_dim: int = Field(64, gt=0)
    prototypes: int = Field(1024, gt=1)
    student_temperature: float = Field(0.1, gt=0)
    teacher_temperature: float = Field(0.04, gt=0)
    center_momentum: float = Field(0.9, ge=0, lt=1)
    momentum: float = Field(0.99, ge=0, le=1, description="teacher EMA rate at the first step")
    final_momentum: float = Field(1.0, ge=0, le=1)


@METHODS.register(DINOConfig)
def build(config: DINOConfig, shapes: Shapes, encoder: nn.Module) -> DINO:
    return DINO(encoder, shapes.embedding_dim, **config.options())


__all__ = ["DINO", "DINOHead"]
