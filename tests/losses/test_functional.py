import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance

from embedforge.losses.functional import batch_all_triplet_loss, batch_hard_triplet_loss


def batch(n: int, dim: int, classes: int, seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=dtype), torch.randint(classes, (n,), generator=g)


def loop_distance(x, i: int, j: int, squared: bool):
    d2 = ((x[i] - x[j]) ** 2).sum()
    if squared:
        return d2
    return d2.sqrt() if d2 > 0 else d2 * 0.0


def loop_batch_all(x, y, margin: float, squared: bool):
    """Moindrot's batch-all, one triplet at a time."""
    n = len(y)
    total, num_positive, num_valid = x.sum() * 0.0, 0, 0
    for a in range(n):
        for p in range(n):
            for k in range(n):
                if a == p or y[a] != y[p] or y[a] == y[k]:
                    continue
                loss = torch.relu(
                    loop_distance(x, a, p, squared) - loop_distance(x, a, k, squared) + margin
                )
                total = total + loss
                num_valid += 1
                num_positive += bool(loss > 1e-16)
    return total / (num_positive + 1e-16), num_positive / (num_valid + 1e-16)


def loop_batch_hard(x, y, margin: float, squared: bool):
    """Moindrot's batch-hard, one anchor at a time (anchors without positive use 0)."""
    n = len(y)
    losses = []
    for a in range(n):
        row = [loop_distance(x, a, j, squared) for j in range(n)]
        positives = [row[p] for p in range(n) if p != a and y[p] == y[a]]
        hardest_positive = torch.stack(positives).max() if positives else x.sum() * 0.0
        row_max = torch.stack(row).max()
        # entries that are not negatives are pushed up by the row's max
        shifted = [row[k] if y[k] != y[a] else row[k] + row_max for k in range(n)]
        hardest_negative = torch.stack(shifted).min()
        losses.append(torch.relu(hardest_positive - hardest_negative + margin))
    return torch.stack(losses).mean()


# (batch size, embedding dim, number of classes, seed)
SHAPES = [(2, 2, 2, 0), (3, 2, 2, 1), (6, 3, 2, 2), (9, 4, 3, 3), (12, 5, 4, 4)]


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("n,dim,classes,seed", SHAPES)
def test_batch_all_matches_loop(n, dim, classes, seed, margin, squared) -> None:
    x, y = batch(n, dim, classes, seed)
    ref_x, our_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected, expected_fraction = loop_batch_all(ref_x, y, margin, squared)
    loss, fraction = batch_all_triplet_loss(our_x, y, margin, squared=squared)
    assert torch.allclose(loss, expected, rtol=1e-10, atol=1e-12)
    assert fraction.item() == pytest.approx(expected_fraction, rel=1e-12)
    if expected.requires_grad:
        expected.backward()
        loss.backward()
        assert torch.allclose(our_x.grad, ref_x.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("n,dim,classes,seed", [*SHAPES, (7, 3, 7, 5)])
def test_batch_hard_matches_loop(n, dim, classes, seed, margin, squared) -> None:
    x, y = batch(n, dim, classes, seed)
    ref_x, our_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected = loop_batch_hard(ref_x, y, margin, squared)
    loss = batch_hard_triplet_loss(our_x, y, margin, squared=squared)
    expected.backward()
    loss.backward()
    assert torch.allclose(loss, expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(our_x.grad, ref_x.grad, rtol=1e-9, atol=1e-12)


def test_batch_all_counts_only_losses_above_1e_16() -> None:
    """Points 0, 1 (class 0) and 3 (class 1) on a line: the two triplets cost m - 2 and m - 1."""
    x = torch.tensor([[0.0], [1.0], [3.0]])
    y = torch.tensor([0, 0, 1])
    loss, fraction = batch_all_triplet_loss(x, y, margin=1.0)  # losses 0 and exactly 0
    assert loss.item() == 0.0 and fraction.item() == 0.0
    loss, fraction = batch_all_triplet_loss(x, y, margin=2.0)  # losses 0 and 1
    assert loss.item() == pytest.approx(1.0) and fraction.item() == pytest.approx(0.5)
    loss, _ = batch_all_triplet_loss(x, y, margin=2.0, squared=True)  # 1 - 9 + 2, 1 - 4 + 2
    assert loss.item() == 0.0


def test_batch_all_agrees_with_pml_on_raw_embeddings() -> None:
    x, y = batch(60, 8, 6, seed=9, dtype=torch.float32)
    expected = pml_losses.TripletMarginLoss(0.5, distance=LpDistance(normalize_embeddings=False))(
        x, y
    )
    loss, _ = batch_all_triplet_loss(x, y, 0.5)
    assert torch.allclose(loss, expected, rtol=1e-4, atol=1e-5)


def test_batch_hard_uses_all_anchors_in_the_mean() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0]])
    y = torch.tensor([0, 0, 1])
    # anchor 0: relu(1 - 3 + 2.5); anchor 1: relu(1 - 2 + 2.5); anchor 2 (no positive):
    # relu(0 - 2 + 2.5), its hardest negative being min(3, 2, 0 + 3)
    loss = batch_hard_triplet_loss(x, y, margin=2.5)
    assert loss.item() == pytest.approx((0.5 + 1.5 + 0.5) / 3)


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]])
@pytest.mark.parametrize("squared", [False, True])
def test_no_valid_triplet(labels, squared) -> None:
    x = torch.randn(4, 3, requires_grad=True)
    loss, fraction = batch_all_triplet_loss(x, torch.tensor(labels), 0.5, squared=squared)
    loss.backward()
    assert loss.item() == 0.0 and fraction.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))
    batch_hard_triplet_loss(x, torch.tensor(labels), 0.5, squared=squared).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("squared", [False, True])
def test_duplicate_embeddings_have_finite_gradients(squared) -> None:
    x = torch.randn(6, 3)
    x[1] = x[0]
    x[3] = x[0]
    x.requires_grad_()
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    loss, _ = batch_all_triplet_loss(x, y, 0.5, squared=squared)
    (loss + batch_hard_triplet_loss(x, y, 0.5, squared=squared)).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("squared", [False, True])
def test_gradcheck_float64(squared) -> None:
    x, y = batch(8, 3, 3, seed=10)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda e: batch_all_triplet_loss(e, y, 1.0, squared)[0], (x,))
    assert torch.autograd.gradcheck(lambda e: batch_hard_triplet_loss(e, y, 1.0, squared), (x,))
