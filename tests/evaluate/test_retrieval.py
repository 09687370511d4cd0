"""retrieval_metrics against PML's AccuracyCalculator (the oracle) on random data.

Ties: FAISS and ``torch.topk`` may order equal distances differently, so the
random data here has none. Near-ties are another matter: in float32 the two
searches round ||q||² + ||r||² - 2 q·r differently, and two neighbours whose
distances differ by ~1e-7 (relative) can swap. With thousands of points a few
such swaps are certain, each moving a metric by about 1 / (R · n); hence the
loose tolerance for the large cases. Fed the *same* neighbours
(:func:`_our_knn_for_pml`), the metrics agree to 1e-12 at every size.
"""

import logging
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN, FaissKNN

from embedforge.evaluate.knn import knn_search
from embedforge.evaluate.retrieval import METRIC_NAMES, retrieval_metrics

logging.getLogger("PML").setLevel(logging.ERROR)  # "None of the query labels are in the reference"


def _our_knn_for_pml(query, k, reference, ref_includes_query=False):
    return knn_search(query, reference, k, exclude_self=ref_includes_query)


KNN_FUNCS = {
    "faiss": FaissKNN,
    "custom": lambda: CustomKNN(LpDistance(normalize_embeddings=False)),
    "ours": lambda: _our_knn_for_pml,
}


def _pml(
    query, query_labels, reference=None, reference_labels=None, *, knn="faiss", k="max_bin_count"
):
    calculator = AccuracyCalculator(
        include=METRIC_NAMES, k=k, device=torch.device("cpu"), knn_func=KNN_FUNCS[knn]()
    )
    return calculator.get_accuracy(query, query_labels, reference, reference_labels)


def _assert_matches(ours: dict[str, float], theirs: dict[str, float], tol: float = 1e-12) -> None:
    assert list(ours) == list(METRIC_NAMES)
    assert all(isinstance(value, float) for value in ours.values())
    for name in METRIC_NAMES:
        if math.isnan(theirs[name]):
            assert math.isnan(ours[name]), name
        else:
            assert ours[name] == pytest.approx(theirs[name], abs=tol, rel=0), name


