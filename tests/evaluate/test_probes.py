"""kNN accuracy, linear probe and few-shot curve: loops, separable clusters and chance."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from embedforge.evaluate.probes import (
    FewShotPoint,
    few_shot_curve,
    knn_accuracy,
    linear_layer_probe,
    linear_probe,
    stratified_order,
)


def _clusters(seed, n_train=200, n_test=100, num_classes=4, d=8, spread=0.3, random_labels=False):
    """Gaussian clusters around one-hot centres; with ``random_labels`` the labels ignore them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n_train + n_test)
    x = 3.0 * np.eye(d)[y % d] + spread * rng.standard_normal((len(y), d))
    if random_labels:
        y = rng.integers(0, num_classes, len(y))
    x = x.astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _knn_loop(train_x, train_y, test_x, test_y, k):
    """Reference: sort by distance, count votes, break ties by the nearest voter."""
    correct = 0
    for x, y in zip(test_x, test_y, strict=True):
        nearest = np.argsort(np.linalg.norm(train_x - x, axis=1), kind="stable")[:k]
        votes = train_y[nearest].tolist()
        best = max(votes.count(label) for label in votes)
        predicted = next(label for label in votes if votes.count(label) == best)
        correct += predicted == y
    return correct / len(test_y)


@pytest.mark.parametrize("k", [1, 2, 4, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_knn_accuracy_matches_loop(seed, k) -> None:
    data = _clusters(seed, n_train=80, n_test=40, num_classes=5, spread=1.5)
    assert knn_accuracy(*data, k=k, chunk_size=7) == pytest.approx(_knn_loop(*data, k), abs=1e-12)


def test_knn_accuracy_matches_sklearn_without_ties() -> None:
    train_x, train_y, test_x, test_y = _clusters(3, num_classes=2, spread=2.0)  # odd k, 2 classes
    sklearn = KNeighborsClassifier(n_neighbors=5).fit(train_x, train_y).score(test_x, test_y)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5) == pytest.approx(sklearn)


def test_knn_tie_goes_to_the_nearest_label() -> None:
    train = torch.tensor([[1.0], [-2.0], [3.0], [-4.0]])
    labels = torch.tensor([5, 6, 5, 6])  # 2 votes each among k = 4; 5 has the nearest item
    assert knn_accuracy(train, labels, torch.zeros(1, 1), torch.tensor([5]), k=4) == 1.0
    assert knn_accuracy(train, labels, torch.zeros(1, 1), torch.tensor([6]), k=4) == 0.0


PROBES = {
    "knn": lambda *data: knn_accuracy(*data, k=5),
    "linear": linear_probe,
    "linear layer": lambda *data: linear_layer_probe(*data, epochs=100, batch_size=50, lr=0.05),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_separable_clusters_score_one_and_random_labels_chance(probe) -> None:
    assert PROBES[probe](*_clusters(0)) == 1.0
    random = [PROBES[probe](*_clusters(seed, n_test=200, random_labels=True)) for seed in (1, 2)]
    chance = np.mean(random)
    assert abs(chance - 0.25) < 0.08


def test_linear_probe_torch_equals_numpy_and_needs_two_classes() -> None:
    data = _clusters(4, spread=2.0)
    assert linear_probe(*(torch.from_numpy(a) for a in data)) == linear_probe(*data)
    train_x, train_y, test_x, test_y = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        linear_probe(train_x, np.zeros_like(train_y), test_x, test_y)
    with pytest.raises(ValueError, match=r"test_labels must have shape \(100,\)"):
        linear_probe(train_x, train_y, test_x, test_y[:5])


def test_linear_layer_probe_converges_toward_the_fitted_probe_and_stops_short_of_it() -> None:
    data = _clusters(5, n_train=400, n_test=400, spread=1.5)
    fitted = linear_probe(*data)
    assert linear_layer_probe(*data, epochs=200, batch_size=100, lr=0.05) >= fitted - 0.01
    assert linear_layer_probe(*data, epochs=1, lr=1e-4) < fitted - 0.1  # one tiny step


def test_linear_layer_probe_seed_labels_and_bad_input() -> None:
    train_x, train_y, test_x, test_y = _clusters(6, spread=2.0)
    first = linear_layer_probe(train_x, train_y, test_x, test_y, epochs=3, seed=1)
    assert first == linear_layer_probe(train_x, train_y, test_x, test_y, epochs=3, seed=1)
    shifted = linear_layer_probe(train_x, train_y * 7 + 3, test_x, test_y * 7 + 3, epochs=3, seed=1)
    assert shifted == first  # any integer labels, same classes in the same order
    as_torch = [torch.from_numpy(a) for a in (train_x, train_y, test_x, test_y)]
    assert linear_layer_probe(*as_torch, epochs=3, seed=1) == first
    assert np.isnan(linear_layer_probe(train_x, train_y, test_x[:0], test_y[:0], epochs=1))
    with pytest.raises(ValueError, match="at least 2 classes"):
        linear_layer_probe(train_x, np.zeros_like(train_y), test_x, test_y, epochs=1)
    with pytest.raises(ValueError, match="epochs >= 1"):
        linear_layer_probe(train_x, train_y, test_x, test_y, epochs=0)


def test_stratified_order_prefixes() -> None:
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    order = stratified_order(labels, seed=0)
    assert sorted(order.tolist()) == list(range(100))
    assert sorted(labels[order[:3]].tolist()) == [0, 1, 2]  # one of each class first
    assert np.bincount(labels[order[:50]]).tolist() == [30, 15, 5]  # proportional
    assert np.array_equal(order, stratified_order(labels, seed=0))
    assert not np.array_equal(order, stratified_order(labels, seed=1))


def test_few_shot_curve_sizes_and_reproducibility() -> None:
    data = _clusters(5, n_train=300, num_classes=6, spread=1.0)
    curve = few_shot_curve(*data, seed=3)
    assert all(isinstance(point, FewShotPoint) for point in curve)
    assert [p.fraction for p in curve] == [0.01, 0.02, 0.05, 0.1, 0.5, 1.0]
    # 1% and 2% of 300 (3 and 6) are raised to one item per class (6)
    assert [p.n_labelled for p in curve] == [6, 6, 15, 30, 150, 300]
    assert curve[-1].accuracy == linear_probe(*data)
    assert curve[-1].accuracy >= curve[0].accuracy
    assert few_shot_curve(*data, seed=3) == curve
    again = few_shot_curve(*data, fractions=(0.05,), seed=4)
    assert again[0].n_labelled == 15


def test_few_shot_curve_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match=r"fractions must be in \(0, 1\]"):
        few_shot_curve(*_clusters(0), fractions=(0.0,))
