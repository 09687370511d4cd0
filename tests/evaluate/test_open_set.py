from pathlib import Path

import numpy as np
import pytest

from embedforge.errors import UserError
from embedforge.evaluate.open_set import (
    calibrate_threshold,
    map_at_5,
    mark_unseen_as_new,
    predict_with_threshold,
    write_submission,
)

NEW = "new_individual"


def _naive_predict(distances, labels, threshold, new_label=NEW, top=5) -> list:
    """The reference: walk the neighbours one by one."""
    out, inserted = [], False
    for distance, label in zip(distances, labels, strict=True):
        if not inserted and (distance > threshold or label == new_label):
            out.append(new_label)
            inserted = True
        if label != new_label and label not in out:
            out.append(label)
    if not inserted:
        out.append(new_label)
    return (out + [None] * top)[:top]


def _naive_map_at_5(predictions, truth) -> float:
    total = 0.0
    for row, label in zip(predictions, truth, strict=True):
        for rank, predicted in enumerate(row[:5]):
            if predicted == label:
                total += 1.0 / (rank + 1)
                break
    return total / len(truth)


def _random_case(seed: int, *, string_labels: bool, with_new_neighbours: bool):
    rng = np.random.default_rng(seed)
    nq, k = 60, 8
    distances = np.sort(rng.uniform(0, 2, size=(nq, k)), axis=1)
    distances[:, 3] = distances[:, 2]  # ties within rows
    codes = rng.integers(0, 6, size=(nq, k))
    names = np.array([f"id{i}" for i in range(6)], dtype=object) if string_labels else np.arange(6)
    labels = names[codes].astype(object)
    if with_new_neighbours:
        labels[rng.random((nq, k)) < 0.05] = NEW
    truth = names[rng.integers(0, 6, size=nq)].astype(object)
    truth[rng.random(nq) < 0.3] = NEW
    return distances, labels, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("string_labels", [False, True])
