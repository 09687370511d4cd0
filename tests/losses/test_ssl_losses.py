"""The self-supervised losses against lightly 1.6 (value and gradient, float64), an analytic
case each, float64 gradchecks and the edge cases (B = 2, a constant column, an empty queue).

One file for the five loss modules of the methods (barlow_twins, vicreg, negative_cosine,
queue_infonce, dino): they share the oracle and the grids."""

import pytest
import torch
from tests.losses.lightly_oracle import lightly_class

from embedforge.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss
from embedforge.losses.dino import dino_loss, updated_center
from embedforge.losses.negative_cosine import byol_loss, negative_cosine_similarity, simsiam_loss
from embedforge.losses.queue_infonce import enqueue, moco_v3_loss, queue_infonce_loss
from embedforge.losses.vicreg import VICRegLoss, vicreg_loss

SHAPES = [(4, 3), (16, 32)]
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def _views(batch: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    z2 = z1 + 0.5 * torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    return z1.requires_grad_(), z2.requires_grad_()


def _value_and_grads(loss_fn, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    loss = loss_fn(*inputs)
    grads = torch.autograd.grad(loss, [x for x in inputs if x.requires_grad])
    return (loss.detach(), *grads)


def _same(ours: tuple, theirs: tuple) -> None:
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, **TIGHT)


@pytest.mark.parametrize(("batch", "dim"), SHAPES)
def test_barlow_twins_equals_lightly(batch: int, dim: int) -> None:
    theirs = lightly_class("loss.barlow_twins_loss", "BarlowTwinsLoss")(lambda_param=5e-3)
    z1, z2 = _views(batch, dim)
    _same(_value_and_grads(BarlowTwinsLoss(), z1, z2), _value_and_grads(theirs, z1, z2))


@pytest.mark.parametrize(("batch", "dim"), SHAPES)
def test_vicreg_equals_lightly(batch: int, dim: int) -> None:
    theirs = lightly_class("loss.vicreg_loss", "VICRegLoss")()
    z1, z2 = _views(batch, dim)
    _same(_value_and_grads(VICRegLoss(), z1, z2), _value_and_grads(theirs, z1, z2))


@pytest.mark.parametrize(("batch", "dim"), SHAPES)
def test_negative_cosine_equals_lightly(batch: int, dim: int) -> None:
    theirs = lightly_class("loss.negative_cosine_similarity", "NegativeCosineSimilarity")()
    z1, z2 = _views(batch, dim)
    _same(_value_and_grads(negative_cosine_similarity, z1, z2), _value_and_grads(theirs, z1, z2))


def test_simsiam_and_byol_are_the_symmetrised_negative_cosine_with_stop_gradient() -> None:
    p1, p2 = _views(6, 4, seed=1)
    z1, z2 = _views(6, 4, seed=2)
    d = negative_cosine_similarity
    want = (d(p1, z2) + d(p2, z1)) / 2
    torch.testing.assert_close(simsiam_loss(p1, p2, z1, z2), want, **TIGHT)
    torch.testing.assert_close(byol_loss(p1, p2, z1, z2), 2 + 2 * want, **TIGHT)
    loss = simsiam_loss(p1, p2, z1, z2) + byol_loss(p1, p2, z1, z2)
    grads = torch.autograd.grad(loss, [p1, z1], allow_unused=True)
    assert grads[0] is not None and grads[1] is None  # the stop-gradient


def test_queue_infonce_loop_reference_and_analytic_case() -> None:
    """MoCo's Algorithm 1 as a loop (lightly's memory bank imports torchvision through
    lightly.models.utils; lightly_oracle.py's stand-in for it lets benchmarks/ssl_methods.py
    time lightly's bank, not yet checked here); with every similarity equal the loss is
    log(1 + K)."""
    query, key = _views(5, 3)
    queue = torch.randn(7, 3, dtype=torch.float64)
    n = torch.nn.functional.normalize
    expected = 0.0
    for i in range(5):
        positive = (n(query, dim=1)[i] @ n(key, dim=1)[i]) / 0.2
        negatives = n(queue, dim=1) @ n(query, dim=1)[i] / 0.2
        expected += -positive + torch.logsumexp(torch.cat([positive[None], negatives]), 0)
    torch.testing.assert_close(queue_infonce_loss(query, key, queue), expected / 5, **TIGHT)
    same = torch.ones(3, 4, dtype=torch.float64)
    loss = queue_infonce_loss(same, same, torch.ones(6, 4, dtype=torch.float64))
    torch.testing.assert_close(loss, torch.log(torch.tensor(7.0, dtype=torch.float64)))
    empty = queue_infonce_loss(query, key, torch.zeros(0, 3, dtype=torch.float64))
    assert empty.item() == 0.0  # no negatives yet: nothing to contrast


def test_moco_v3_loss_is_scaled_in_batch_cross_entropy() -> None:
    q, k = _views(6, 4)
    n = torch.nn.functional.normalize
    logits = n(q, dim=1) @ n(k, dim=1).T / 0.2
    want = torch.nn.functional.cross_entropy(logits, torch.arange(6)) * 0.4
    torch.testing.assert_close(moco_v3_loss(q, k), want, **TIGHT)


def test_enqueue_is_a_fifo_ring() -> None:
    queue, pointer = torch.zeros(4, 1), torch.tensor(0)
    for start in (0, 3, 6):  # 3 keys a time into 4 slots: wraps around
        keys = torch.arange(start, start + 3, dtype=torch.float32)[:, None]
        queue, pointer = enqueue(queue, pointer, keys)
    assert queue.flatten().tolist() == [8.0, 5.0, 6.0, 7.0] and int(pointer) == 1
    queue, pointer = enqueue(torch.zeros(2, 1), torch.tensor(1), torch.arange(5.0)[:, None])
    assert queue.flatten().tolist() == [3.0, 4.0] and int(pointer) == 0  # the newest kept


@pytest.mark.parametrize(("batch", "prototypes"), [(4, 8), (16, 64)])
def test_dino_equals_lightly_loss_and_centre(batch: int, prototypes: int) -> None:
    theirs = lightly_class("loss.dino_loss", "DINOLoss")(output_dim=prototypes).double()
    generator = torch.Generator().manual_seed(3)
    teacher = torch.randn(2, batch, prototypes, generator=generator, dtype=torch.float64)
    student = torch.randn(3, batch, prototypes, generator=generator, dtype=torch.float64)
    student.requires_grad_()
    center = torch.randn(prototypes, generator=generator, dtype=torch.float64) * 0.1
    theirs.center.copy_(center[None])
    # lightly holds the teacher temperature as a float32 tensor: 0.04 rounded to float32
    teacher_temperature = torch.tensor(0.04).item()
    ours = _value_and_grads(
        lambda s: dino_loss(s, teacher, center, teacher_temperature=teacher_temperature), student
    )
    _same(ours, _value_and_grads(lambda s: theirs(list(teacher), list(s)), student))
    torch.testing.assert_close(
        updated_center(center, teacher), theirs.center.flatten(), **TIGHT
    )  # lightly updated its centre in that call


def test_analytic_cases() -> None:
    whitened = torch.tensor(
        [[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64
    )
    assert barlow_twins_loss(whitened, whitened, eps=1e-15).item() == pytest.approx(0.0, abs=1e-12)
    # perfectly anti-correlated views: C = -I, each diagonal term (1 - (-1))^2 = 4
    assert barlow_twins_loss(whitened, -whitened, eps=1e-15).item() == pytest.approx(8.0)
    assert vicreg_loss(2 * whitened, 2 * whitened).item() == pytest.approx(0.0, abs=1e-12)
    # constant views: variance term 1 - sqrt(1e-4) = 0.99 per dimension, weight 25
    constant = torch.ones(4, 3, dtype=torch.float64)
    assert vicreg_loss(constant, constant).item() == pytest.approx(25 * 0.99)
    uniform = torch.zeros(2, 5, 7, dtype=torch.float64)
    assert dino_loss(uniform, uniform, torch.zeros(7)).item() == pytest.approx(
        torch.log(torch.tensor(7.0)).item()
    )


def test_float64_gradchecks() -> None:
    z1, z2 = _views(4, 3)
    for loss in (barlow_twins_loss, vicreg_loss, negative_cosine_similarity):
        assert torch.autograd.gradcheck(loss, (z1, z2))
    queue = torch.randn(5, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q: queue_infonce_loss(q, z2, queue), (z1,))
    student = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2, 3, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: dino_loss(s, teacher, torch.zeros(4)), (student,))


def test_edge_cases_stay_finite() -> None:
    z1, z2 = _views(2, 3)  # B = 2
    constant_column = torch.cat([z1[:, :2], torch.ones(2, 1, dtype=torch.float64)], dim=1)
    for loss in (barlow_twins_loss, vicreg_loss):
        value = loss(constant_column, z2)
        assert torch.isfinite(value)
        assert all(torch.isfinite(g).all() for g in torch.autograd.grad(value, [z2]))
    with pytest.raises(ValueError, match="B >= 2"):
        vicreg_loss(z1[:1], z2[:1])
    with pytest.raises(ValueError, match="two views or more"):
        dino_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(3))
