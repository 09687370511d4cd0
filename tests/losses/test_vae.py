import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from embedforge.data.dsprites import dsprites
from embedforge.encoders.embedder import Embedder
from embedforge.encoders.small_cnn import SmallCNN
from embedforge.losses.vae import VAELoss, bernoulli_nll, gaussian_kl, negative_elbo


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_kl_by_hand() -> None:
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - ln s^2) / 2 per latent, summed
    mu = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0], [0.0, math.log(4.0)]], dtype=torch.float64)
    expected = [0.0, 0.5 * (1.0 + 0.0) + 0.5 * (4.0 + 4.0 - 1.0 - math.log(4.0))]
    assert gaussian_kl(mu, logvar).tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_matches_torch_distributions(dtype) -> None:
    g = seeded(1)
    mu, logvar = torch.randn(7, 5, generator=g, dtype=dtype), torch.randn(7, 5, generator=g)
    logvar = logvar.to(dtype)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(dim=1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)


def test_bernoulli_nll_is_the_summed_log_likelihood() -> None:
    g = seeded(2)
    logits = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64)
    images = (torch.rand(3, 2, 4, 4, generator=g) > 0.5).double()
    p = torch.sigmoid(logits)
    expected = -(images * p.log() + (1 - images) * (1 - p).log()).flatten(1).sum(dim=1)
    torch.testing.assert_close(bernoulli_nll(logits, images), expected)


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_negative_elbo_is_reconstruction_plus_beta_kl_averaged(beta: float) -> None:
    g = seeded(3)
    logits, images = torch.randn(4, 1, 5, 5, generator=g), torch.rand(4, 1, 5, 5, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    per_item = bernoulli_nll(logits, images) + beta * gaussian_kl(mu, logvar)  # (4,)
    value = negative_elbo(logits, images, mu, logvar, beta=beta)
    torch.testing.assert_close(value, per_item.mean())


def test_forward_is_the_elbo_of_the_reparameterised_sample() -> None:
    torch.manual_seed(0)
    loss_fn = VAELoss(6, 3, image_size=8, channels=1, beta=2.0)
    g = seeded(4)
    z, images = torch.randn(5, 6, generator=g), (torch.rand(5, 1, 8, 8, generator=g) > 0.5)
    images = images.float()
    mu, logvar = loss_fn.mu(z), loss_fn.logvar(z)
    noise = torch.randn(5, 3, generator=seeded(9))
    logits = loss_fn.decoder(mu + (0.5 * logvar).exp() * noise)
    expected = negative_elbo(logits, images, mu, logvar, beta=2.0)
    torch.testing.assert_close(loss_fn(z, images, seeded(9)), expected)


def test_the_generator_makes_it_reproducible() -> None:
    torch.manual_seed(0)
    loss_fn = VAELoss(6, 3, image_size=8, channels=1)
    z, images = torch.randn(5, 6), torch.rand(5, 1, 8, 8)
    assert loss_fn(z, images, seeded(1)).item() == loss_fn(z, images, seeded(1)).item()
    assert loss_fn(z, images, seeded(1)).item() != loss_fn(z, images, seeded(2)).item()


def test_gradcheck() -> None:
    torch.manual_seed(0)
    loss_fn = VAELoss(4, 2, image_size=8, channels=1).double()
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    images = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, images, seeded(5)), (z,))


def test_every_parameter_gets_a_finite_gradient() -> None:
    loss_fn = VAELoss(84, 10, image_size=64, channels=3)
    z, images = torch.randn(4, 84), torch.rand(4, 3, 64, 64)
    loss_fn(z, images, seeded()).backward()
    for name, parameter in loss_fn.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_loss_decreases_when_training_on_dsprites() -> None:
    torch.manual_seed(0)
    images = dsprites(64, seed=0).images  # (64, 1, 64, 64)
    model = nn.Sequential(SmallCNN(image_size=64), Embedder(84, 84))
    loss_fn = VAELoss(84, 10, image_size=64, channels=1)
    optimizer = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=1e-3)
    losses = []
    for step in range(15):
        loss = loss_fn(model(images), images, seeded(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(value) for value in losses)
    assert losses[-1] < 0.9 * losses[0]  # 0.85 on the CPU, falling faster each step


def test_rejects_a_negative_beta() -> None:
    with pytest.raises(ValueError, match="beta"):
        VAELoss(4, 2, image_size=8, channels=1, beta=-1.0)


def test_runs_on_device(device) -> None:
    torch.manual_seed(0)
    loss_fn = VAELoss(6, 3, image_size=8, channels=1).to(device)
    z, images = torch.randn(5, 6, device=device), torch.rand(5, 1, 8, 8, device=device)
    value = loss_fn(z, images, torch.Generator(device).manual_seed(0))
    assert value.device.type == device.type and torch.isfinite(value)


def test_reconstruction_is_bce_with_logits() -> None:
    logits, images = torch.randn(2, 1, 3, 3), torch.rand(2, 1, 3, 3)
    expected = F.binary_cross_entropy_with_logits(logits, images, reduction="sum") / 2
    torch.testing.assert_close(bernoulli_nll(logits, images).mean(), expected)


def test_without_latent_dim_the_embedding_is_the_posterior_mean() -> None:
    """The tutorial's VAE: the probed features are the posterior mean, KL acts on them."""
    torch.manual_seed(0)
    loss_fn = VAELoss(6, None, image_size=8, channels=1)
    g = seeded(4)
    z, images = torch.randn(5, 6, generator=g), (torch.rand(5, 1, 8, 8, generator=g) > 0.5)
    images = images.float()
    logvar = loss_fn.logvar(z)
    noise = torch.randn(5, 6, generator=seeded(9))
    logits = loss_fn.decoder(z + (0.5 * logvar).exp() * noise)
    expected = negative_elbo(logits, images, z, logvar)
    torch.testing.assert_close(loss_fn(z, images, seeded(9)), expected)


def test_without_latent_dim_gradcheck() -> None:
    torch.manual_seed(0)
    loss_fn = VAELoss(4, None, image_size=8, channels=1).double()
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    images = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, images, seeded(5)), (z,))
