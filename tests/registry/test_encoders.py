"""Contract tests for every registered image trunk and set encoder (embedforge.registry).

Built from its config's defaults, each gives finite outputs of its declared size, a gradient
reaches every parameter, its state dict round-trips into a fresh build with the same outputs
(eval mode), and a set encoder ignores the order of a set's rows and its padding.
"""

import importlib.util

import pytest
import torch

from embedforge.config import Shapes
from embedforge.registry import ENCODERS, SET_ENCODERS

IMAGE = Shapes(image_size=16, in_channels=3)
SETS = Shapes(in_features=4)
NEEDS_CONFIG = {"timm": {"model_name": "resnet18"}}  # no default model: name one


def _round_trip(build, config, shapes, model: torch.nn.Module, *inputs: torch.Tensor) -> None:
    torch.manual_seed(1)
    again = build(config, shapes)
    again.load_state_dict(model.state_dict())
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(*inputs), model(*inputs))


def _all_parameters_get_gradients(model: torch.nn.Module, output: torch.Tensor) -> None:
    output.pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, f"no gradient for {name}"


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_image_trunk(name: str) -> None:
    if name == "timm" and importlib.util.find_spec("timm") is None:
        pytest.skip("timm is an optional extra (pip install embedforge[timm]); not installed")
    entry = ENCODERS[name]
    config = entry.config(**NEEDS_CONFIG.get(name, {}))
    torch.manual_seed(0)
    trunk = entry.target(config, IMAGE)
    images = torch.rand(5, IMAGE.in_channels, IMAGE.image_size, IMAGE.image_size)
    features = trunk(images)
    assert features.shape == (5, trunk.feature_dim) and torch.isfinite(features).all()
    _all_parameters_get_gradients(trunk, features)
    _round_trip(entry.target, config, IMAGE, trunk, images)


@pytest.mark.parametrize("name", SET_ENCODERS.names())
def test_every_set_encoder(name: str) -> None:
    entry = SET_ENCODERS[name]
    config = entry.config()
    torch.manual_seed(0)
    encoder = entry.target(config, SETS)
    generator = torch.Generator().manual_seed(2)
    values = torch.rand(6, 5, SETS.in_features, generator=generator)
    mask = torch.tensor([[True] * k + [False] * (5 - k) for k in (1, 2, 3, 4, 5, 5)])
    values[..., 0] = values[..., 0] * mask  # weights of padding rows are 0
    embedded = encoder(values, mask)
    assert embedded.shape == (6, config.dim) and torch.isfinite(embedded).all()
    _all_parameters_get_gradients(encoder, embedded)
    _round_trip(entry.target, config, SETS, encoder, values, mask)

    order = torch.tensor([2, 0, 1, 4, 3])  # shuffle the rows of the two full sets
    encoder.eval()
    with torch.no_grad():
        shuffled = encoder(values[4:, order], mask[4:, order])
        torch.testing.assert_close(shuffled, encoder(values[4:], mask[4:]), atol=1e-5, rtol=1e-4)
        garbage = values.clone()
        garbage[~mask] = 7.0  # what padding holds must not matter
        torch.testing.assert_close(encoder(garbage, mask), encoder(values, mask))
