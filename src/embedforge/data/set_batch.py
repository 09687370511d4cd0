"""The padded set batch: the one record every set source, view and set encoder exchanges.

Sets have a varying number of rows (a palette has 3 colours, another 20), but tensors are
rectangular, so each set is padded to the longest one and a boolean mask says which rows
are real. Padding rows are zeros with mask ``False``; a set encoder must ignore them, which
is what keeps it exactly permutation invariant and independent of the padding length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class SetBatch:
    """``n`` sets of at most ``m`` rows with ``f`` features each, padded, with a mask.

    Attributes:
        values: ``(n, m, f)`` float32; row ``j`` of set ``i`` is ``values[i, j]``, zeros where
            ``mask[i, j]`` is False.
        mask: ``(n, m)`` bool; True for real rows.

    Index it with an index tensor, array, list or slice to pick sets (always a ``SetBatch``).

    >>> batch = SetBatch(torch.ones(3, 2, 4), torch.tensor([[True, True], [True, False],
    ...                                                      [True, True]]))
    >>> len(batch), batch.max_rows, batch.num_features
    (3, 2, 4)
    >>> batch[torch.tensor([1])].mask.tolist()
    [[True, False]]
    >>> batch.sizes.tolist()
    [2, 1, 2]
    """

    values: Tensor  # (n, m, f)
    mask: Tensor  # (n, m)

    def __post_init__(self) -> None:
        if self.values.dim() != 3:
            raise ValueError(f"values must be (n, m, f), got shape {tuple(self.values.shape)}")
        if self.mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool, got {self.mask.dtype}")
        if self.mask.shape != self.values.shape[:2]:
            raise ValueError(
                f"mask shape {tuple(self.mask.shape)} does not match values' (n, m) = "
                f"{tuple(self.values.shape[:2])}"
            )

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def max_rows(self) -> int:
        """``m``: the padded number of rows per set."""
        return self.values.shape[1]

    @property
    def num_features(self) -> int:
        """``f``: the number of features per row."""
        return self.values.shape[2]

    @property
    def sizes(self) -> Tensor:
        """``(n,)`` int64: the number of real rows of each set."""
        return self.mask.sum(dim=1)

    def to(self, device: torch.device | str) -> SetBatch:
        """The same batch on ``device`` (values and mask move together)."""
        return SetBatch(self.values.to(device), self.mask.to(device))

    def __getitem__(self, index: Tensor | np.ndarray | Sequence[int] | slice) -> SetBatch:
        """The sets picked by ``index`` (int64 indices, a bool mask over sets, or a slice)."""
        if isinstance(index, int | np.integer):
            raise TypeError("index a SetBatch with a tensor, list or slice, e.g. batch[[i]]")
        if not isinstance(index, slice | Tensor):
            array = np.asarray(index)
            if array.size == 0:
                array = array.astype(np.int64)  # [] would otherwise be float
            index = torch.as_tensor(array, device=self.values.device)
        return SetBatch(self.values[index], self.mask[index])
