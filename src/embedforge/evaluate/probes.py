"""Downstream probes: how useful frozen embeddings are as features for a classifier.

* :func:`knn_accuracy` — majority vote of the k nearest training items (exact
  Euclidean kNN, chunked, as the retrieval metrics use): no training at all,
  so it shows what the geometry alone gives.
* :func:`linear_probe` — a logistic regression on the standardised embeddings
  (the "linear evaluation protocol" of self-supervised learning, e.g. SimCLR,
  Chen et al. 2020, arXiv:2002.05709): how linearly separable the classes are.
* :func:`linear_layer_probe` — one linear layer trained by Adam for a fixed
  number of epochs on the raw embeddings: the protocol of many papers and
  tutorials, not fitted to convergence, for comparing with numbers measured so.
* :func:`few_shot_curve` — the linear probe when only a fraction of the
  training labels is available, the usual way to show that a pretrained
  embedding saves labels.

Every function takes a training split and a held-out test split (torch or
numpy; embeddings (n, d), integer labels (n,)) and returns a test accuracy.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from embedforge.metrics.arrays import ArrayLike, as_embeddings, as_labels
from embedforge.metrics.knn import knn_search_chunks

FEW_SHOT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.5, 1.0)


class FewShotPoint(NamedTuple):
    """One point of the few-shot curve: the labelled fraction, the items it gave, the accuracy."""

    fraction: float
    n_labelled: int
    accuracy: float


def knn_accuracy(
    train_emb: ArrayLike,
    train_labels: ArrayLike,
    test_emb: ArrayLike,
    test_labels: ArrayLike,
    *,
    k: int = 5,
    chunk_size: int | None = None,
) -> float:
    """Accuracy of a k-nearest-neighbour majority vote (Euclidean, unweighted) on the test split.

    Ties between labels with the same number of votes go to the label whose
    nearest member among the k is closest (so k = 1 and k = 2 agree). Neighbours
    at exactly equal distances are ordered as :func:`~embedforge.metrics.knn.knn_search`
    leaves them. Memory: one (chunk, n_train) block and a (chunk, k, k) vote count.

    Args:
        train_emb, train_labels: (n, d) and (n,), the items voted from.
        test_emb, test_labels: (m, d) and (m,), the items classified.
        k: voters per test item, 1 <= k <= n.
        chunk_size: test items per chunk (default as in :func:`knn_search_chunks`).

    >>> train, test = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]]), np.array([[0.5], [9.0]])
    >>> knn_accuracy(train, np.array([0, 0, 1, 1, 1]), test, np.array([0, 1]), k=3)
    1.0
    """
    train_t, test_t = as_embeddings(train_emb, "train_emb"), as_embeddings(test_emb, "test_emb")
    train_y = as_labels(train_labels, len(train_t), "train_labels").to(train_t.device)
    test_y = as_labels(test_labels, len(test_t), "test_labels").to(train_t.device)
    if len(test_t) == 0:
        return float("nan")
    correct = 0
    for start, _, indices in knn_search_chunks(
        test_t.to(train_t.device, train_t.dtype), train_t, k, chunk_size=chunk_size
    ):
        votes = train_y[indices]  # (c, k) nearest first
        counts = (votes[:, :, None] == votes[:, None, :]).sum(dim=2)  # (c, k) votes for each
        winner = counts.argmax(dim=1)  # (c,) first (nearest) position of a top-voted label
        predicted = votes.gather(1, winner[:, None]).squeeze(1)  # (c,)
        correct += int((predicted == test_y[start : start + len(indices)]).sum())
    return correct / len(test_t)


def linear_probe(
    train_emb: ArrayLike,
    train_labels: ArrayLike,
    test_emb: ArrayLike,
    test_labels: ArrayLike,
    *,
    C: float = 1.0,
    max_iter: int = 5000,
) -> float:
    """Test accuracy of a logistic regression fitted on frozen, standardised training embeddings.

    Each feature is standardised with the training split's mean and standard
    deviation, then scikit-learn's multinomial ``LogisticRegression`` (lbfgs,
    L2 penalty) is fitted. ``C`` is the inverse L2 strength; the default 1.0 is
    scikit-learn's and a mild penalty on standardised features — not tuned, so
    that encoders are compared with the same probe. lbfgs is deterministic, so
    there is no seed. ``max_iter`` is large enough to converge on the small
    evaluation sets this is meant for.

    Args:
        train_emb, train_labels: (n, d) and (n,), at least two classes.
        test_emb, test_labels: (m, d) and (m,).

    >>> x = np.array([[0.0], [1.0], [4.0], [5.0]])
    >>> linear_probe(x, np.array([0, 0, 1, 1]), np.array([[0.2], [4.8]]), np.array([0, 1]))
    1.0
    """
    train_x, test_x = _numpy(train_emb, "train_emb"), _numpy(test_emb, "test_emb")
    train_y = as_labels(train_labels, len(train_x), "train_labels").cpu().numpy()
    test_y = as_labels(test_labels, len(test_x), "test_labels").cpu().numpy()
    if len(np.unique(train_y)) < 2:
        raise ValueError("linear_probe needs at least 2 classes in train_labels")
    if len(test_x) == 0:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(train_x, train_y)
    return float((probe.predict(test_x) == test_y).mean())


def linear_layer_probe(
    train_emb: ArrayLike,
    train_labels: ArrayLike,
    test_emb: ArrayLike,
    test_labels: ArrayLike,
    *,
    epochs: int,
    batch_size: int = 1000,
    lr: float = 1e-3,
    seed: int = 0,
) -> float:
    """Test accuracy of one linear layer trained on the raw frozen embeddings for ``epochs`` epochs.

    Cross-entropy, Adam at ``lr`` with a cosine schedule over the epochs, shuffled
    mini-batches, no feature scaling: the probe of many papers and tutorials. It
    stops before convergence, so its number depends on ``epochs`` and on the
    features' scale; it is here to compare with results measured that way.
    :func:`linear_probe` (fitted to convergence on standardised features) is the
    fairer comparison of encoders. Deterministic for a given ``seed``.

    Args:
        train_emb, train_labels: (n, d) and (n,), at least two classes (any integers).
        test_emb, test_labels: (m, d) and (m,); a label not seen in training counts as wrong.
        epochs: passes over the training items, >= 1.

    >>> x = torch.tensor([[0.0], [1.0], [4.0], [5.0]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> linear_layer_probe(x - 2.5, y, torch.tensor([[-2.3], [2.3]]), y[1:3], epochs=200, lr=0.1)
    1.0
    """
    if epochs < 1:
        raise ValueError(f"linear_layer_probe needs epochs >= 1; got {epochs}")
    train_x, test_x = as_embeddings(train_emb, "train_emb"), as_embeddings(test_emb, "test_emb")
    train_y = as_labels(train_labels, len(train_x), "train_labels").to(train_x.device)
    test_y = as_labels(test_labels, len(test_x), "test_labels").to(train_x.device)
    classes, targets = torch.unique(train_y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("linear_layer_probe needs at least 2 classes in train_labels")
    if len(test_x) == 0:
        return float("nan")
    generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(train_x.shape[1], len(classes), dtype=train_x.dtype, device=train_x.device)
    bound = 1 / train_x.shape[1] ** 0.5  # nn.Linear's own initial range, drawn from the seed
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.uniform_(-bound, bound, generator=generator)
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    for _ in range(epochs):
        for batch in torch.randperm(len(train_x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(layer(train_x[batch]), targets[batch])
            loss.backward()
            optimizer.step()
        schedule.step()
    with torch.no_grad():
        predicted = classes[layer(test_x.to(train_x.device, train_x.dtype)).argmax(dim=1)]
    return (predicted == test_y).double().mean().item()


def few_shot_curve(
    train_emb: ArrayLike,
    train_labels: ArrayLike,
    test_emb: ArrayLike,
    test_labels: ArrayLike,
    *,
    fractions: Sequence[float] = FEW_SHOT_FRACTIONS,
    seed: int = 0,
    C: float = 1.0,
) -> list[FewShotPoint]:
    """Linear-probe accuracy when only a fraction of the training labels is available.

    For each fraction f, round(f · n) training items are kept, stratified by
    class (:func:`stratified_subset`): one per class first, the rest shared in
    proportion to the class sizes. When f · n is below the number of classes,
    one item per class is kept anyway — a probe cannot learn a class it never
    sees — and ``n_labelled`` reports the number actually used, so two small
    fractions can give the same point. The subsets are nested (a smaller
    fraction's items are among a larger one's), which keeps the curve smooth,
    and depend only on ``seed``.

    Returns:
        One :class:`FewShotPoint` ``(fraction, n_labelled, accuracy)`` per fraction, in order.

    >>> x = np.array([[0.0], [0.5], [1.0], [4.0], [4.5], [5.0]])
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> [p.n_labelled for p in few_shot_curve(x, y, x, y, fractions=(0.1, 0.5, 1.0))]
    [2, 3, 6]
    """
    train_x = _numpy(train_emb, "train_emb")
    train_y = as_labels(train_labels, len(train_x), "train_labels").cpu().numpy()
    order = stratified_order(train_y, seed=seed)
    num_classes = len(np.unique(train_y))
    points = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"fractions must be in (0, 1]; got {fraction}")
        n_labelled = labelled_count(fraction, len(train_y), num_classes)
        subset = order[:n_labelled]
        accuracy = linear_probe(train_x[subset], train_y[subset], test_emb, test_labels, C=C)
        points.append(FewShotPoint(float(fraction), n_labelled, accuracy))
    return points


def labelled_count(fraction: float, n: int, num_classes: int) -> int:
    """Items kept for ``fraction`` of ``n`` labels: rounded, but at least one per class.

    >>> labelled_count(0.01, 1000, 3), labelled_count(0.001, 1000, 3)
    (10, 3)
    """
    return min(n, max(num_classes, int(fraction * n + 0.5)))


def stratified_order(labels: ArrayLike, *, seed: int = 0) -> np.ndarray:
    """A permutation of the items whose every prefix is a stratified sample of them: (n,) int64.

    Items are shuffled, then sorted by (rank within their class) / (class size),
    so the first C items hold one of each of the C classes, and any prefix takes
    from each class in proportion to its size (up to one item).

    >>> y = np.array([0, 0, 0, 0, 1, 1])
    >>> order = stratified_order(y, seed=0)
    >>> sorted(y[order[:2]].tolist()), sorted(y[order[:3]].tolist())
    ([0, 1], [0, 0, 1])
    """
    y = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    shuffled = np.random.default_rng(seed).permutation(len(y))
    _, class_of, class_sizes = np.unique(y[shuffled], return_inverse=True, return_counts=True)
    # rank of each shuffled item within its class: position in a stable sort by class
    by_class = np.argsort(class_of, kind="stable")
    rank = np.empty(len(y), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
    rank[by_class] = np.arange(len(y)) - np.repeat(starts, class_sizes)
    key = rank / class_sizes[class_of]
    return shuffled[np.argsort(key, kind="stable")].astype(np.int64)


def _numpy(x: ArrayLike, name: str) -> np.ndarray:
    return as_embeddings(x, name).detach().cpu().numpy()
