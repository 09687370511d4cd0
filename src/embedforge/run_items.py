"""A trained run's embeddings of its own held-out and training items, with what labels them.

``evaluate``, ``report`` and ``embed RUN_DIR`` all start from here, so the split a run is
measured on is always the one it was trained against (its recorded split). The best
checkpoint is used, in eval mode, on the CPU. Below ``train`` and ``evaluate``: it builds the
parts from the recipe itself (:mod:`embedforge.build`) and embeds with
:mod:`embedforge.inference`.

Labels. Images have classes (digits, dSprites shapes, re-id individuals).
Palettes have none, except the bundled synthetic ones, whose hidden hue family
is known (regenerated from the recipe's seed) and serves as a label; a palette
run on a user's table is measured by view matching only, and its maps are
coloured by the number of colours per object.
"""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from embedforge.build import (
    build_data,
    build_loss,
    build_model,
    build_palettes,
    build_set_encoder,
    build_set_views,
)
from embedforge.data.lazy_images import LazyImages
from embedforge.data.set_batch import SetBatch
from embedforge.data.source import ImageDataConfig, SetDataConfig
from embedforge.data.split import split_sets
from embedforge.files.data_pin import DataPin, check_files, check_items, read_pin
from embedforge.files.run_folder import load_best, load_run_recipe
from embedforge.inference import embed_images, embed_sets
from embedforge.losses.loss_config import views_loss
from embedforge.metrics.view_matching import view_matching
from embedforge.recipe import Recipe
from embedforge.registry import DATA_SOURCES

CPU = torch.device("cpu")


@dataclass(frozen=True)
class RunEmbeddings:
    """Held-out (query) and training (reference) embeddings of a run.

    Attributes:
        recipe: the run's recipe.
        query, reference: (m, d) and (n, d) float32.
        query_ids, reference_ids: (m,) and (n,) item ids: object ids for palettes, file
            names for an image folder, positions in the generated set for digits and dSprites.
        query_labels, reference_labels: int64 (m,) and (n,), or None (unlabelled palettes).
        label_name: what the labels are ("digit", "shape", "individual", "hue family").
        label_names: names of the label codes, when there are few enough to list.
        classes: names of all the label codes as the data wrote them, however many (an image
            folder's CSV labels: what the report's captions show), or None.
        query_values: (m,) what colours maps of the queries: the labels, or set sizes.
        value_name: the name of ``query_values``.
        view_matching: palettes only: the run's own validation (two views of each held-out
            object must find each other).
        query_sets, reference_sets: palettes only: the held-out and training sets themselves
            (what exact EMD compares, :mod:`embedforge.metrics.emd`); None for images.
        feature_names: the sets' features (``weight`` then the colour), empty for images.
        query_images, reference_images: images only: the held-out and training images
            ``(m, C, S, S)`` and ``(n, C, S, S)`` in [0, 1] (a tensor, or read from disk when
            indexed), what the report's thumbnails show; None for palettes.
        data_changed: the data differs from what the run was trained on (scored anyway, on
            the recorded items still there, as ``allow_changed_data`` asked).
    """

    recipe: Recipe
    query: Tensor
    reference: Tensor
    query_ids: np.ndarray
    reference_ids: np.ndarray
    query_labels: Tensor | None
    reference_labels: Tensor | None
    label_name: str
    label_names: tuple[str, ...] | None
    query_values: np.ndarray
    value_name: str
    view_matching: dict[str, float] = field(default_factory=dict)
    query_sets: SetBatch | None = None
    reference_sets: SetBatch | None = None
    feature_names: tuple[str, ...] = ()
    query_images: Tensor | LazyImages | None = None
    reference_images: Tensor | LazyImages | None = None
    classes: tuple[str, ...] | None = None
    data_changed: bool = False

    @property
    def categorical(self) -> bool:
        """Whether ``query_values`` are class labels (else a count to colour continuously)."""
        return self.query_labels is not None


def load_run_embeddings(
    run_dir: str | os.PathLike[str], *, allow_changed_data: bool = False
) -> RunEmbeddings:
    """Embed the held-out and training items of ``run_dir`` with its best checkpoint.

    The items are the run's recorded split, looked up in its data as it is now; data that
    changed since training is a UserError naming the file, unless ``allow_changed_data``
    (then the recorded items still present are scored; see :mod:`embedforge.files.data_pin`).
    """
    run_dir = Path(run_dir)
    recipe = load_run_recipe(run_dir)
    pin = read_pin(run_dir)
    files_changed = check_files(run_dir, pin, allow_changed=allow_changed_data)
    if isinstance(recipe.data, SetDataConfig):
        run = _palette_embeddings(recipe, recipe.data, run_dir, pin, allow_changed_data)
    else:
        run = _image_embeddings(recipe, recipe.data, run_dir, pin, allow_changed_data)
    return replace(run, data_changed=files_changed or run.data_changed)


