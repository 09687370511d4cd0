"""UMAP maps: shapes, seeds, subsets, separated clusters, tiny inputs. One fitted map is shared
(numba compiles UMAP on the first call of a process, ~10 s)."""

import sys
import warnings

import numpy as np
import pytest
import torch

from embedforge.errors import UserError
from embedforge.evaluate.projection import Projection, umap_2d


def _blobs(seed: int = 0, per_blob: int = 20, d: int = 16):
    """Three tight Gaussian blobs far apart in d dimensions, and their labels."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.standard_normal((3, d))
    labels = np.repeat(np.arange(3), per_blob)
    return (centres[labels] + rng.standard_normal((len(labels), d))).astype(np.float32), labels


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    return _blobs()


@pytest.fixture(scope="module")
def fitted(blobs) -> tuple[Projection, list[warnings.WarningMessage]]:
    """The blobs' map, and every warning its computation raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        projection = umap_2d(torch.as_tensor(blobs[0]), seed=0)
    return projection, caught


def test_shape_and_dtype(fitted) -> None:
    projection, _ = fitted
    assert projection.coords.shape == (60, 2) and projection.coords.dtype == np.float32
    assert projection.index.dtype == np.int64
    np.testing.assert_array_equal(projection.index, np.arange(60))
    assert np.isfinite(projection.coords).all()


def test_no_warning(fitted) -> None:
    _, caught = fitted
    assert [str(w.message) for w in caught if not issubclass(w.category, ImportWarning)] == []


def test_same_seed_same_map(blobs, fitted) -> None:
    again = umap_2d(blobs[0], seed=0)  # numpy this time
    np.testing.assert_array_equal(again.coords, fitted[0].coords)


def test_separated_clusters_stay_separated(blobs, fitted) -> None:
    coords, labels = fitted[0].coords, blobs[1]
    distances = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    assert (labels[nearest] == labels).mean() >= 0.95


def test_subset_is_capped_and_seeded(blobs) -> None:
    x = blobs[0]
    projection = umap_2d(x, max_items=20, seed=1)
    assert projection.coords.shape == (20, 2) and projection.index.shape == (20,)
    chosen = set(projection.index.tolist())
    assert len(chosen) == 20 and chosen <= set(range(60))
    np.testing.assert_array_equal(umap_2d(x, max_items=20, seed=1).index, projection.index)
    assert set(umap_2d(x, max_items=20, seed=2).index.tolist()) != chosen


@pytest.mark.parametrize("n", [3, 4, 10])
def test_tiny_inputs_clip_the_neighbourhood(n) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        projection = umap_2d(_blobs(per_blob=4)[0][:n], n_neighbors=15)
    assert projection.coords.shape == (n, 2) and np.isfinite(projection.coords).all()
    assert [str(w.message) for w in caught if not issubclass(w.category, ImportWarning)] == []


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_items(n) -> None:
    with pytest.raises(ValueError, match="at least 3 items"):
        umap_2d(np.ones((n, 4)))


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match="2-D"):
        umap_2d(np.ones(10))


def test_without_umap_a_map_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # import raises ModuleNotFoundError
    with pytest.raises(
        UserError, match=r"with umap, which is not installed: .*embedforge\[report\]"
    ):
        umap_2d(np.ones((10, 4)))
