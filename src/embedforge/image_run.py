"""Embed image files with a run trained on an image folder: the re-identification use.

A re-id team indexes its known photos and searches it with new ones, which come as a
folder of files (or a CSV naming them), not as the run's own split. The images are read
the way the run's recipe read its training folder (size, channels) and streamed from
disk batch by batch, so a gallery of any size can be embedded.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from embedforge.build import build_model
from embedforge.data.image_folder_source import ImageFolderConfig
from embedforge.data.lazy_images import LazyImages
from embedforge.errors import UserError
from embedforge.files.run_folder import load_best, load_run_recipe, save_best_model
from embedforge.inference import embed_images
from embedforge.recipe import Recipe


@dataclass
class ImageRun:
    """A model trained on an image folder, with the recipe that built it."""

    recipe: Recipe
    model: nn.Module

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> "ImageRun":
        data = recipe.data
        if not isinstance(data, ImageFolderConfig):
            raise UserError(
                f"the recipe's data.source is {data.source!r}; embedding image files needs a "
                "run trained on an image folder (data.source 'image_folder')"
            )
        return cls(
            recipe, build_model(recipe, image_size=data.image_size, in_channels=data.channels)
        )

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> "ImageRun":
        """Read ``recipe.yaml`` and the best weights of a run folder."""
        run = cls.from_recipe(load_run_recipe(run_dir))
        load_best(run_dir, run.model)
        return run

    def save(self, run_dir: str | os.PathLike[str]) -> None:
        save_best_model(run_dir, self.recipe.to_yaml(), self.model)

    def embed(
        self,
        source: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ) -> pd.DataFrame:
        """One row per image (index: ``image``, its file name), columns ``emb_0 … emb_{d-1}``.

        ``source``: a folder (every image file in it) or a CSV with an ``image`` column of
        file names relative to the CSV's folder (a ``label`` column, if any, is ignored).
        """
        source = Path(source)
        data = self.recipe.data
        if source.is_dir():
            folder = data.reader(source, None, labelled=False)
        else:
            folder = data.reader(source.parent, source, labelled=False)
        images = LazyImages(folder, torch.arange(len(folder)))
        device = torch.device(device)
        vectors = embed_images(self.model.to(device), images, device, progress=progress)
        columns = [f"emb_{i}" for i in range(vectors.shape[1])]
        index = pd.Index(folder.image_names, name="image")
        return pd.DataFrame(vectors.numpy(), index=index, columns=columns)
