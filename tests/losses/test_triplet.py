import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance

from embedforge.losses import triplet_kernel
from embedforge.losses.distances import Distance
from embedforge.losses.masks import label_masks
from embedforge.losses.miners import BatchHardMiner, TripletMiner
from embedforge.losses.triplet import TripletMarginLoss, triplet_margin_loss
from embedforge.losses.triplet_kernel import anchor_positive_chunks, triplet_margin_from_matrix

MODES = ["all", "hard", "semihard", "easy", "batch_hard"]
PML_DISTANCES = {"euclidean": LpDistance, "cosine": CosineSimilarity}


def batch(n: int, dim: int, classes: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=dtype)
    y = torch.randint(classes, (n,), generator=g)
    return x, y


def pml_reference(x, y, *, mode: str, margin: float, distance: str, smooth: bool):
    """PML's loss (and miner) for one of our mining modes: (loss, grad)."""
    dist = PML_DISTANCES[distance]()
    loss_fn = pml_losses.TripletMarginLoss(margin=margin, distance=dist, smooth_loss=smooth)
    if mode == "all":
        miner = None
    elif mode == "batch_hard":
        miner = pml_miners.BatchHardMiner(distance=dist)
    else:
        miner = pml_miners.TripletMarginMiner(margin=margin, type_of_triplets=mode, distance=dist)
    x = x.clone().requires_grad_()
    loss = loss_fn(x, y, miner(x, y) if miner else None)
    loss.backward()
    return loss.detach(), x.grad


def ours(x, y, **options):
    loss_fn = TripletMarginLoss(**options)
    x = x.clone().requires_grad_()
    loss = loss_fn(x, y)
    loss.backward()
    return loss.detach(), x.grad, loss_fn


# (batch size, embedding dim, number of classes, seed)
SHAPES = [
    (2, 2, 1, 0),
    (2, 3, 2, 1),
    (7, 5, 3, 2),
    (32, 16, 4, 3),
    (64, 256, 16, 4),
    (100, 8, 5, 5),
]


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n,dim,classes,seed", SHAPES)
def test_matches_pml_float32(n, dim, classes, seed, mode, distance, smooth) -> None:
    x, y = batch(n, dim, classes, seed)
    margin = 0.2
    expected, expected_grad = pml_reference(
        x, y, mode=mode, margin=margin, distance=distance, smooth=smooth
    )
    loss, grad, _ = ours(x, y, margin=margin, distance=distance, mining=mode, smooth=smooth)
    assert torch.allclose(loss, expected, rtol=1e-4, atol=1e-5)
    assert torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("margin", [0.05, 0.5])
def test_matches_pml_float64(mode, distance, smooth, margin) -> None:
    x, y = batch(48, 12, 6, seed=7, dtype=torch.float64)
    expected, expected_grad = pml_reference(
        x, y, mode=mode, margin=margin, distance=distance, smooth=smooth
    )
    loss, grad, _ = ours(x, y, margin=margin, distance=distance, mining=mode, smooth=smooth)
    assert loss.dtype == torch.float64
    assert torch.allclose(loss, expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["all", "semihard"])
def test_matches_pml_large_batch(mode) -> None:
    x, y = batch(512, 32, 128, seed=11)
    expected, expected_grad = pml_reference(
        x, y, mode=mode, margin=0.1, distance="euclidean", smooth=False
    )
    loss, grad, _ = ours(x, y, margin=0.1, mining=mode)
    assert torch.allclose(loss, expected, rtol=1e-4, atol=1e-5)
    assert torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_defaults_are_pml_defaults() -> None:
    x, y = batch(40, 6, 4, seed=12)
    expected = pml_losses.TripletMarginLoss()(x, y)
    assert torch.allclose(TripletMarginLoss()(x, y), expected, rtol=1e-5, atol=1e-6)


def test_squared_euclidean_matches_pml_power_2() -> None:
    x, y = batch(30, 6, 4, seed=13, dtype=torch.float64)
    expected = pml_losses.TripletMarginLoss(margin=0.3, distance=LpDistance(power=2))(x, y)
    loss = TripletMarginLoss(0.3, distance=Distance("squared_euclidean"))(x, y)
    assert torch.allclose(loss, expected, rtol=1e-10)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("type_of_triplets", ["all", "hard", "semihard"])
