"""Clustered vectors written as an embeddings table, shared by the IVF-PQ tests."""

from pathlib import Path

import numpy as np
from tests.index.test_embedding_parts import write_parts

COUNT, DIM = 20_000, 16


def clustered(count: int, dim: int, seed: int) -> np.ndarray:
    """``count`` draws from one Gaussian mixture per ``dim`` (64 components whose spreads
    overlap, so neighbours cross lists); ``seed`` picks the draws, not the mixture, so
    queries drawn with another seed come from the same distribution as the table."""
    centres = np.random.default_rng(dim).normal(size=(64, dim))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, 64, count)] + rng.normal(size=(count, dim))
    return points.astype(np.float32)


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k nearest vectors of each query, by brute force."""
    distances = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """The share of the exact k nearest rows among the k found, over all queries."""
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact, strict=True)])
    )


def write_clustered_parts(folder: Path, ids: list | None = None) -> tuple[Path, np.ndarray]:
    """The 20,000 x 16 mixture as four part files of uneven size."""
    vectors = clustered(COUNT, DIM, seed=0)
    ids = [f"item-{i:05d}" for i in range(COUNT)] if ids is None else ids
    return write_parts(folder, ids, vectors, [6000, 1000, 9000, 4000]), vectors
