"""Contract tests for every registered loss (embedforge.registry.LOSSES).

A loss registered next to its code is tested here the day it is registered: built from its
config's defaults, called in each of the shapes its config declares (``calls``), it gives a
finite scalar, a gradient reaches the embeddings and every parameter the loss holds, and its
state dict round-trips into a fresh build with the same value.
"""

import pytest
import torch

from embedforge.config import Shapes
from embedforge.registry import LOSSES

SHAPES = Shapes(embedding_dim=8, num_classes=3, image_size=8, in_channels=1)
BATCH = 12


def _inputs(call: str, embeddings: torch.Tensor) -> tuple:
    generator = torch.Generator().manual_seed(1)
    if call == "labels":
        return (embeddings, torch.arange(BATCH) % SHAPES.num_classes)
    if call == "two_views":
        return (embeddings, embeddings.roll(1, dims=1) + 0.1)
    if call == "anchor_positive_negative":
        return (embeddings, embeddings + 0.1, embeddings.roll(1, dims=0))
    if call == "palette_pairs":  # pairs' second palettes and their EMD in ΔE*ab
        return (embeddings, embeddings.roll(1, dims=0), torch.rand(BATCH, generator=generator) * 50)
    size = (BATCH, SHAPES.in_channels, SHAPES.image_size, SHAPES.image_size)
    return (embeddings, torch.rand(size, generator=generator), generator)


CASES = [
    pytest.param(entry.name, call, id=f"{entry.name}-{call}")
    for entry in LOSSES.entries()
    for call in sorted(entry.config.calls)
]


@pytest.mark.parametrize(("name", "call"), CASES)
def test_every_loss_gives_a_finite_value_and_gradients_everywhere(name: str, call: str) -> None:
    entry = LOSSES[name]
    torch.manual_seed(0)
    loss_fn = entry.target(entry.config(), SHAPES)
    embeddings = torch.randn(BATCH, SHAPES.embedding_dim, requires_grad=True)
    value = loss_fn(*_inputs(call, embeddings))
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    for parameter_name, parameter in loss_fn.named_parameters():
        assert parameter.grad is not None, f"{name}: no gradient for {parameter_name}"

    torch.manual_seed(1)  # another initialisation, then the saved state (eval mode: batch
    again = entry.target(entry.config(), SHAPES)  # norms use the running statistics it holds)
    again.load_state_dict(loss_fn.state_dict())
    loss_fn.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            again(*_inputs(call, embeddings)), loss_fn(*_inputs(call, embeddings))
        )


def test_every_loss_has_a_summary_and_a_default_config() -> None:
    for entry in LOSSES.entries():
        assert entry.summary, f"{entry.name}: the config needs a one-line docstring"
        assert entry.config().name == entry.name  # buildable from its defaults
        assert entry.config.calls, f"{entry.name}: say how the loss is called"
