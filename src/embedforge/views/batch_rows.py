"""Which rows of a global batch a call's images are, so that views are drawn for the whole of it.

Under torchrun every rank holds a contiguous slice of each global batch and the same
generator. If each rank drew its views' parameters for its own slice, rank r's j-th image
would get rank 0's j-th draw, and N processes would not see the views one process would.
Instead every rank draws the parameters of the *global* batch (a few numbers per image, cheap)
and keeps its own rows: each image gets the draw one process gives it, and the generator
advances alike on every rank.
"""

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class BatchRows:
    """Rows ``start:stop`` of a global batch of ``total`` items.

    >>> rows = BatchRows(2, 4, total=6)
    >>> whole = torch.rand(6, generator=torch.Generator().manual_seed(0))
    >>> rows.rand(torch.Generator().manual_seed(0)).equal(whole[2:4])
    True
    """

    start: int
    stop: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.stop <= self.total:
            raise ValueError(
                f"rows {self.start}:{self.stop} are not within a batch of {self.total}"
            )

    @classmethod
    def whole(cls, count: int) -> "BatchRows":
        """All ``count`` rows: the batch is the global batch (one process)."""
        return cls(0, count, count)

    @property
    def count(self) -> int:
        """How many rows this is (the local batch size)."""
        return self.stop - self.start

    def rand(self, generator: torch.Generator) -> Tensor:
        """``(count,)`` uniform draws: the global batch's ``(total,)``, these rows kept.

        Drawn on the generator's device; on one process exactly ``torch.rand(count)``.
        """
        draws = torch.rand(self.total, generator=generator, device=generator.device)
        return draws[self.start : self.stop]
