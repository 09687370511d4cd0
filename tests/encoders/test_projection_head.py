import torch
from torch import nn

from embedforge.encoders.projection_head import ProjectionHead


def test_shape_and_layers() -> None:
    head = ProjectionHead(84, 128, 32)
    assert head(torch.randn(6, 84)).shape == (6, 32)
    kinds = [type(layer) for layer in head.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head.layers[0].bias is None  # cancelled by the batch norm anyway


def test_every_parameter_gets_a_finite_gradient() -> None:
    head = ProjectionHead(8, 16, 4)
    head(torch.randn(5, 8)).pow(2).sum().backward()
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