def test_given_indices_match_pml_with_same_indices(distance, type_of_triplets) -> None:
    x, y = batch(40, 8, 5, seed=14)
    indices = TripletMiner(0.2, type_of_triplets=type_of_triplets, distance=distance)(x, y)
    ref_x, our_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    pml_fn = pml_losses.TripletMarginLoss(0.1, distance=PML_DISTANCES[distance]())
    expected = pml_fn(ref_x, y, tuple(indices))
    loss_fn = TripletMarginLoss(0.1, distance=distance)
    loss = loss_fn(our_x, y, indices)
    expected.backward()
    loss.backward()
    assert torch.allclose(loss, expected, rtol=1e-4, atol=1e-6)
    assert torch.allclose(our_x.grad, ref_x.grad, rtol=1e-4, atol=1e-5)
    assert loss_fn.num_triplets == indices.anchor.numel()


def test_batch_hard_mining_is_batch_hard_miner_composition() -> None:
    x, y = batch(50, 8, 7, seed=15)
    direct = TripletMarginLoss(0.2, mining="batch_hard")(x, y)
    composed = TripletMarginLoss(0.2)(x, y, BatchHardMiner()(x, y))
    assert torch.equal(direct, composed)


def brute_counts(x, y, *, margin: float, mode: str) -> tuple[int, int]:
    """(triplets considered, triplets with loss > 0) by an explicit loop, Euclidean, hinge."""
    d = torch.cdist(*(2 * [torch.nn.functional.normalize(x.double(), dim=1)]))
    considered = positive = 0
    n = len(y)
    for a in range(n):
        for p in range(n):
            for k in range(n):
                if a == p or y[a] != y[p] or y[a] == y[k]:
                    continue
                m = (d[a, k] - d[a, p]).item()
                kept = {
                    "all": True,
                    "semihard": 0 < m <= margin,
                    "easy": m > margin,
                }[mode]
                considered += kept
                positive += kept and margin - m > 0
    return considered, positive


@pytest.mark.parametrize("mode", ["all", "semihard", "easy"])
def test_records_num_triplets_and_fraction_positive(mode) -> None:
    x, y = batch(14, 3, 3, seed=16)
    loss_fn = TripletMarginLoss(0.3, mining=mode)
    loss_fn(x, y)
    considered, positive = brute_counts(x, y, margin=0.3, mode=mode)
    assert considered > 0
    assert loss_fn.num_triplets == considered
    assert loss_fn.fraction_positive == pytest.approx(positive / considered)


def test_records_for_batch_hard_mining() -> None:
    y = torch.tensor([0, 0, 1, 1, 2])  # label 2 has no positive: 4 anchors
    loss_fn = TripletMarginLoss(mining="batch_hard")
    loss_fn(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), y)
    assert loss_fn.num_triplets == 4
    assert 0.0 <= loss_fn.fraction_positive <= 1.0


def test_identical_embeddings_cost_exactly_the_margin() -> None:
    """All distances 0: every triplet costs the margin, and the gradient is 0, not NaN."""
    x = torch.ones(6, 4, requires_grad=True)
    loss_fn = TripletMarginLoss(0.25)
    loss = loss_fn(x, torch.tensor([0, 0, 1, 1, 2, 2]))
    loss.backward()
    assert loss.item() == pytest.approx(0.25)
    assert loss_fn.num_triplets == 6 * 4 and loss_fn.fraction_positive == 1.0
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize(
    "labels",
    [[0, 0, 0, 0], [0, 1, 2, 3], [5], [0, 1, 1]],
    ids=["one-label", "all-singletons", "single-item", "one-sample-class"],
)
def test_degenerate_batches_give_zero_on_the_graph(mode, smooth, labels) -> None:
    y = torch.tensor(labels)
    x = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    loss_fn = TripletMarginLoss(mining=mode, smooth=smooth)
    loss = loss_fn(x, y)
    loss.backward()
    assert loss.requires_grad
    assert torch.isfinite(x.grad).all()
    if labels != [0, 1, 1]:  # [0, 1, 1] has triplets (1, 2, 0) and (2, 1, 0)
        assert loss.item() == 0.0
        assert torch.equal(x.grad, torch.zeros_like(x))
        assert loss_fn.num_triplets == 0 and loss_fn.fraction_positive == 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_duplicate_embeddings_have_finite_gradients(mode, distance) -> None:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    x[1] = x[0]  # same class
    x[5] = x[0]  # other class
    x.requires_grad_()
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    TripletMarginLoss(0.2, distance=distance, mining=mode, smooth=True)(x, y).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("smooth", [False, True])
def test_gradcheck_float64(mode, distance, smooth) -> None:
    x, y = batch(9, 3, 3, seed=3, dtype=torch.float64)
    loss_fn = TripletMarginLoss(0.3, distance=distance, mining=mode, smooth=smooth)
    assert torch.autograd.gradcheck(lambda e: loss_fn(e, y), (x.requires_grad_(),))


