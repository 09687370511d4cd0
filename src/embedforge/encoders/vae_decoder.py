"""The VAE's decoder: the small CNN run backwards, from a latent code to pixel logits.

It mirrors :class:`~embedforge.encoders.small_cnn.SmallCNN`: linear layers up to its
16-channel feature map, then each of its (convolution, 2×2 pooling) blocks undone by one
transposed convolution of stride 2. Decoding then costs less than encoding (the VAE
baseline trains for 300 epochs on a CPU); upsampling then convolving at full resolution
measured six times slower.
"""

from torch import Tensor, nn

from embedforge.encoders.small_cnn import conv_geometry


def _unpool_conv(in_channels: int, out_channels: int, kernel: int, padding: int, side: int):
    """Undo ``Conv2d(kernel, padding)`` then ``AvgPool2d(2)`` whose conv output had ``side``.

    Stride 2 with a kernel one larger gives back ``side + kernel - 1 - 2 * padding``
    exactly; ``output_padding`` restores the row an odd ``side`` lost to the pooling.
    """
    return nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel + 1,
        stride=2,
        padding=padding,
        output_padding=side % 2,
    )


class VAEDecoder(nn.Module):
    """(B, latent_dim) -> (B, channels, image_size, image_size) logits (no sigmoid).

    >>> import torch
    >>> VAEDecoder(10, image_size=64, channels=1)(torch.randn(2, 10)).shape
    torch.Size([2, 1, 64, 64])
    """

    def __init__(self, latent_dim: int, *, image_size: int, channels: int) -> None:
        super().__init__()
        kernel, padding = conv_geometry(image_size)
        first = image_size - kernel + 1 + 2 * padding  # side after SmallCNN's first conv
        second = first // 2 - kernel + 1 + 2 * padding  # and after its second
        grid = second // 2  # the side of its 16-channel feature map
        self.layers = nn.Sequential(
            nn.Linear(latent_dim, 120),
            nn.ReLU(),
            nn.Linear(120, 16 * grid * grid),
            nn.ReLU(),
            nn.Unflatten(1, (16, grid, grid)),
            _unpool_conv(16, 6, kernel, padding, second),  # (B, 6, first // 2, first // 2)
            nn.ReLU(),
            _unpool_conv(6, channels, kernel, padding, first),  # (B, C, image_size, image_size)
        )

    def forward(self, latent: Tensor) -> Tensor:
        return self.layers(latent)
