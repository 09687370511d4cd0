"""2-D maps of embeddings with UMAP, to look at which items an encoder puts together.

Why UMAP: it keeps each item's neighbourhood (which is what retrieval uses) and,
unlike t-SNE, some of the global layout, in O(n log n). McInnes, Healy and
Melville, "UMAP: Uniform Manifold Approximation and Projection", 2018,
arXiv:1802.03426. Distances and areas on the map mean little; clusters and
which colours mix do.
"""

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from embedforge.evaluate.rsm import sample_items
from embedforge.extras import require
from embedforge.metrics.arrays import ArrayLike, as_embeddings

MIN_ITEMS = 3
"""UMAP needs at least 2 neighbours per item, so 3 items."""


@dataclass(frozen=True)
class Projection:
    """Items placed in the plane.

    Attributes:
        coords: (m, 2) float32 positions.
        index: (m,) int64 positions of the mapped items among the original ones,
            so that ``labels[index]`` colours the map.

    >>> rng = np.random.default_rng(0)
    >>> projection = umap_2d(rng.normal(size=(30, 8)), max_items=20)
    >>> projection.coords.shape, projection.index.shape
    ((20, 2), (20,))
    """

    coords: np.ndarray
    index: np.ndarray


def require_umap() -> ModuleType:
    """umap-learn, or the UserError naming the ``[report]`` extra. ~2 s to import (numba,
    pynndescent): paid only when a map is drawn."""
    return require("umap", "report", "the map of the embeddings is computed")


def umap_2d(
    embeddings: ArrayLike,
    *,
    seed: int = 0,
    max_items: int = 5000,
    n_neighbors: int = 15,
    metric: str = "cosine",
) -> Projection:
    """A seeded 2-D UMAP of the embeddings (n, d), torch or numpy.

    With more than ``max_items`` items, a random subset of ``max_items``
    (depending only on ``seed``) is mapped: a seed makes umap-learn run on one
    thread, where 5000 items take ~5 s and 10^5 would take many minutes.
    The first call in a process also spends 10–40 s compiling numba code. The
    same seed and input give the same map on the CPU.

    ``n_neighbors`` (the size of the neighbourhood UMAP keeps: small values
    favour local detail, large ones the global layout) is clipped to m - 1 for
    tiny inputs. ``metric`` is any umap-learn metric; cosine matches the
    similarity most embeddings are trained for.
    """
    x = as_embeddings(embeddings, "embeddings")
    if len(x) < MIN_ITEMS:
        raise ValueError(f"a UMAP map needs at least {MIN_ITEMS} items; got {len(x)}")
    umap = require_umap()

    index = sample_items(len(x), max_items, seed=seed)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, len(index) - 1),
        metric=metric,
        # the default spectral start needs more items than its 3 eigenvectors
        init="spectral" if len(index) > MIN_ITEMS else "random",
        random_state=seed,
        n_jobs=1,  # what random_state imposes anyway; saying so avoids umap's warning about it
    )
    chosen = x[torch.from_numpy(index)].detach().cpu().float().numpy()  # (m, d), only these copied
    coords = reducer.fit_transform(chosen)
    return Projection(np.asarray(coords, dtype=np.float32), index)