def _data(seed: int, n: int, num_classes: int, num_lone: int = 0, dtype=torch.float32, d: int = 6):
    """Clustered embeddings (metrics neither 0 nor 1); the first ``num_lone`` get classes of one."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    labels[:num_lone] = 10_000 + torch.arange(num_lone)
    centres = 2.0 * torch.randn(num_classes + 1, d, generator=g, dtype=torch.float64)
    noise = torch.randn(n, d, generator=g, dtype=torch.float64)
    return (centres[labels.clamp_max(num_classes)] + noise).to(dtype), labels


def _split(x, labels, n_query):
    """Query vs reference; the lone classes sit in the query only."""
    return x[:n_query], labels[:n_query], x[n_query:], labels[n_query:]


SMALL = [  # (n_query, n_reference, num_classes, num_lone)
    (3, 3, 2, 0),
    (3, 4, 3, 1),
    (10, 20, 2, 2),
    (60, 90, 7, 3),
    (150, 100, 100, 5),
]
LARGE = [(400, 600, 25, 0), (2000, 1000, 2, 0), (2500, 1500, 100, 20)]
FORMS = ["leave_one_out", "query_vs_reference"]


def _sizes_id(sizes: tuple[int, int, int, int]) -> str:
    return "q{}-r{}-c{}-lone{}".format(*sizes)


def _case(seed, n_query, n_reference, num_classes, num_lone, form, dtype=torch.float32):
    if form == "leave_one_out":
        x, labels = _data(seed, n_query, num_classes, num_lone, dtype)
        return (x, labels)
    x, labels = _data(seed, n_query + n_reference, num_classes, num_lone, dtype)
    return _split(x, labels, n_query)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("knn", ["faiss", "custom"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", SMALL, ids=_sizes_id)
def test_small_matches_pml(sizes, seed, dtype, knn, form) -> None:
    args = _case(seed, *sizes, form, dtype)
    _assert_matches(retrieval_metrics(*args), _pml(*args, knn=knn))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("knn", ["faiss", "custom"])
@pytest.mark.parametrize("sizes", LARGE, ids=_sizes_id)
def test_large_matches_pml_up_to_float32_near_ties(sizes, knn, form) -> None:
    args = _case(7, *sizes, form)
    _assert_matches(retrieval_metrics(*args), _pml(*args, knn=knn), tol=2e-5)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("sizes", SMALL + LARGE, ids=_sizes_id)
def test_same_neighbours_give_same_metrics_as_pml(sizes, form) -> None:
    args = _case(3, *sizes, form)
    _assert_matches(retrieval_metrics(*args), _pml(*args, knn="ours"))


def test_pml_k_none_agrees_too() -> None:
    args = _case(4, 80, 120, 5, 4, "query_vs_reference")
    _assert_matches(retrieval_metrics(*args), _pml(*args, k=None))


def test_hand_computed_case() -> None:
    # query 0 at 0: neighbours 1 (label 0, right), 3 (label 1), 2 (label 0) -> R = 2
    x = torch.tensor([[0.0], [1.0], [3.0], [2.0]])
    labels = torch.tensor([0, 0, 0, 1])
    ours = retrieval_metrics(x[:1], labels[:1], x[1:], labels[1:])
    assert ours == {
        "precision_at_1": 1.0,
        "r_precision": 0.5,
        "mean_average_precision_at_r": 0.5,  # (1/1 + 0) / 2
    }


@pytest.mark.parametrize("form", FORMS)
def test_all_queries_lone_give_nan_like_pml(form) -> None:
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    if form == "leave_one_out":
        args = (x, torch.arange(5))
    else:  # PML's k="max_bin_count" asks FAISS for k=0 and fails; k=None gives NaN
        args = (x[:2], torch.tensor([7, 8]), x[2:], torch.tensor([0, 0, 1]))
    ours, theirs = retrieval_metrics(*args), _pml(*args, k=None)
    assert all(math.isnan(theirs[name]) for name in METRIC_NAMES)
    _assert_matches(ours, theirs)


def test_empty_reference_gives_nan() -> None:
    ours = retrieval_metrics(torch.randn(3, 2), torch.arange(3), torch.randn(0, 2), torch.arange(0))
    assert all(math.isnan(value) for value in ours.values())


def test_numpy_input_matches_torch() -> None:
    x, labels = _data(5, 70, 6, num_lone=2)
    expected = retrieval_metrics(x, labels)
    assert retrieval_metrics(x.numpy(), labels.numpy()) == expected
    assert retrieval_metrics(x.numpy(), labels.numpy().astype(np.int32)) == expected


@pytest.mark.parametrize("form", FORMS)
def test_chunk_size_does_not_change_metrics(form) -> None:
    args = _case(6, 130, 170, 9, 3, form)
    tiny = retrieval_metrics(*args, chunk_size=1)
    assert retrieval_metrics(*args, chunk_size=7) == pytest.approx(tiny, abs=1e-12, rel=0)
    assert retrieval_metrics(*args, chunk_size=10**9) == pytest.approx(tiny, abs=1e-12, rel=0)


def test_bad_input_is_named() -> None:
    x, labels = torch.randn(4, 2), torch.arange(4)
    with pytest.raises(ValueError, match="together"):
        retrieval_metrics(x, labels, x)
    with pytest.raises(ValueError, match=r"query_labels must have shape \(4,\)"):
        retrieval_metrics(x, labels[:3])
    with pytest.raises(ValueError, match="integers"):
        retrieval_metrics(x, labels.float())
    with pytest.raises(ValueError, match="2-D"):
        retrieval_metrics(x[:, 0], labels)
    with pytest.raises(ValueError, match="dimension 2 but reference has 3"):
        retrieval_metrics(x, labels, torch.randn(4, 3), labels)
