"""Non-finite numbers stop the work: embeddings holding NaN or inf are refused by name.

A model that diverged (a learning rate too high, float16 overflow) embeds some items as NaN;
ranking by distance then still returns neighbours (NaN compares false), and metrics come
out plausible (P@1 0.34 on NaN vectors was seen). Every metric, probe and index therefore
checks its embeddings once, where they come in.
"""

import numpy as np
import torch
from torch import Tensor

from embedforge.errors import UserError


def require_finite(values: Tensor | np.ndarray, name: str) -> None:
    """Raise a UserError naming ``name`` and the first bad row when ``values`` is not finite.

    >>> require_finite(torch.ones(2, 3), "query")
    >>> require_finite(np.array([[0.0, 1.0], [np.nan, 2.0]]), "query")
    Traceback (most recent call last):
    ...
    embedforge.errors.UserError: query: 1 of 2 rows hold NaN or infinite values (first: row 1); \
expected finite embeddings (a model that diverged: retrain with a lower learning rate, or \
without mixed precision)
    """
    tensor = torch.as_tensor(values)
    if not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()):
        return
    bad = ~torch.isfinite(tensor).reshape(len(tensor), -1).all(dim=1)  # (n,)
    raise UserError(
        f"{name}: {int(bad.sum())} of {len(tensor)} rows hold NaN or infinite values (first: "
        f"row {int(bad.nonzero()[0])}); expected finite embeddings (a model that diverged: "
        "retrain with a lower learning rate, or without mixed precision)"
    )
