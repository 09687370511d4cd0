"""Sources: palettes, images, bundled and generated data sets."""
