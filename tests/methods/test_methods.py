"""Contract tests over every registered self-supervised method (embedforge.registry.METHODS):
shapes, finite values, a gradient on every trainable parameter and none on the target, the
target's momentum update, and a save/load round trip that continues identically."""

import copy

import pytest
import torch
from torch import nn

from embedforge.config import Shapes
from embedforge.methods import Method, MomentumMethod
from embedforge.methods.momentum import cosine_momentum, ema_update
from embedforge.registry import METHODS

DIM = 8
SMALL = {
    "simclr": {"hidden_dim": 16, "projection_dim": 8},
    "simsiam": {"hidden_dim": 16, "projection_dim": 16},
    "barlow_twins": {"hidden_dim": 16, "projection_dim": 16},
    "vicreg": {"hidden_dim": 16, "projection_dim": 16},
    "byol": {"hidden_dim": 16, "projection_dim": 8},
    "moco": {"hidden_dim": 16, "projection_dim": 8, "queue_size": 20},
    "dino": {"hidden_dim": 16, "bottleneck_dim": 8, "prototypes": 32},
}


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, DIM))


def _method(name: str, encoder: nn.Module) -> Method:
    entry = METHODS[name]
    config = entry.config(name=name, **SMALL.get(name, {}))
    return entry.target(config, Shapes(embedding_dim=DIM), encoder)


def _loss(method: Method, encoder: nn.Module, x1: torch.Tensor, x2: torch.Tensor):
    z1, z2 = encoder(x1), encoder(x2)
    if isinstance(method, MomentumMethod):
        with torch.no_grad():
            t1, t2 = method.target_encoder(x1), method.target_encoder(x2)
        return method(z1, z2, t1, t2)
    return method(z1, z2)


def test_every_method_is_listed_and_small_settings_cover_them() -> None:
    assert set(METHODS.names()) == set(SMALL)


@pytest.mark.parametrize("name", METHODS.names())
def test_loss_is_a_finite_scalar_with_a_gradient_on_every_trainable_parameter(
    name: str,
) -> None:
    encoder = _encoder()
    method = _method(name, encoder)
    x1, x2 = torch.randn(10, 5), torch.randn(10, 5)
    for _ in range(2):  # MoCo's second call has negatives in its queue
        loss = _loss(method, encoder, x1, x2)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    for module in (encoder, method):
        for parameter_name, parameter in module.named_parameters():
            if parameter.requires_grad:
                assert parameter.grad is not None, parameter_name
                assert torch.isfinite(parameter.grad).all(), parameter_name
    if isinstance(method, MomentumMethod):
        targets = [*method.target_encoder.parameters(), *method.target_head.parameters()]
        assert all(not p.requires_grad and p.grad is None for p in targets)


@pytest.mark.parametrize("name", [n for n in METHODS.names() if n in ("byol", "moco", "dino")])
def test_momentum_target_follows_the_online_network_on_its_schedule(name: str) -> None:
    encoder = _encoder()
    method = _method(name, encoder)
    assert isinstance(method, MomentumMethod)
    method.total_steps = 10
    before = [p.clone() for p in method.target_encoder.parameters()]
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)  # as if the optimizer had stepped
    rate = method.momentum()
    method.after_optimizer_step()
    for old, new, online in zip(
        before, method.target_encoder.parameters(), encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(new, rate * old + (1 - rate) * online)
    assert int(method.step) == 1
    assert method.momentum() == cosine_momentum(1, 10, method.base_momentum, method.final_momentum)


def test_ema_update_is_the_formula() -> None:
    target, online = nn.Linear(3, 2), nn.Linear(3, 2)
    expected = [
        0.9 * t.detach() + 0.1 * o.detach()
        for t, o in zip(target.parameters(), online.parameters(), strict=True)
    ]
    ema_update(target, online, 0.9)
    for got, want in zip(target.parameters(), expected, strict=True):
        torch.testing.assert_close(got.detach(), want)


@pytest.mark.parametrize("name", METHODS.names())
def test_state_dict_round_trip_continues_identically(name: str) -> None:
    """Two training steps, save, a third: a fresh method loaded from the save gives the same
    third loss (target, queue, centre and step counter are all in the state dict)."""
    torch.manual_seed(1)
    batches = [(torch.randn(10, 5), torch.randn(10, 5)) for _ in range(3)]
    encoder = _encoder()
    method = _method(name, encoder)
    optimizer = torch.optim.SGD([*encoder.parameters(), *method.parameters()], lr=0.1)

    def step(method: Method, encoder: nn.Module, optimizer, batch) -> float:
        optimizer.zero_grad()
        loss = _loss(method, encoder, *batch)
        loss.backward()
        optimizer.step()
        method.after_optimizer_step()
        return loss.item()

    for batch in batches[:2]:
        step(method, encoder, optimizer, batch)
    saved = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(method.state_dict()))
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    third = step(method, encoder, optimizer, batches[2])

    fresh_encoder = _encoder()
    fresh = _method(name, fresh_encoder)
    fresh_encoder.load_state_dict(saved[0])
    fresh.load_state_dict(saved[1])
    fresh_optimizer = torch.optim.SGD([*fresh_encoder.parameters(), *fresh.parameters()], lr=0.1)
    fresh_optimizer.load_state_dict(saved_optimizer)
    assert step(fresh, fresh_encoder, fresh_optimizer, batches[2]) == third


def test_eval_mode_leaves_the_queue_and_centre_alone() -> None:
    for name, buffer in (("moco", "queue"), ("dino", "center")):
        encoder = _encoder()
        method = _method(name, encoder)
        _loss(method, encoder, torch.randn(10, 5), torch.randn(10, 5))  # training: updated
        method.eval()
        before = getattr(method, buffer).clone()
        _loss(method, encoder, torch.randn(10, 5), torch.randn(10, 5))
        assert torch.equal(getattr(method, buffer), before), name


def test_moco_queue_is_a_ring_of_the_newest_keys() -> None:
    encoder = _encoder()
    method = _method("moco", encoder)  # queue of 20, batches of 10: full after 2, wraps at 3
    for expected_filled in (10, 20, 20):
        _loss(method, encoder, torch.randn(10, 5), torch.randn(10, 5))
        assert int(method.queue_filled) == expected_filled
    assert int(method.queue_pointer) == 10
    norms = method.queue.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # keys are stored normalised
