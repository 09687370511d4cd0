"""embedforge: learn embeddings for sets of weighted rows and for images, then use them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("embedforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