def _image_embeddings(
    recipe: Recipe, data: ImageDataConfig, run_dir: Path, pin: DataPin, allow_changed: bool
) -> RunEmbeddings:
    split = build_data(data, pin.held_out, allow_missing=allow_changed)
    changed = check_items(run_dir, pin, split.fingerprint(), allow_changed=allow_changed)
    _, channels, size, _ = split.train_images.shape
    model = build_model(recipe, image_size=size, in_channels=channels)
    load_best(run_dir, model)
    source = DATA_SOURCES[data.source].target
    label_name, label_names = source.label_name, source.label_names
    return RunEmbeddings(
        recipe=recipe,
        query=embed_images(model, split.test_images, CPU),
        reference=embed_images(model, split.train_images, CPU),
        query_ids=split.held_out.test_ids,
        reference_ids=split.held_out.train_ids,
        query_labels=split.test_labels,
        reference_labels=split.train_labels,
        label_name=label_name,
        label_names=label_names,
        query_values=split.test_labels.numpy(),
        value_name=label_name,
        query_images=split.test_images,
        reference_images=split.train_images,
        classes=split.classes or label_names,
        data_changed=changed,
    )


def _embed_on_cpu(model: nn.Module, sets: SetBatch) -> Tensor:
    return embed_sets(model, sets, CPU)


def _palette_embeddings(
    recipe: Recipe, data: SetDataConfig, run_dir: Path, pin: DataPin, allow_changed: bool
) -> RunEmbeddings:
    palettes = build_palettes(data)
    split = split_sets(
        palettes,
        validation_objects=data.validation_objects,
        seed=data.seed,
        held_out=pin.held_out,
        allow_missing=allow_changed,
        source=data.path or "the synthetic palettes",
    )
    changed = check_items(run_dir, pin, split.fingerprint, allow_changed=allow_changed)
    model = build_set_encoder(recipe.encoder, in_features=palettes.sets.num_features)
    loss_fn = build_loss(recipe, num_classes=0, model=model)
    load_best(run_dir, model, loss_fn)
    train_sets, validation_sets = (
        palettes.sets[split.train_index],
        palettes.sets[split.validation_index],
    )
    query = embed_sets(model, validation_sets, CPU)
    reference = embed_sets(model, train_sets, CPU)
    loss_fn.eval()  # a projection head's batch norm uses its running statistics
    calls = recipe.loss_calls()

    def loss_of(first: SetBatch, second: SetBatch) -> Tensor:
        return views_loss(loss_fn, calls, _embed_on_cpu, model, first, second)

    takes_views = "palette_pairs" not in calls  # an EMD-distilled run's loss takes pairs
    matching = view_matching(
        model, build_set_views(recipe), validation_sets, CPU, loss_of if takes_views else None
    )
    items = {
        "query_ids": split.held_out.test_ids,
        "reference_ids": split.held_out.train_ids,
        "query_sets": validation_sets,
        "reference_sets": train_sets,
        "feature_names": palettes.feature_names,
    }
    source = DATA_SOURCES[data.source].target
    labels = source.labels(data, palettes.ids)  # (n,), or None: a user's table has none
    if labels is not None:  # e.g. the synthetic palettes' hue family
        query_labels = labels[split.validation_index]
        return RunEmbeddings(
            recipe=recipe,
            query=query,
            reference=reference,
            **items,
            query_labels=query_labels,
            reference_labels=labels[split.train_index],
            label_name=source.label_name,
            label_names=source.label_names,
            query_values=query_labels.numpy(),
            value_name=source.label_name,
            view_matching=matching,
            data_changed=changed,
        )
    return RunEmbeddings(
        recipe=recipe,
        query=query,
        reference=reference,
        **items,
        query_labels=None,
        reference_labels=None,
        label_name="",
        label_names=None,
        query_values=validation_sets.mask.sum(dim=1).numpy(),
        value_name="colours in the palette",
        view_matching=matching,
        data_changed=changed,
    )
