"""Random views of weighted sets, for self-supervised learning on palettes.

Two views of one palette should look like "the same palette seen slightly
differently": rows in another order, shares re-drawn around the true ones, a
little colour noise, and some of the lightest rows dropped. Everything is
batched on tensors (no per-set Python) and drawn from a ``torch.Generator``,
so a seeded run makes the same views on the CPU. Column 0 of ``values`` holds
the row weights (as :func:`embedforge.data.read_palettes` lays them out); the
other columns are features.
"""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedforge.config import Section
from embedforge.data.set_batch import SetBatch
from embedforge.registry import SET_VIEWS


def permute_rows(batch: SetBatch, generator: torch.Generator) -> SetBatch:
    """Each set's real rows in a new random order, padding kept last (so it can be trimmed)."""
    keys = torch.rand(batch.mask.shape, generator=generator, device=batch.mask.device)
    keys = keys.masked_fill(~batch.mask, 2.0)  # padding sorts after every real row
    order = keys.argsort(dim=1)  # (n, m)
    values = batch.values.gather(1, order.unsqueeze(-1).expand_as(batch.values))
    return SetBatch(values, batch.mask.gather(1, order))


def _standard_gamma(concentration: Tensor, generator: torch.Generator) -> Tensor:
    """Gamma(concentration, 1) samples drawn reproducibly from ``generator``.

    torch's gamma sampler reads only the global RNG, so it runs inside a forked
    RNG state seeded from ``generator``; the global state is left untouched.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    devices = [concentration.device] if concentration.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return torch._standard_gamma(concentration)


def dirichlet_weights(
    batch: SetBatch, concentration: float, generator: torch.Generator
) -> SetBatch:
    """Weights re-drawn from Dirichlet(concentration · w): mean w, spread shrinking as it grows."""
    weights = batch.values[..., 0]
    alpha = (concentration * weights).clamp_min(1e-3)
    draws = _standard_gamma(alpha, generator) * batch.mask  # (n, m)
    draws = torch.where(draws.sum(dim=1, keepdim=True) > 0, draws, weights)  # underflow guard
    return _with_weights(batch, draws)


def jitter_features(batch: SetBatch, sigma: float, generator: torch.Generator) -> SetBatch:
    """Gaussian noise of scale ``sigma`` on every feature but the weight, padding kept at 0."""
    noise = torch.randn(batch.values.shape, generator=generator, device=batch.values.device)
    noise[..., 0] = 0.0
    noise = noise * sigma * batch.mask.unsqueeze(-1)
    return SetBatch(batch.values + noise, batch.mask)


def drop_light_rows(
    batch: SetBatch, *, below: float, probability: float, generator: torch.Generator
) -> SetBatch:
    """Drop rows lighter than ``below`` with ``probability`` each; the heaviest row always stays."""
    weights = batch.values[..., 0]
    coin = torch.rand(weights.shape, generator=generator, device=weights.device)
    heaviest = torch.zeros_like(batch.mask).scatter_(1, weights.argmax(dim=1, keepdim=True), True)
    drop = (weights < below) & (coin < probability) & ~heaviest
    mask = batch.mask & ~drop
    values = batch.values * mask.unsqueeze(-1)
    return _with_weights(SetBatch(values, mask), values[..., 0])


def _with_weights(batch: SetBatch, weights: Tensor) -> SetBatch:
    """``batch`` with its weight column replaced by ``weights`` renormalised per set."""
    total = weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
    values = batch.values.clone()
    values[..., 0] = weights / total
    return SetBatch(values, batch.mask)


class SetViews(Section):
    """Palette views: rows permuted, shares Dirichlet-jittered, colour noise, light rows dropped.

    Each step is skipped when its strength is 0. The same defaults in a recipe (``set_views:
    {}``, or the section left out) and in Python.

    >>> views = SetViews()
    >>> batch = SetBatch(torch.rand(3, 4, 4), torch.ones(3, 4, dtype=torch.bool))
    >>> view = views(batch, torch.Generator().manual_seed(0))
    >>> view.values.shape, torch.allclose(view.values[..., 0].sum(1), torch.ones(3))
    (torch.Size([3, 4, 4]), True)
    """

    preset: Literal["palette"] = "palette"
    permute: bool = True
    weight_concentration: float = Field(
        50.0, ge=0, description="Dirichlet concentration; 0 turns weight jitter off"
    )
    feature_sigma: float = Field(0.02, ge=0, description="colour noise (features about [0, 1])")
    drop_below: float = Field(0.05, ge=0, description="rows lighter than this may be dropped")
    drop_probability: float = Field(0.3, ge=0, le=1)

    def __call__(self, batch: SetBatch, generator: torch.Generator) -> SetBatch:
        if self.permute:
            batch = permute_rows(batch, generator)
        if self.weight_concentration > 0:
            batch = dirichlet_weights(batch, self.weight_concentration, generator)
        if self.feature_sigma > 0:
            batch = jitter_features(batch, self.feature_sigma, generator)
        if self.drop_probability > 0 and self.drop_below > 0:
            batch = drop_light_rows(
                batch, below=self.drop_below, probability=self.drop_probability, generator=generator
            )
        return batch


SET_VIEWS.register(SetViews)(SetViews)
