from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from embedforge.samplers.pk import PKSampler


def _labels(seed: int, n: int, num_classes: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_classes, n)


@pytest.mark.parametrize(
    "n,num_classes,p,k", [(10, 3, 2, 2), (200, 20, 8, 4), (300, 40, 16, 8), (50, 50, 3, 2)]
)
def test_every_batch_is_p_classes_of_k(n: int, num_classes: int, p: int, k: int) -> None:
    labels = _labels(n, n, num_classes)
    sampler = PKSampler(labels, p=p, k=k, seed=1)
    batches = list(sampler.batches())
    assert len(batches) == sampler.num_batches
    assert len(list(sampler)) == len(sampler) == sampler.num_batches * p * k
    for batch in batches:
        counts = Counter(labels[batch].tolist())
        assert len(counts) == p and set(counts.values()) == {k}
        for label, count in counts.items():  # distinct items when the class has k of them
            members = {i for i in batch if labels[i] == label}
            assert len(members) == min(count, int((labels == label).sum()))


def test_small_class_gives_all_its_items_then_repeats() -> None:
    labels = [0, 0, 1, 1, 1, 1, 1]
    for batch in PKSampler(labels, p=2, k=4, num_batches=5, seed=0).batches():
        assert Counter(labels[i] for i in batch) == {0: 4, 1: 4}
        assert {i for i in batch if labels[i] == 0} == {
            0,
            1,
        }  # both, never one twice and not the other


def test_singletons_are_not_drawn_unless_asked() -> None:
    labels = [0, 0, 1, 1, 2, 3, 4]
    drawn = {
        labels[i] for batch in PKSampler(labels, p=2, k=2, num_batches=20).batches() for i in batch
    }
    assert drawn == {0, 1}
    every = PKSampler(labels, p=2, k=2, num_batches=40, min_class_size=1)
    assert {labels[i] for i in every} == {0, 1, 2, 3, 4}


def test_reproducible_and_different_across_epochs_and_seeds() -> None:
    labels = _labels(0, 120, 12)
    a, b = PKSampler(labels, p=4, k=3, seed=5), PKSampler(labels, p=4, k=3, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b.set_epoch(1)
    assert list(b) == second
    a.set_epoch(0)
    assert list(a) == first  # an epoch is a pure function of (seed, epoch)
    assert list(PKSampler(labels, p=4, k=3, seed=6)) != first


def test_tensor_and_list_labels_give_the_same_batches() -> None:
    labels = _labels(2, 60, 6)
    expected = list(PKSampler(labels, p=3, k=2, seed=3))
    assert list(PKSampler(torch.as_tensor(labels), p=3, k=2, seed=3)) == expected
    assert list(PKSampler(labels.tolist(), p=3, k=2, seed=3)) == expected


def test_default_length_is_about_one_pass() -> None:
    labels = np.repeat(np.arange(10), 10)  # 100 items
    assert PKSampler(labels, p=4, k=5).num_batches == 5
    assert PKSampler(labels[:12], p=2, k=5).num_batches == 1  # never 0
    assert len(PKSampler(labels, p=4, k=5, num_batches=3)) == 60


def test_works_in_a_dataloader() -> None:
    labels = torch.as_tensor(_labels(4, 90, 9))
    dataset = TensorDataset(torch.randn(90, 3), labels)
    sampler = PKSampler(labels, p=3, k=4, seed=0)
    loader = DataLoader(dataset, sampler=sampler, batch_size=sampler.batch_size)
    assert len(loader) == sampler.num_batches
    seen = [batch_labels for _, batch_labels in loader]
    assert len(seen) == sampler.num_batches
    for batch_labels in seen:
        assert sorted(Counter(batch_labels.tolist()).values()) == [4, 4, 4]
    assert [y.tolist() for _, y in loader] == [y.tolist() for y in seen]  # same epoch, same batches


def test_too_few_classes_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"p=3 classes per batch, but only 2 of the 3 classes"):
        PKSampler([0, 0, 1, 1, 2], p=3, k=2)
    with pytest.raises(ValueError, match="only 0 of the 0 classes"):
        PKSampler([], p=1, k=1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"p": 0, "k": 2}, "p must be at least 1"),
        ({"p": 1, "k": 0}, "k must be at least 1"),
        ({"p": 1, "k": 1, "num_batches": 0}, "num_batches must be at least 1"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PKSampler([0, 0, 1, 1], **kwargs)


def test_labels_must_be_integers() -> None:
    with pytest.raises(ValueError, match="1-D array of integers"):
        PKSampler([0.5, 1.0], p=1, k=1)
    with pytest.raises(ValueError, match="1-D array of integers"):
        PKSampler([[0, 1]], p=1, k=1)
