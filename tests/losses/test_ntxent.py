import math

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from embedforge.losses.distances import pairwise_cosine_similarity
from embedforge.losses.masks import label_masks
from embedforge.losses.ntxent import NTXentLoss, ntxent_loss, sample_negatives

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-7, "atol": 1e-9}}


def value_and_grads(loss_fn, *inputs: torch.Tensor):
    inputs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    value = loss_fn(*inputs)
    value.backward()
    return value.detach(), [t.grad for t in inputs if t.is_floating_point()]


def assert_same(ours, theirs, dtype) -> None:
    torch.testing.assert_close(ours[0], theirs[0], **TOL[dtype])
    for g1, g2 in zip(ours[1], theirs[1], strict=True):
        torch.testing.assert_close(g1, g2, **TOL[dtype])


def randn(seed: int, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def reference(embeddings, pos_mask, neg_mask, temperature, decoupled=False) -> torch.Tensor:
    """The per-pair formula written as a loop over positive pairs."""
    sim = pairwise_cosine_similarity(embeddings) / temperature
    terms = []
    for a, p in pos_mask.nonzero().tolist():
        neg = sim[a][neg_mask[a]]
        if not len(neg):
            terms.append(sim.new_zeros(()))
            continue
        denominator = neg if decoupled else torch.cat([sim[a, p : p + 1], neg])
        terms.append(-sim[a, p] + torch.logsumexp(denominator, dim=0))
    return torch.stack(terms).mean()


# PML builds a (positive pairs x negative pairs) tensor: keep its batches moderate.
LABELLED = [(2, 2, 1), (3, 4, 2), (8, 3, 3), (40, 16, 5), (96, 64, 8)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("size,dim,classes", LABELLED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_labelled_matches_pml(seed, size, dim, classes, dtype, temperature) -> None:
    x = randn(seed, size, dim, dtype=dtype)
    labels = torch.randint(0, classes, (size,), generator=torch.Generator().manual_seed(seed))
    ours = value_and_grads(NTXentLoss(temperature), x, labels)
    theirs = value_and_grads(pml_losses.NTXentLoss(temperature), x, labels)
    assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_labelled_matches_pml_large_batch(dtype) -> None:
    x = randn(5, 256, 32, dtype=dtype)
    labels = torch.randint(0, 128, (256,), generator=torch.Generator().manual_seed(5))
    ours = value_and_grads(NTXentLoss(), x, labels)
    theirs = value_and_grads(pml_losses.NTXentLoss(), x, labels)
    assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size,dim", [(1, 2), (2, 2), (7, 5), (64, 128)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_two_views_match_pml(seed, size, dim, dtype) -> None:
    z1, z2 = randn(seed, size, dim, dtype=dtype), randn(seed + 100, size, dim, dtype=dtype)
    ours = value_and_grads(NTXentLoss(), z1, z2)
    theirs = value_and_grads(pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss()), z1, z2)
    assert_same(ours, theirs, dtype)


def test_two_views_match_pml_large_batch() -> None:
    z1, z2 = randn(0, 128, 256, dtype=torch.float32), randn(1, 128, 256, dtype=torch.float32)
    ours = value_and_grads(NTXentLoss(0.1), z1, z2)
    theirs = value_and_grads(pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss(0.1)), z1, z2)
    assert_same(ours, theirs, torch.float32)


def test_two_views_equal_labelled_form_on_concatenation() -> None:
    z1, z2 = randn(0, 10, 6), randn(1, 10, 6)
    ids = torch.arange(10)
    loss = NTXentLoss(0.2)
    torch.testing.assert_close(loss(z1, z2), loss(torch.cat([z1, z2]), torch.cat([ids, ids])))


def test_defaults_match_pml() -> None:
    assert NTXentLoss().temperature == pml_losses.NTXentLoss().temperature
    assert NTXentLoss().neg_pairs is None


@pytest.mark.parametrize("items", [1, 2, 5, 32])
@pytest.mark.parametrize("temperature", [0.07, 1.0])
def test_all_similarities_equal(items, temperature) -> None:
    # every similarity is 1: each of the 2N anchors sees its positive among 2N - 1 equal
    # logits, so the loss is -1/t + log((2N - 1) e^(1/t)) = log(2N - 1)
    z = torch.ones(items, 3, dtype=torch.float64)
    value = NTXentLoss(temperature)(z, z.clone())
    torch.testing.assert_close(value, torch.tensor(math.log(2 * items - 1), dtype=torch.float64))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5], [7]], ids=["singles", "one", "b1"])
