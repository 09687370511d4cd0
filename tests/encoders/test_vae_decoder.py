import pytest
import torch
from torch import nn

from embedforge.encoders.small_cnn import SmallCNN
from embedforge.encoders.vae_decoder import VAEDecoder


@pytest.mark.parametrize("image_size", [8, 9, 16, 28, 31, 32, 33, 63, 64, 65, 96])
@pytest.mark.parametrize("channels", [1, 3])
def test_gives_back_the_image_shape(image_size: int, channels: int) -> None:
    decoder = VAEDecoder(5, image_size=image_size, channels=channels)
    assert decoder(torch.randn(2, 5)).shape == (2, channels, image_size, image_size)


@pytest.mark.parametrize("image_size", [8, 64])
def test_mirrors_the_small_cnn(image_size: int) -> None:
    """Same 16-channel grid, and each conv undone by a stride-2 kernel one larger."""
    encoder = SmallCNN(image_size=image_size)
    decoder = VAEDecoder(10, image_size=image_size, channels=1)
    grid = encoder.features[:-1](torch.zeros(1, 1, image_size, image_size)).shape[1:]
    assert decoder.layers[:5](torch.zeros(1, 10)).shape[1:] == grid
    convs = [m for m in encoder.features if isinstance(m, nn.Conv2d)]
    transposed = [m for m in decoder.layers if isinstance(m, nn.ConvTranspose2d)]
    for conv, deconv in zip(convs, reversed(transposed), strict=True):
        assert deconv.kernel_size[0] == conv.kernel_size[0] + 1 and deconv.stride == (2, 2)
        assert deconv.padding == conv.padding
        assert (deconv.in_channels, deconv.out_channels) == (conv.out_channels, conv.in_channels)


def test_costs_less_than_the_encoder() -> None:
    """The VAE trains 300 epochs on a CPU: multiply-adds per image, counted from the shapes."""
    image_size = 64

    def multiply_adds(module: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
        total = 0
        for layer in module:
            y = layer(x)
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                pixels = (y if isinstance(layer, nn.Conv2d) else x)[0, 0].numel()
                total += pixels * layer.weight.numel()
            elif isinstance(layer, nn.Linear):
                total += layer.weight.numel()
            x = y
        return total, x

    with torch.no_grad():
        encoder = SmallCNN(image_size=image_size).eval()
        encoding, _ = multiply_adds([*encoder.features, *encoder.head], torch.zeros(1, 1, 64, 64))
        decoder = VAEDecoder(10, image_size=image_size, channels=1)
        decoding, _ = multiply_adds(decoder.layers, torch.zeros(1, 10))
    assert decoding < encoding
