"""FAISS index: build, save, load, search."""
