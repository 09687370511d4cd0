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

from embedforge.metrics.clustering import kmeans_cluster_labels
from embedforge.metrics.knn import knn_search
from embedforge.metrics.retrieval import ALL_METRIC_NAMES, METRIC_NAMES, retrieval_metrics

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


# --- the metrics beyond the default three -------------------------------------------------------

PML_SHARED_NAMES = (*METRIC_NAMES, "mean_average_precision", "mean_reciprocal_rank")
PML_K_NAMES = ("precision_at_1", "mean_average_precision", "mean_reciprocal_rank")


def _pml_named(args, names, k):
    calculator = AccuracyCalculator(
        include=names, k=k, device=torch.device("cpu"), knn_func=FaissKNN()
    )
    return calculator.get_accuracy(*args)


def _assert_same_numbers(ours, theirs, names, tol=1e-12):
    """PML averages the reciprocal ranks in float32 (ours in float64), hence its looser bound."""
    assert list(ours) == list(names)
    for name in names:
        assert isinstance(ours[name], float), name
        if math.isnan(theirs[name]):
            assert math.isnan(ours[name]), name
        else:
            bound = 1e-6 if name == "mean_reciprocal_rank" else tol
            assert ours[name] == pytest.approx(theirs[name], abs=bound, rel=0), name


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", SMALL, ids=_sizes_id)
def test_map_at_k_and_mrr_match_pml_max_bin_count(sizes, seed, form) -> None:
    args = _case(seed, *sizes, form)
    ours = retrieval_metrics(*args, include=PML_SHARED_NAMES)
    _assert_same_numbers(
        ours, _pml_named(args, PML_SHARED_NAMES, "max_bin_count"), PML_SHARED_NAMES
    )


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("k", [1, 2, 5, 40, "all"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sizes", SMALL, ids=_sizes_id)
def test_map_at_k_and_mrr_match_pml_at_k(sizes, seed, k, form) -> None:
    args = _case(seed, *sizes, form)
    searchable = len(args[0]) - 1 if form == "leave_one_out" else len(args[2])
    if k == "all":  # PML's k=None: every reference item; ours clamps a large k to them
        ours_k, pml_k = 10**9, None
    elif k > searchable:
        pytest.skip("PML's FAISS search returns -1 indices beyond the reference size")
    else:
        ours_k, pml_k = k, k
    ours = retrieval_metrics(*args, include=PML_K_NAMES, k=ours_k)
    _assert_same_numbers(ours, _pml_named(args, PML_K_NAMES, pml_k), PML_K_NAMES)


@pytest.mark.parametrize("form", FORMS)
def test_all_pml_metrics_on_larger_data_with_same_neighbours(form) -> None:
    args = _case(8, 400, 600, 25, 10, form)
    calculator = AccuracyCalculator(
        include=PML_SHARED_NAMES, k=30, device=torch.device("cpu"), knn_func=_our_knn_for_pml
    )
    # PML's k=30 is below the largest R, so only its k metrics are right; ours are all right
    theirs = calculator.get_accuracy(*args)
    ours = retrieval_metrics(*args, include=PML_K_NAMES, k=30)
    _assert_same_numbers(ours, theirs, PML_K_NAMES)
    ours_r = retrieval_metrics(*args, include=METRIC_NAMES, k=30)
    assert ours_r == pytest.approx(retrieval_metrics(*args), abs=1e-12, rel=0)


def _recall_at_k_loop(query, query_labels, reference, reference_labels, k):
    """Brute force: sort every reference item by distance, look at the first k."""
    leave_one_out = reference is None
    if leave_one_out:
        reference, reference_labels = query, query_labels
    hits = []
    for i in range(len(query)):
        others = [j for j in range(len(reference)) if not (leave_one_out and j == i)]
        if not any(int(reference_labels[j]) == int(query_labels[i]) for j in others):
            continue  # lone query
        distances = [float(torch.dist(query[i].double(), reference[j].double())) for j in others]
        nearest = [others[j] for j in np.argsort(distances, kind="stable")[:k]]
        hits.append(any(int(reference_labels[j]) == int(query_labels[i]) for j in nearest))
    return sum(hits) / len(hits) if hits else math.nan


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("sizes", SMALL[1:4], ids=_sizes_id)
def test_recall_at_k_matches_loop(sizes, k, form) -> None:
    args = _case(11, *sizes, form, dtype=torch.float64)
    loop_args = args if form == "query_vs_reference" else (*args, None, None)
    ours = retrieval_metrics(*args, include=("recall_at_k",), k=k)["recall_at_k"]
    assert ours == pytest.approx(_recall_at_k_loop(*loop_args, k), abs=1e-12)


def test_recall_at_1_is_precision_at_1_and_grows_with_k() -> None:
    args = _case(12, 60, 90, 7, 3, "query_vs_reference")
    p1 = retrieval_metrics(*args, include=("precision_at_1",))["precision_at_1"]
    recalls = [
        retrieval_metrics(*args, include=("recall_at_k",), k=k)["recall_at_k"] for k in (1, 2, 4, 8)
    ]
    assert recalls[0] == p1
    assert recalls == sorted(recalls) and recalls[-1] > recalls[0]


def test_hand_computed_k_metrics() -> None:
    # query 0 at 0: neighbours 1 (label 1), 2 (label 0), 3 (label 0) -> R = 2
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    labels = torch.tensor([0, 1, 0, 0])
    names = ("mean_average_precision", "mean_reciprocal_rank", "recall_at_k")
    at = {
        k: retrieval_metrics(x[:1], labels[:1], x[1:], labels[1:], include=names, k=k)
        for k in (1, 2, 3)
    }
    assert at[1] == {"mean_average_precision": 0.0, "mean_reciprocal_rank": 0.0, "recall_at_k": 0.0}
    assert at[2] == {
        "mean_average_precision": 0.25,
        "mean_reciprocal_rank": 0.5,
        "recall_at_k": 1.0,
    }
    # (1/2 + 2/3) / 2
    assert at[3]["mean_average_precision"] == pytest.approx(7 / 12, abs=1e-15)


@pytest.mark.parametrize("form", FORMS)
def test_chunk_size_does_not_change_the_new_metrics(form) -> None:
    args = _case(6, 130, 170, 9, 3, form)
    names = ("recall_at_k", "mean_average_precision", "mean_reciprocal_rank")
    tiny = retrieval_metrics(*args, include=names, k=5, chunk_size=1)
    assert retrieval_metrics(*args, include=names, k=5, chunk_size=13) == pytest.approx(
        tiny, abs=1e-12, rel=0
    )


def test_nmi_ami_match_pml_given_the_same_kmeans() -> None:
    def same_kmeans(x, num_clusters):
        return torch.from_numpy(kmeans_cluster_labels(x.cpu().numpy(), num_clusters, seed=3))

    for seed, form in [(0, "leave_one_out"), (1, "query_vs_reference"), (2, "leave_one_out")]:
        args = _case(seed, 120, 80, 6, 4, form)
        calculator = AccuracyCalculator(
            include=("NMI", "AMI"), device=torch.device("cpu"), kmeans_func=same_kmeans
        )
        theirs = calculator.get_accuracy(*args)
        ours = retrieval_metrics(*args, include=("AMI", "NMI"), seed=3)
        assert list(ours) == ["AMI", "NMI"]
        assert ours == pytest.approx(theirs, abs=1e-12, rel=0)


def test_kmeans_plus_plus_separates_what_pml_default_faiss_kmeans_may_not() -> None:
    # FAISS's k-means (PML's default) starts from random points and can merge two of
    # these five far-apart classes; scikit-learn's k-means++ start finds all five.
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(5).repeat_interleave(30)
    x = 20.0 * torch.eye(8)[labels] + torch.randn(150, 8, generator=g)
    calculator = AccuracyCalculator(include=("NMI", "AMI"), device=torch.device("cpu"))
    theirs = calculator.get_accuracy(x, labels)
    ours = retrieval_metrics(x, labels, include=("NMI", "AMI"))
    assert ours == {"NMI": 1.0, "AMI": 1.0}
    assert all(ours[name] >= theirs[name] - 1e-12 for name in ours)


def test_include_everything_and_reject_unknown_names() -> None:
    args = _case(9, 50, 60, 4, 2, "query_vs_reference")
    everything = retrieval_metrics(*args, include=ALL_METRIC_NAMES, k=4)
    assert list(everything) == list(ALL_METRIC_NAMES)
    assert all(0.0 <= value <= 1.0 for value in everything.values())
    with pytest.raises(ValueError, match=r"unknown metric.*'map@5'"):
        retrieval_metrics(*args, include=("map@5",))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        retrieval_metrics(*args, include=("recall_at_k",), k=0)


def test_new_metrics_nan_when_every_query_is_lone() -> None:
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    ours = retrieval_metrics(x, torch.arange(4), include=(*PML_SHARED_NAMES, "recall_at_k"), k=2)
    assert all(math.isnan(value) for value in ours.values())
