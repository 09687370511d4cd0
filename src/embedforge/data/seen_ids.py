"""The objects a stream has finished, in 8 bytes each: 64-bit hashes of their ids, sorted.

A stream packs an object once its rows end; an id that comes back later had rows apart, and
the set already packed for it would be missing them. Keeping every id would cost the ids'
own size (tens of bytes for a text id, with Python's overhead more); a 64-bit hash costs 8
bytes, and two different ids share one with probability about n²/2⁶⁵ (3e-8 for a million
objects), the only way a table could be refused wrongly. The hashes are kept as a few sorted
runs, each at least twice the next, merged as a binary counter carries: checking ``k`` ids
is a binary search per run, and each hash is merged O(log n) times in all.
"""

import numpy as np
import pandas as pd


def id_hashes(ids: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 hashes: Python's own for objects (text ids; cached on each string),
    pandas' for numbers (Python's maps -1 and -2 to one value)."""
    if ids.dtype == object:
        return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
    return pd.util.hash_array(ids).view(np.int64)


class SeenIds:
    """Ids added so far, by hash; :meth:`add` says which of the new ones came before.

    >>> seen = SeenIds()
    >>> seen.add(np.array(["a", "b"], dtype=object)).tolist()
    [False, False]
    >>> seen.add(np.array(["c", "a"], dtype=object)).tolist()
    [False, True]
    >>> len(seen)
    4
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # sorted int64 hashes, longest first

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def add(self, ids: np.ndarray) -> np.ndarray:
        """Record ``ids`` (distinct among themselves); ``(n,)`` True where one was seen."""
        hashes = id_hashes(ids)  # (n,)
        seen = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            seen |= run[at] == hashes
        self._runs.append(np.sort(hashes))
        while len(self._runs) > 1 and len(self._runs[-2]) < 2 * len(self._runs[-1]):
            last = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), last])
            self._runs.append(np.sort(merged, kind="stable"))  # timsort: merges the two runs
        return seen