@pytest.mark.parametrize("with_new_neighbours", [False, True])
def test_calibration_matches_a_naive_double_loop(
    seed: int, string_labels: bool, with_new_neighbours: bool
) -> None:
    distances, labels, truth = _random_case(
        seed, string_labels=string_labels, with_new_neighbours=with_new_neighbours
    )
    calibration = calibrate_threshold(distances, labels, truth)
    assert calibration.thresholds.shape == calibration.scores.shape
    assert np.all(np.diff(calibration.thresholds) > 0) and len(calibration.thresholds) <= 100
    expected = [
        _naive_map_at_5(
            [_naive_predict(d, lab, t) for d, lab in zip(distances, labels, strict=True)], truth
        )
        for t in calibration.thresholds
    ]
    np.testing.assert_allclose(calibration.scores, expected, rtol=0, atol=1e-12)
    baseline = [_naive_predict(d, lab, np.inf) for d, lab in zip(distances, labels, strict=True)]
    assert calibration.map_at_5_without_threshold == pytest.approx(_naive_map_at_5(baseline, truth))
    assert calibration.map_at_5 == pytest.approx(max(expected))
    assert calibration.map_at_5 == pytest.approx(
        map_at_5(predict_with_threshold(distances, labels, calibration.threshold), truth)
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("top", [1, 3, 5, 10])
def test_predict_matches_the_naive_walk(seed: int, top: int) -> None:
    distances, labels, _ = _random_case(seed, string_labels=True, with_new_neighbours=True)
    for threshold in [-1.0, 0.3, 0.9, 1.5, np.inf]:
        got = predict_with_threshold(distances, labels, threshold, top=top)
        expected = [
            _naive_predict(d, lab, threshold, top=top)
            for d, lab in zip(distances, labels, strict=True)
        ]
        assert got.shape == (len(distances), top)
        assert got.tolist() == expected


def _constructed_case(seed: int):
    """Known queries: own individual nearest at < 0.5; new queries: every neighbour >= 1.0."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for query in range(40):
        own = int(rng.integers(0, 10))
        others = [f"ind{j}" for j in rng.permutation([j for j in range(10) if j != own])[:5]]
        far = np.sort(rng.uniform(1.0, 2.0, size=5))
        if query % 3 == 0:  # a new individual
            rows.append((np.concatenate([[far[0]], far]), [f"ind{own}", *others]))
            truth.append(NEW)
        else:
            rows.append((np.concatenate([[rng.uniform(0.0, 0.45)], far]), [f"ind{own}", *others]))
            truth.append(f"ind{own}")
    distances = np.array([d for d, _ in rows])
    labels = np.array([lab for _, lab in rows], dtype=object)
    return distances, labels, np.array(truth, dtype=object)


def test_calibration_finds_the_known_threshold() -> None:
    distances, labels, truth = _constructed_case(0)
    known_max = distances[truth != NEW, 0].max()
    new_min = distances[truth == NEW, 0].min()
    assert known_max < 0.5 <= 1.0 <= new_min

    default = calibrate_threshold(distances, labels, truth)
    assert default.map_at_5 == 1.0
    assert known_max <= default.threshold < new_min
    assert default.map_at_5_without_threshold < 1.0

    grid = calibrate_threshold(distances, labels, truth, candidates=np.linspace(0.0, 2.0, 41))
    assert grid.map_at_5 == 1.0
    assert 0.5 <= grid.threshold < 1.0  # the middle of the plateau [0.45, 1.0)
    plateau = grid.thresholds[grid.scores == 1.0]
    assert plateau.min() >= known_max and plateau.max() < new_min
    predictions = predict_with_threshold(distances, labels, grid.threshold)
    assert map_at_5(predictions, truth) == 1.0


@pytest.mark.parametrize(
    "threshold,expected",
    [
        (0.05, [NEW, "a", "b", "c", "d"]),  # new at rank 1
        (0.25, ["a", "b", NEW, "c", "d"]),  # rank 3; the second "a" is dropped
        (5.0, ["a", "b", "c", "d", "e"]),  # never: 5 distinct labels before it
    ],
)
def test_predict_hand_cases(threshold: float, expected: list) -> None:
    distances = [[0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6]]
    labels = [["a", "a", "b", "c", "c", "d", "e"]]
    assert predict_with_threshold(distances, labels, threshold).tolist() == [expected]


def test_predict_pads_and_mixes_integer_labels_with_a_string_new_label() -> None:
    distances = [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]
    labels = np.array([[7, 7, 3], [1, 2, 1]])
    got = predict_with_threshold(distances, labels, 0.15).tolist()
    assert got == [[7, NEW, 3, None, None], [1, NEW, 2, None, None]]
    assert predict_with_threshold(distances, labels, 1.0, new_label=-1).tolist() == [
        [7, 3, -1, None, None],
        [1, 2, -1, None, None],
    ]


def test_a_neighbour_labelled_new_brings_new_forward() -> None:
    distances = [[0.1, 0.2, 0.3, 0.4]]
    labels = [["a", NEW, "b", NEW]]
    assert predict_with_threshold(distances, labels, 1.0).tolist() == [["a", NEW, "b", None, None]]


def test_predict_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="ascending"):
        predict_with_threshold([[0.5, 0.1]], [["a", "b"]], 0.3)
    with pytest.raises(ValueError, match="shape"):
        predict_with_threshold([[0.1, 0.5]], [["a"]], 0.3)


@pytest.mark.parametrize(
    "row,expected",
    [
        (["t", "b", "c", "d", "e"], 1.0),
        (["a", "t", "c", "d", "e"], 0.5),
        (["a", "b", "c", "d", "t"], 0.2),
        (["a", "b", "c", "d", "e"], 0.0),
        (["a", "a", "t", None, None], 1 / 3),
        (["t", "t", None, None, None], 1.0),  # a repeat does not count twice
        (["a", "b"], 0.0),
    ],
)
def test_map_at_5_hand_cases(row: list, expected: float) -> None:
    assert map_at_5([row], ["t"]) == pytest.approx(expected)


def test_map_at_5_averages_and_checks_shapes() -> None:
    assert map_at_5([[1, 2], [2, 1], [3, 4]], [1, 1, 1]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="<= 5"):
        map_at_5([list("abcdef")], ["a"])
    with pytest.raises(ValueError):
        map_at_5([["a"]], ["a", "b"])


def test_mark_unseen_as_new() -> None:
    got = mark_unseen_as_new([3, 9, 1], np.array([1, 2, 3]))
    assert got.tolist() == [3, NEW, 1]


def test_submission_format(tmp_path: Path) -> None:
    predictions = predict_with_threshold(
        [[0.1, 0.2, 0.9], [0.1, 0.2, 0.3]], [["w1", "w2", "w3"], ["w4", "w4", "w5"]], 0.5
    )
    path = write_submission(tmp_path / "out" / "submission.csv", ["a.jpg", "b.jpg"], predictions)
    assert path.read_text().splitlines() == [
        "image,predictions",
        f"a.jpg,w1 w2 {NEW} w3",
        f"b.jpg,w4 w5 {NEW}",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]


class _Exploding:
    def __str__(self) -> str:
        raise RuntimeError("disk full, say")


@pytest.mark.parametrize(
    "bad,error", [("has space", UserError), ("a,b", UserError), (_Exploding(), RuntimeError)]
)
def test_submission_is_atomic(tmp_path: Path, bad, error: type) -> None:
    path = tmp_path / "submission.csv"
    path.write_text("the previous submission\n")
    predictions = [["w1"] * 5] * 50 + [["w1", bad, None, None, None]]
    with pytest.raises(error):
        write_submission(path, [f"{i}.jpg" for i in range(51)], predictions)
    assert path.read_text() == "the previous submission\n"
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]  # no temporary left