@pytest.mark.parametrize("kind", [None, "all", "semihard", "easy", "hard"])
@pytest.mark.parametrize("chunk_elements", [1, 13, 1 << 22])
def test_kernel_does_not_depend_on_chunking(kind, chunk_elements) -> None:
    x, y = batch(20, 4, 3, seed=4, dtype=torch.float64)
    matrix = Distance().matrix(x).requires_grad_()  # (B, B)
    pos, neg = label_masks(y)
    reference, ref_counts = triplet_margin_from_matrix(matrix, pos, neg, margin=0.4, kind=kind)
    (ref_grad,) = torch.autograd.grad(reference, matrix)
    loss, counts = triplet_margin_from_matrix(
        matrix, pos, neg, margin=0.4, kind=kind, chunk_elements=chunk_elements
    )
    (grad,) = torch.autograd.grad(loss, matrix)
    assert torch.equal(counts, ref_counts)
    assert torch.allclose(loss, reference, rtol=1e-12)
    assert torch.allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n,classes", [(64, 4), (300, 10)])
def test_working_blocks_are_bounded(n, classes) -> None:
    """No block ever holds more than chunk_elements triplets: memory is O(B^2), not O(B^3)."""
    _, y = batch(n, 2, classes, seed=5)
    pos, _ = label_masks(y)
    limit = 4 * n
    sizes = [a.numel() * n for a, _ in anchor_positive_chunks(pos, chunk_elements=limit)]
    assert max(sizes) <= limit
    assert sum(sizes) == int(pos.sum()) * n


def test_functional_form_and_device(device) -> None:
    x, y = batch(16, 4, 3, seed=6)
    x, y = x.to(device), y.to(device)
    out = triplet_margin_loss(x, y, margin=0.2, mining="semihard")
    assert out.loss.device.type == device.type
    assert torch.allclose(out.loss, TripletMarginLoss(0.2, mining="semihard")(x, y))
    assert 0 <= int(out.num_positive) <= int(out.num_triplets)


def test_unknown_mining_is_rejected() -> None:
    with pytest.raises(ValueError, match="batch_all"):
        TripletMarginLoss(mining="batch_all")  # type: ignore[arg-type]


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("kind", ["all", "semihard"])
@pytest.mark.parametrize("is_similarity", [False, True])
@pytest.mark.parametrize("columns", [None, 37])
def test_sorted_hinge_equals_walking_every_triplet(
    monkeypatch: pytest.MonkeyPatch, dense: bool, kind: str, is_similarity: bool, columns
) -> None:
    """The sort + prefix-sum kernel against the chunked walk over every (a, p, n), value, counts
    and gradient; negatives counted densely (few positives) and by search (many), batch
    against itself and against other reference rows (a cross-batch memory)."""
    monkeypatch.setattr(triplet_kernel, "DENSE_COUNT_POSITIVES", 16 if dense else 0)
    g = torch.Generator().manual_seed(8)
    y = torch.randint(0, 3, (24,), generator=g)
    ref = y if columns is None else torch.randint(0, 3, (columns,), generator=g)
    matrix = torch.rand(24, len(ref), generator=g, dtype=torch.float64).requires_grad_()
    pos, neg = label_masks(y, None if columns is None else ref)
    sign = -1.0 if is_similarity else 1.0
    walk_kind = None if kind == "all" else kind  # every valid triplet considered, as sorted
    walked = triplet_kernel._TripletMarginFromMatrix.apply(
        matrix, pos, neg, 0.3, sign, walk_kind, False, 0.0, 0.0, 1 << 22
    )
    loss, counts = triplet_margin_from_matrix(
        matrix, pos, neg, margin=0.3, kind=walk_kind, is_similarity=is_similarity
    )
    assert torch.equal(counts, walked[1]) and counts[1] > 0
    torch.testing.assert_close(loss, walked[0], rtol=1e-12, atol=1e-15)
    (grad,), (walked_grad,) = (torch.autograd.grad(v, matrix) for v in (loss, walked[0]))
    torch.testing.assert_close(grad, walked_grad, rtol=1e-12, atol=1e-15)
