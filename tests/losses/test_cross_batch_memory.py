"""CrossBatchMemory against pytorch-metric-learning's, batch after batch, value and gradient;
plus what PML's does not do: eval mode leaves the memory alone, a checkpoint resumes it."""

from collections.abc import Callable

import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from torch import nn

from embedforge.config import Shapes
from embedforge.losses import (
    ContrastiveLoss,
    MultiSimilarityLoss,
    NTXentLoss,
    SupConLoss,
    TripletMarginLoss,
)
from embedforge.losses.cross_batch_memory import CrossBatchMemory
from embedforge.registry import LOSSES

DIM, BATCH, MEMORY = 8, 12, 30  # 30 is not a multiple of 12: the FIFO wraps mid-batch

PAIRS: dict[str, Callable[[], tuple[nn.Module, nn.Module, nn.Module | None]]] = {
    "triplet_all": lambda: (
        TripletMarginLoss(margin=0.1),
        pml_losses.TripletMarginLoss(margin=0.1),
        None,
    ),
    "triplet_all_cosine": lambda: (
        TripletMarginLoss(margin=0.1, distance="cosine"),
        pml_losses.TripletMarginLoss(margin=0.1, distance=pml_distances.CosineSimilarity()),
        None,
    ),
    "triplet_semihard": lambda: (
        TripletMarginLoss(margin=0.2, mining="semihard"),
        pml_losses.TripletMarginLoss(margin=0.2),
        pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard"),
    ),
    "triplet_hard": lambda: (
        TripletMarginLoss(margin=0.2, mining="hard"),
        pml_losses.TripletMarginLoss(margin=0.2),
        pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="hard"),
    ),
    "triplet_batch_hard": lambda: (
        TripletMarginLoss(margin=0.2, mining="batch_hard"),
        pml_losses.TripletMarginLoss(margin=0.2),
        pml_miners.BatchHardMiner(),
    ),
    "contrastive": lambda: (ContrastiveLoss(), pml_losses.ContrastiveLoss(), None),
    "supcon": lambda: (SupConLoss(0.1), pml_losses.SupConLoss(0.1), None),
    "ntxent": lambda: (NTXentLoss(0.5), pml_losses.NTXentLoss(0.5), None),
    "multi_similarity": lambda: (MultiSimilarityLoss(), pml_losses.MultiSimilarityLoss(), None),
}


def _batches(count: int, seed: int = 0, classes: int = 4) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(BATCH, DIM, generator=g, dtype=torch.float64),
            torch.randint(0, classes, (BATCH,), generator=g),
        )
        for _ in range(count)
    ]


