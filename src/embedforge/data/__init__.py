"""Sources: palettes, images, bundled and generated data sets."""

from embedforge.data.palettes import Palettes, read_palettes
from embedforge.data.set_batch import SetBatch
from embedforge.data.synthetic_palettes import SyntheticPalettes, synthetic_palettes

__all__ = ["Palettes", "SetBatch", "SyntheticPalettes", "read_palettes", "synthetic_palettes"]
