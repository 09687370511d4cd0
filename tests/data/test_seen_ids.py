"""SeenIds against a Python set: the same answers over many small additions."""

import numpy as np
import pytest

from embedforge.data.seen_ids import SeenIds


@pytest.mark.parametrize("kind", ["text", "int"])
def test_seen_ids_answers_as_a_set_does(kind: str) -> None:
    rng = np.random.default_rng(0)
    seen, reference = SeenIds(), set()
    for _ in range(200):
        numbers = rng.choice(np.arange(-3, 3000), size=int(rng.integers(1, 40)), replace=False)
        ids = numbers.astype(str).astype(object) if kind == "text" else numbers.astype(np.int64)
        expected = [value in reference for value in ids.tolist()]
        assert seen.add(ids).tolist() == expected
        reference.update(ids.tolist())
    assert len(seen) >= len(reference)  # every addition is kept, repeats included


def test_minus_one_and_minus_two_are_different_ids() -> None:
    seen = SeenIds()
    seen.add(np.array([-1], dtype=np.int64))
    assert seen.add(np.array([-2], dtype=np.int64)).tolist() == [False]
