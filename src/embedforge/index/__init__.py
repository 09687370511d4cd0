"""FAISS index: build, save, load, search (exact torch search when FAISS is absent)."""

from embedforge.index.embedding_index import EmbeddingIndex, SearchResult

__all__ = ["EmbeddingIndex", "SearchResult"]