def test_no_positive_or_no_negative_pairs_give_zero(labels) -> None:
    x = randn(0, len(labels), 3).requires_grad_(True)
    value = NTXentLoss()(x, torch.tensor(labels))
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_no_negatives_kept_gives_zero() -> None:
    x, labels = randn(0, 6, 3).requires_grad_(True), torch.tensor([0, 0, 0, 1, 1, 2])
    value = NTXentLoss(neg_pairs=0)(x, labels)
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_matches_loop_reference() -> None:
    x, labels = randn(3, 12, 5), torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    pos, neg = label_masks(labels)
    torch.testing.assert_close(ntxent_loss(x, labels, temperature=0.3), reference(x, pos, neg, 0.3))


def test_duplicate_embeddings_have_finite_gradients() -> None:
    x = torch.tensor([[1.0, 2.0]] * 3 + [[-1.0, 0.5]] * 2, requires_grad=True)
    value = NTXentLoss()(x, torch.tensor([0, 0, 1, 1, 0]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_extreme_temperature_is_finite() -> None:
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    value = NTXentLoss(1e-4)(x, torch.tensor([0, 0, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, torch.tensor(2e4 / 2), rtol=1e-4, atol=0.0)


def test_gradcheck() -> None:
    x, labels = randn(4, 7, 3).requires_grad_(True), torch.tensor([0, 0, 1, 1, 1, 2, 3])
    assert torch.autograd.gradcheck(lambda e: NTXentLoss(0.5)(e, labels), (x,))
    z2 = randn(5, 7, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(NTXentLoss(0.5, neg_pairs=None), (x, z2))


# --- neg_pairs: a random subset of negatives per anchor ---------------------------------


@pytest.mark.parametrize("num", [0, 1, 3, 100])
def test_sample_negatives_keeps_min_of_num_and_available(num) -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3, 3, 3])
    _, neg = label_masks(labels)
    kept = sample_negatives(neg, num, generator=torch.Generator().manual_seed(0))
    assert not (kept & ~neg).any()
    assert torch.equal(kept.sum(dim=1), neg.sum(dim=1).clamp_max(num))


def test_sample_negatives_is_uniform() -> None:
    neg = torch.ones(1, 6, dtype=torch.bool)
    neg[0, 0] = False
    g = torch.Generator().manual_seed(0)
    counts = sum(sample_negatives(neg, 2, generator=g).int() for _ in range(2000))
    assert counts[0, 0] == 0
    torch.testing.assert_close(counts[0, 1:] / 2000, torch.full((5,), 0.4), atol=0.05, rtol=0)


@pytest.mark.parametrize("two_views", [True, False])
def test_enough_neg_pairs_equal_full_loss(two_views) -> None:
    z1, z2 = randn(0, 9, 4), randn(1, 9, 4)
    args = (z1, z2) if two_views else (z1, torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 4]))
    torch.testing.assert_close(NTXentLoss(neg_pairs=16)(*args), NTXentLoss()(*args))
    torch.testing.assert_close(NTXentLoss(neg_pairs=10**6)(*args), NTXentLoss()(*args))


def test_few_neg_pairs_differ_and_are_reproducible() -> None:
    z1, z2 = randn(0, 16, 8), randn(1, 16, 8)
    full = NTXentLoss()(z1, z2)
    a = NTXentLoss(neg_pairs=2, generator=torch.Generator().manual_seed(3))(z1, z2)
    b = NTXentLoss(neg_pairs=2, generator=torch.Generator().manual_seed(3))(z1, z2)
    c = NTXentLoss(neg_pairs=2, generator=torch.Generator().manual_seed(4))(z1, z2)
    assert a.item() == b.item() and a.item() != c.item() and a.item() != full.item()
    torch.manual_seed(11)
    d = NTXentLoss(neg_pairs=2)(z1, z2)
    torch.manual_seed(11)
    assert d.item() == NTXentLoss(neg_pairs=2)(z1, z2).item()


def test_few_neg_pairs_match_loop_reference_on_same_sample() -> None:
    x, labels = randn(2, 12, 5), torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    pos, neg = label_masks(labels)
    kept = sample_negatives(neg, 2, generator=torch.Generator().manual_seed(9))
    loss = NTXentLoss(0.2, neg_pairs=2, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(loss(x, labels), reference(x, pos, kept, 0.2))


# --- call forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [
        torch.zeros(5, 3),  # float of another shape
        torch.zeros(4, 2),
        torch.zeros(4, dtype=torch.float32),  # float 1-D: labels must be integers
        torch.zeros(4, 1, dtype=torch.int64),  # integer, not 1-D
        torch.zeros(5, dtype=torch.int64),  # integer of the wrong length
        torch.zeros(4, dtype=torch.bool),
    ],
)
def test_rejects_ambiguous_second_argument(second) -> None:
    with pytest.raises(ValueError, match=r"view|labels"):
        NTXentLoss()(torch.zeros(4, 3), second)


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
    with pytest.raises(ValueError, match="neg_pairs"):
        NTXentLoss(neg_pairs=-1)
    with pytest.raises(ValueError, match="embeddings"):
        NTXentLoss()(torch.zeros(4), torch.zeros(4, dtype=torch.int64))


