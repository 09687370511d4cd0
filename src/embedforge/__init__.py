"""embedforge: learn embeddings for sets of weighted rows and for images, then use them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("embedforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["PaletteEmbedder", "__version__"]


def __getattr__(name: str) -> object:
    """Lazy public names, so ``import embedforge`` does not load torch (PEP 562)."""
    if name == "PaletteEmbedder":
        from embedforge.estimators import PaletteEmbedder

        return PaletteEmbedder
    raise AttributeError(f"module 'embedforge' has no attribute {name!r}")