def _step(loss_fn: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_(True)
    value = loss_fn(x, labels)
    value.backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_pml_batch_after_batch(name: str) -> None:
    loss, pml_loss, pml_miner = PAIRS[name]()
    ours = CrossBatchMemory(loss, DIM, memory_size=MEMORY)
    theirs = pml_losses.CrossBatchMemory(pml_loss, DIM, memory_size=MEMORY, miner=pml_miner)
    for x, labels in _batches(6):  # 72 items through a memory of 30: it wraps twice
        value, grad = _step(ours, x, labels)
        pml_value, pml_grad = _step(theirs, x, labels)
        torch.testing.assert_close(value, pml_value, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(grad, pml_grad, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(ours.embedding_memory, theirs.embedding_memory)
    assert torch.equal(ours.label_memory, theirs.label_memory)
    assert int(ours.next_slot) == theirs.queue_idx


def test_every_loss_that_takes_references_is_checked_against_pml() -> None:
    checked = {type(PAIRS[name]()[0]) for name in PAIRS}
    takes = {
        type(entry.target(entry.config(), Shapes(embedding_dim=DIM)))
        for entry in LOSSES.entries()
        if entry.config.takes_references
    }
    assert takes == checked


def test_first_batch_alone_is_the_in_batch_loss() -> None:
    """A memory holding only the current batch compares the batch with itself: the value of
    the loss without memory (the gradient is not: the references carry none)."""
    ((x, labels),) = _batches(1)
    for name in PAIRS:
        loss = PAIRS[name]()[0]
        memory_value = CrossBatchMemory(loss, DIM, memory_size=MEMORY)(x, labels)
        torch.testing.assert_close(memory_value, loss(x, labels), msg=name)


def test_eval_mode_reads_the_memory_without_enqueueing() -> None:
    first, second = _batches(2)
    memory = CrossBatchMemory(SupConLoss(0.1), DIM, memory_size=MEMORY)
    memory(*first)
    stored = memory.embedding_memory.clone()
    memory.eval()
    value = memory(*second)
    assert torch.equal(memory.embedding_memory, stored) and int(memory.num_filled) == BATCH
    x, labels = second  # anchors of the second batch against the first batch only
    expected = SupConLoss(0.1)(torch.cat([x, first[0]]), torch.cat([labels, first[1]]))
    assert value.item() != pytest.approx(expected.item())  # not the joint in-batch loss
    manual = _supcon_against(x, labels, first[0], first[1], temperature=0.1)
    torch.testing.assert_close(value, manual)


def _supcon_against(
    x: torch.Tensor,
    labels: torch.Tensor,
    refs: torch.Tensor,
    ref_labels: torch.Tensor,
    *,
    temperature: float,
) -> torch.Tensor:
    """SupCon of anchors x against references, as a loop (Khosla et al. eq. 2, L_out)."""
    x, refs = nn.functional.normalize(x, dim=1), nn.functional.normalize(refs, dim=1)
    per_anchor = []
    for a in range(len(x)):
        logits = refs @ x[a] / temperature  # (M,)
        positives = (ref_labels == labels[a]).nonzero().squeeze(1)
        if len(positives) == 0 or len(positives) == len(refs):
            continue
        log_prob = logits - logits.logsumexp(0)
        per_anchor.append(-log_prob[positives].mean())
    return torch.stack(per_anchor).mean()


def test_empty_memory_in_eval_mode_is_zero_with_a_finite_gradient() -> None:
    ((x, labels),) = _batches(1)
    memory = CrossBatchMemory(TripletMarginLoss(), DIM, memory_size=MEMORY).eval()
    value, grad = _step(memory, x, labels)
    assert value.item() == 0.0 and torch.isfinite(grad).all()


def test_one_sample_per_class_and_zero_distances() -> None:
    memory = CrossBatchMemory(ContrastiveLoss(), DIM, memory_size=MEMORY)
    x = torch.randn(BATCH, DIM, dtype=torch.float64)
    value, grad = _step(memory, x, torch.arange(BATCH))  # no positive anywhere
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    same = torch.ones(BATCH, DIM, dtype=torch.float64)  # every distance 0
    value, grad = _step(memory, same, torch.arange(BATCH) % 3)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_gradcheck_float64() -> None:
    ((x, labels),) = _batches(1)
    memory = CrossBatchMemory(NTXentLoss(0.5), DIM, memory_size=MEMORY)
    memory(*_batches(1, seed=3)[0])  # something older in the memory
    memory.eval()  # gradcheck calls forward repeatedly: the memory must not move
    assert torch.autograd.gradcheck(lambda z: memory(z, labels), (x.requires_grad_(True),))


def test_state_dict_resumes_the_memory_exactly() -> None:
    batches = [(x.float(), labels) for x, labels in _batches(5)]  # the buffers' dtype
    straight = CrossBatchMemory(TripletMarginLoss(margin=0.2), DIM, memory_size=MEMORY)
    values = [straight(*batch) for batch in batches]
    interrupted = CrossBatchMemory(TripletMarginLoss(margin=0.2), DIM, memory_size=MEMORY)
    for batch in batches[:3]:
        interrupted(*batch)
    resumed = CrossBatchMemory(TripletMarginLoss(margin=0.2), DIM, memory_size=MEMORY)
    resumed.load_state_dict(interrupted.state_dict())
    assert [resumed(*batch) for batch in batches[3:]] == values[3:]


def test_refuses_a_batch_larger_than_the_memory_and_a_wrong_width() -> None:
    memory = CrossBatchMemory(SupConLoss(), DIM, memory_size=4)
    with pytest.raises(ValueError, match="does not fit a memory of 4"):
        memory(torch.randn(5, DIM), torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        memory(torch.randn(2, 3), torch.zeros(2, dtype=torch.int64))


def test_ntxent_with_a_memory_needs_labels() -> None:
    with pytest.raises(ValueError, match="need labels"):
        NTXentLoss()(torch.randn(3, DIM), torch.randn(3, DIM), references=object())