def test_runs_on_device(device) -> None:
    z1, z2 = randn(0, 8, 4, dtype=torch.float32), randn(1, 8, 4, dtype=torch.float32)
    value = NTXentLoss(neg_pairs=3)(z1.to(device), z2.to(device))
    assert value.device.type == device.type and torch.isfinite(value)
    expected = pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss())(z1, z2)
    torch.testing.assert_close(NTXentLoss()(z1.to(device), z2.to(device)).cpu(), expected)


# --- decoupled: the positive left out of the denominator ---------------------------------


@pytest.mark.parametrize("neg_pairs", [None, 2])
def test_decoupled_matches_loop_reference(neg_pairs) -> None:
    """With every negative, and with 2 sampled per anchor (the tutorial's ablation)."""
    x, labels = randn(6, 12, 5), torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    pos, neg = label_masks(labels)
    if neg_pairs is not None:
        neg = sample_negatives(neg, neg_pairs, generator=torch.Generator().manual_seed(3))
    loss = NTXentLoss(
        0.3, neg_pairs=neg_pairs, decoupled=True, generator=torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(loss(x, labels), reference(x, pos, neg, 0.3, decoupled=True))


def test_decoupled_two_views_is_below_the_coupled_loss() -> None:
    """Each pair's denominator loses its positive term, so each pair's loss only falls."""
    z1, z2 = randn(7, 6, 4), randn(8, 6, 4)
    coupled = NTXentLoss(0.5)(z1, z2)
    decoupled = NTXentLoss(0.5, decoupled=True)(z1, z2)
    assert decoupled.item() < coupled.item()


def test_decoupled_without_negatives_is_zero_with_zero_gradients() -> None:
    x = randn(9, 4, 3).requires_grad_(True)
    value = NTXentLoss(decoupled=True)(x, torch.tensor([0, 0, 0, 0]))
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_decoupled_gradcheck_and_duplicates() -> None:
    x, labels = randn(10, 7, 3).requires_grad_(True), torch.tensor([0, 0, 1, 1, 1, 2, 3])
    assert torch.autograd.gradcheck(lambda e: NTXentLoss(0.5, decoupled=True)(e, labels), (x,))
    same = torch.tensor([[1.0, 2.0]] * 4, requires_grad=True)  # zero distances
    value = NTXentLoss(decoupled=True)(same, torch.tensor([0, 0, 1, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(same.grad).all()
