"""EMD distillation: Euclidean distances between palette embeddings that approximate EMD.

Why: search by example should find the palettes a person calls alike, whose reference is
the exact Earth Mover's Distance between the palettes' colours in CIELAB
(:mod:`embedforge.metrics.emd`); but an exact EMD is a linear programme per pair, far too
slow to rank a large collection. Courty, Flamary & Ducoffe ("Learning Wasserstein
Embeddings", ICLR 2018) train a Siamese network so that the distance between two embeddings
regresses the Wasserstein distance of the two inputs; a search then costs one forward pass
and a nearest-neighbour lookup. The same here, for weighted sets of colours of any size:
the training task pairs palettes and solves their exact EMD as targets
(:mod:`embedforge.train.emd_task`), and this loss regresses the embedding distance on it.

The error of each pair is divided by its target (plus ``offset``), as in Sammon's mapping
(Sammon, "A Nonlinear Mapping for Data Structure Analysis", IEEE Trans. Computers, 1969):
search by example is decided among near palettes, so an error of 2 ΔE between two palettes
5 ΔE apart must cost more than the same error between palettes 80 ΔE apart. ``offset``
keeps identical pairs (target 0) finite. Targets are EMD divided by ``scale`` (ΔE units
per embedding unit), so the embedding's distances stay near 1.

Shapes: ``first``, ``second`` (P, D) embeddings of the pairs' two palettes, ``emd`` (P,) their
exact EMD in ΔE*ab -> scalar.
"""

from typing import ClassVar, Literal

from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.losses.distances import safe_sqrt
from embedforge.losses.loss_config import Call, LossConfig
from embedforge.registry import LOSSES


def emd_distillation_loss(
    first: Tensor, second: Tensor, emd: Tensor, *, scale: float, offset: float
) -> Tensor:
    """``mean((‖first − second‖ − emd/scale)² / (emd/scale + offset))`` over the P pairs."""
    distance = safe_sqrt((first - second).pow(2).sum(dim=1))  # (P,); gradient 0 at 0
    target = emd / scale  # (P,)
    return ((distance - target).pow(2) / (target + offset)).mean()


class EMDDistillationLoss(nn.Module):
    """Regress the embedding distance of palette pairs on their exact EMD (Sammon-weighted).

    >>> import torch
    >>> first, second = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]])
    >>> EMDDistillationLoss(scale=10.0)(first, second, torch.tensor([50.0])).item()  # 5 = 50/10
    0.0
    """

    def __init__(self, *, scale: float = 100.0, offset: float = 0.05) -> None:
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, first: Tensor, second: Tensor, emd: Tensor) -> Tensor:
        if first.shape != second.shape or first.ndim != 2 or emd.shape != first.shape[:1]:
            raise ValueError(
                "first and second must be (P, D) of one shape and emd (P,), got "
                f"{tuple(first.shape)}, {tuple(second.shape)}, {tuple(emd.shape)}"
            )
        return emd_distillation_loss(first, second, emd, scale=self.scale, offset=self.offset)


class EMDDistillationConfig(LossConfig):
    """EMD distillation for palettes: batches of near groups (by colour statistics), every
    pair in a group and one random pair per palette, the pairs' exact EMD as targets."""

    calls: ClassVar[frozenset[Call]] = frozenset({"palette_pairs"})
    name: Literal["emd_distillation"] = "emd_distillation"
    scale: float = Field(100.0, gt=0, description="ΔE*ab per unit of embedding distance")
    offset: float = Field(
        0.05, gt=0, description="added to each scaled target before dividing its error by it"
    )
    near: int = Field(
        32,
        ge=1,
        description="candidates for a palette's near group: its nearest training palettes by "
        "ratio-weighted CIELAB mean and standard deviation",
    )
    group: int = Field(
        8, ge=2, description="palettes per near group (a seed and group - 1 of its candidates)"
    )

    def options(self) -> dict[str, float]:
        """The loss's own arguments (``near`` and ``group`` are the batches', read by the
        task)."""
        return self.model_dump(exclude={"name", "near", "group"})


@LOSSES.register(EMDDistillationConfig)
def build(config: EMDDistillationConfig, shapes: Shapes) -> EMDDistillationLoss:
    return EMDDistillationLoss(**config.options())


__all__ = ["EMDDistillationLoss", "emd_distillation_loss"]
