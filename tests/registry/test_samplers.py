"""Contract tests for every registered batch sampler (embedforge.registry.SAMPLERS).

Each draws batches of existing indices, of its declared size, the same for the same (seed,
epoch) and different for another epoch. A sampler whose config has required keys needs an
example below; a new one without it fails here instead of going untested.
"""

import pytest
import torch

from embedforge.registry import SAMPLERS

EXAMPLES = {"pk": {"p": 3, "k": 2}}
LABELS = torch.arange(40) % 5


def test_every_sampler_has_an_example() -> None:
    assert set(SAMPLERS.names()) <= set(EXAMPLES)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_draws_seeded_batches_of_real_items(name: str) -> None:
    entry = SAMPLERS[name]
    config = entry.config(**EXAMPLES[name])
    sampler = entry.target(config, LABELS, 0)
    sampler.set_epoch(0)
    first = [list(batch) for batch in sampler.batches()]
    again = entry.target(config, LABELS, 0)
    again.set_epoch(0)
    assert [list(batch) for batch in again.batches()] == first
    assert len(first) == sampler.num_batches and all(len(b) == sampler.batch_size for b in first)
    assert all(0 <= i < len(LABELS) for batch in first for i in batch)
    sampler.set_epoch(1)
    assert [list(batch) for batch in sampler.batches()] != first
