"""The variational autoencoder's loss: the negative ELBO of a Bernoulli image model.

Kingma and Welling, "Auto-Encoding Variational Bayes", 2013, arXiv:1312.6114; the weight
``beta`` on the KL term is Higgins et al.'s beta-VAE (ICLR 2017). It is the generative
baseline of the self-supervised comparison: the encoder learns to keep what the decoder
needs to redraw the image, with no labels and no views.
"""

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Shapes
from embedforge.encoders.vae_decoder import VAEDecoder
from embedforge.losses.loss_config import Call, LossConfig
from embedforge.registry import LOSSES


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) of each row, in closed form: (B, L) -> (B,)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_nll(logits: Tensor, images: Tensor) -> Tensor:
    """-log p(images | logits), pixels independent Bernoulli, summed: (B, C, H, W) -> (B,).

    ``images`` are in [0, 1] (dSprites' are binary; grey levels act as soft targets).
    """
    nll = F.binary_cross_entropy_with_logits(logits, images, reduction="none")  # (B, C, H, W)
    return nll.flatten(1).sum(dim=1)


def negative_elbo(
    logits: Tensor, images: Tensor, mu: Tensor, logvar: Tensor, *, beta: float = 1.0
) -> Tensor:
    """Reconstruction + beta * KL, each summed over its pixels or latents, mean over the batch."""
    return (bernoulli_nll(logits, images) + beta * gaussian_kl(mu, logvar)).mean()


class VAELoss(nn.Module):
    """Negative ELBO of a VAE whose encoder is the model (Kingma and Welling, 2013).

    Why a loss: the model stays trunk + embedder, so ``model(x)`` is the representation
    that is embedded, exported and probed; the VAE's parts that only training needs (the
    linear heads to the posterior's ``mu`` and ``logvar`` and the
    :class:`~embedforge.encoders.vae_decoder.VAEDecoder`) live here, and the trainer
    optimises and checkpoints them as loss parameters.

    ``latent_dim=None``: the embedding itself is the posterior's mean (its log-variance comes
    from a Linear -> ReLU -> batch-norm head on it), so the KL term shapes the very features
    that are probed, as in the dSprites tutorial's VAE; otherwise linear heads map the
    embedding to a ``latent_dim``-d posterior, and the probed features sit one layer before it.

    ``forward(embeddings, images, generator)``: embeddings (B, embedding_size) of
    ``images`` (B, channels, image_size, image_size) in [0, 1] -> scalar. The
    reparameterisation noise comes from ``generator`` (the global RNG when None), so a
    seeded run is reproducible and a resumed one continues as the whole run would.

    >>> import torch
    >>> loss_fn = VAELoss(84, 10, image_size=64, channels=1)
    >>> images = (torch.rand(4, 1, 64, 64) > 0.5).float()
    >>> loss_fn(torch.randn(4, 84), images, torch.Generator().manual_seed(0)).shape
    torch.Size([])
    """

    def __init__(
        self,
        embedding_size: int,
        latent_dim: int | None,
        *,
        image_size: int,
        channels: int,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.mu: nn.Module
        self.logvar: nn.Module
        if latent_dim is None:
            latent_dim = embedding_size
            self.mu = nn.Identity()
            self.logvar = nn.Sequential(
                nn.Linear(embedding_size, latent_dim),
                nn.ReLU(),
                nn.BatchNorm1d(latent_dim, affine=False),
            )
        else:
            self.mu = nn.Linear(embedding_size, latent_dim)
            self.logvar = nn.Linear(embedding_size, latent_dim)
        self.decoder = VAEDecoder(latent_dim, image_size=image_size, channels=channels)
        self.beta = beta

    def forward(
        self, embeddings: Tensor, images: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        mu, logvar = self.mu(embeddings), self.logvar(embeddings)  # (B, L) each
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        latent = mu + (0.5 * logvar).exp() * noise  # (B, L), differentiable in mu and logvar
        return negative_elbo(self.decoder(latent), images, mu, logvar, beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class VAEConfig(LossConfig):
    """The negative ELBO of a VAE whose encoder is the model (the generative baseline)."""

    calls: ClassVar[frozenset[Call]] = frozenset({"reconstruction"})
    name: Literal["vae"] = "vae"
    latent_dim: int | None = Field(
        10, gt=0, description="null: the embedding is the posterior mean (the tutorial's VAE)"
    )
    beta: float = Field(1.0, ge=0, description="weight of the KL term (beta-VAE)")


@LOSSES.register(VAEConfig)
def build(config: VAEConfig, shapes: Shapes) -> VAELoss:
    if not shapes.image_size or not shapes.in_channels:
        raise ValueError("loss 'vae' needs the image_size and in_channels of its images")
    return VAELoss(
        shapes.embedding_dim,
        image_size=shapes.image_size,
        channels=shapes.in_channels,
        **config.options(),
    )


__all__ = ["VAELoss", "bernoulli_nll", "gaussian_kl", "negative_elbo"]
