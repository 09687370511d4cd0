"""From a recipe to the parts it names, in one hop each: data, model, loss, optimizer, schedule."""

import math
import os

import numpy as np
import pandas as pd
import torch
from torch import nn

from embedforge.data.digits import digits_images
from embedforge.data.dsprites import dsprites
from embedforge.data.image_folder import ImageFolder
from embedforge.data.lazy_images import LazyImages
from embedforge.data.palettes import Palettes, read_palettes
from embedforge.data.split import HeldOut, ImageSplit, stratified_split, unique_index
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.encoders.deep_sets import DeepSets
from embedforge.encoders.embedder import Embedder
from embedforge.encoders.projection_head import ProjectionHead
from embedforge.encoders.raster_cnn import RasterCNN
from embedforge.encoders.set_transformer import SetTransformer
from embedforge.encoders.small_cnn import SmallCNN
from embedforge.encoders.timm_trunk import TimmTrunk
from embedforge.errors import UserError
from embedforge.losses import (
    ArcFaceLoss,
    ContrastiveLoss,
    CosineTripletLoss,
    NTXentLoss,
    Projected,
    SoftmaxClassifierLoss,
    SupConLoss,
    TripletMarginLoss,
    VAELoss,
)
from embedforge.recipe import DataSection, PaletteDataSection, Recipe, SetEncoderSection
from embedforge.views.image_views import ImageViews
from embedforge.views.set_views import SetViews

LOSSES: dict[str, type[nn.Module]] = {
    "triplet_margin": TripletMarginLoss,
    "contrastive": ContrastiveLoss,
    "ntxent": NTXentLoss,
    "cosine_triplet": CosineTripletLoss,
    "supcon": SupConLoss,
    "arcface": ArcFaceLoss,
    "softmax": SoftmaxClassifierLoss,
    "vae": VAELoss,
}


def build_data(
    section: DataSection, held_out: HeldOut | None = None, *, allow_missing: bool = False
) -> ImageSplit:
    """The recipe's images as a train/test split (see :class:`DataSection`).

    ``held_out``: a run's recorded split, found again by id (see :mod:`embedforge.data.split`);
    without it the split is drawn from ``data.seed``. ``allow_missing`` drops recorded items
    the data no longer has (re-scoring on changed data).
    """
    if section.source == "image_folder":
        return _image_folder_split(section, held_out, allow_missing)
    if section.source == "digits":
        images, labels = digits_images()
    else:
        generated = dsprites(section.size or 20_000, section.seed)
        images, labels = generated.images, generated.labels
    ids = np.arange(len(labels))  # the position in the generated set
    if held_out is None:
        train_idx, test_idx = stratified_split(labels, section.test_fraction, section.seed)
    else:
        source = f"data.source {section.source!r}"
        train_idx, test_idx = held_out.positions(ids, source=source, allow_missing=allow_missing)
    return ImageSplit.select(images, labels, ids, train_idx, test_idx)


IN_MEMORY_LIMIT = 2 * 1024**3
"""``data.storage: auto`` keeps a folder's decoded images in memory up to this many bytes."""


def _image_folder_split(
    section: DataSection, held_out: HeldOut | None = None, allow_missing: bool = False
) -> ImageSplit:
    """The folder split by image, seeded; its images decoded into memory or read per batch."""
    folder = ImageFolder(
        section.root,
        section.csv,
        image_size=section.image_size,
        channels=section.channels,
        allow_outside_root=section.allow_outside_root,
    )
    ids = np.array(folder.image_names, dtype=object)
    if held_out is None:
        unique_index(ids, str(section.csv))
        order = torch.randperm(len(folder), generator=torch.Generator().manual_seed(section.seed))
        test_count = max(1, round(section.test_fraction * len(folder)))
        test_idx, train_idx = order[:test_count], order[test_count:]
    else:
        train_idx, test_idx = held_out.positions(
            ids, source=str(section.csv), allow_missing=allow_missing
        )
    train: torch.Tensor | LazyImages = LazyImages(folder, train_idx)
    test: torch.Tensor | LazyImages = LazyImages(folder, test_idx)
    decoded_bytes = len(folder) * folder.channels * folder.image_size**2 * 4  # float32
    if section.storage == "memory" or (
        section.storage == "auto" and decoded_bytes <= IN_MEMORY_LIMIT
    ):
        train, test = train[:], test[:]  # decoded once, in parallel
    labels = folder.labels
    return ImageSplit(
        train, labels[train_idx], test, labels[test_idx], ids[train_idx], ids[test_idx]
    )


SET_ENCODERS: dict[str, type[nn.Module]] = {
    "deep_sets": DeepSets,
    "set_transformer": SetTransformer,
    "raster_cnn": RasterCNN,
}


def build_palettes(
    section: PaletteDataSection, source: str | os.PathLike[str] | pd.DataFrame | None = None
) -> Palettes:
    """Palettes read as the recipe says: from ``source`` when given (data to embed), else the
    recipe's table, else ``size`` synthetic objects."""
    if source is None:
        source = section.path
    if source is None:
        source = synthetic_palettes(section.size, section.seed).rows
    return read_palettes(
        source,
        id_column=section.id_column,
        weight_column=section.weight_column,
        feature_columns=section.feature_columns,
        colour_space=section.colour_space,
        max_rows=section.max_rows,
    )


def build_set_encoder(section: SetEncoderSection, *, in_features: int) -> nn.Module:
    """The set encoder itself: its (B, dim) output is the embedding (no head, no squashing)."""
    options = section.model_dump(exclude={"name"})
    return SET_ENCODERS[section.name](in_features=in_features, **options)


def build_set_views(recipe: Recipe) -> SetViews:
    """The recipe's set views (the :class:`SetViews` defaults when the section is absent)."""
    return SetViews(**recipe.set_views.model_dump()) if recipe.set_views else SetViews()


def build_model(recipe: Recipe, *, image_size: int, in_channels: int) -> nn.Sequential:
    """Trunk then embedder: ``model[0]`` is the trunk, ``model[1]`` the embedder."""
    encoder = recipe.encoder
    if encoder.name == "timm":
        trunk = TimmTrunk(
            model_name=encoder.model_name, in_channels=in_channels, weights=encoder.weights
        )
    else:
        trunk = SmallCNN(
            image_size=image_size, in_channels=in_channels, feature_dim=encoder.feature_dim
        )
    section = recipe.embedder
    if not section.linear and section.dim != trunk.feature_dim:
        raise UserError(
            f"embedder.linear is false, so embedder.dim ({section.dim}) must equal the "
            f"trunk's feature size ({trunk.feature_dim})"
        )
    embedder = Embedder(
        trunk.feature_dim, section.dim if section.linear else None, normalize=section.normalize
    )
    return nn.Sequential(trunk, embedder)


def build_loss(
    recipe: Recipe,
    *,
    num_classes: int,
    image_size: int | None = None,
    in_channels: int | None = None,
) -> nn.Module:
    """The recipe's loss, with the heads it trains (class weights, VAE decoder, projection).

    With a ``projection`` section the loss is wrapped in :class:`Projected` and sees the
    head's output; ``image_size`` and ``in_channels`` are the VAE's images.
    """
    name, options = recipe.loss.name, recipe.loss.model_dump(exclude={"name"})
    projection = recipe.projection
    sets = isinstance(recipe.encoder, SetEncoderSection)
    embedding_dim = recipe.encoder.dim if sets else recipe.embedder.dim
    size = projection.dim if projection else embedding_dim  # what the loss sees
    if name in ("arcface", "softmax"):
        loss = LOSSES[name](num_classes, size, **options)
    elif name == "vae":
        if image_size is None or in_channels is None:
            raise ValueError("loss 'vae' needs the image_size and in_channels of its images")
        loss = VAELoss(size, image_size=image_size, channels=in_channels, **options)
    else:
        loss = LOSSES[name](**options)
    if projection is None:
        return loss
    head = ProjectionHead(embedding_dim, projection.hidden_dim, projection.dim)
    return Projected(head, loss)


def build_views(recipe: Recipe) -> ImageViews | None:
    if recipe.views is None:
        return None
    return ImageViews(**recipe.views.model_dump(exclude={"pair"}))


def build_optimizer(recipe: Recipe, model: nn.Module, loss: nn.Module) -> torch.optim.Optimizer:
    """One optimizer over trunk, embedder and loss parameters, each its own group.

    A model that is not a (trunk, embedder) ``nn.Sequential`` (a set encoder) is one
    "encoder" group.

    Every trainable parameter must be in it: a re-id notebook once built the
    embedder's and ArcFace's optimizers over the trunk's parameters, so neither
    was ever trained. :func:`check_optimizer_covers` makes that impossible.
    """
    if isinstance(model, nn.Sequential):
        parts = [("trunk", model[0]), ("embedder", model[1])]
    else:
        parts = [("encoder", model)]
    groups = [
        {"params": list(part.parameters()), "name": name} for name, part in [*parts, ("loss", loss)]
    ]
    groups = [group for group in groups if group["params"]]
    settings = recipe.optimizer
    if settings.name == "sgd":
        optimizer = torch.optim.SGD(
            groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
    else:
        kind = torch.optim.AdamW if settings.name == "adamw" else torch.optim.Adam
        optimizer = kind(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    check_optimizer_covers(optimizer, model, loss)
    return optimizer


def check_optimizer_covers(optimizer: torch.optim.Optimizer, *modules: nn.Module) -> None:
    """Raise if a trainable parameter of ``modules`` is not optimised by ``optimizer``."""
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for module in modules:
        for name, parameter in module.named_parameters():
            if parameter.requires_grad and id(parameter) not in optimised:
                raise RuntimeError(f"parameter {type(module).__name__}.{name} is not optimised")


def build_schedule(
    recipe: Recipe, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-optimizer-step learning-rate schedule."""
    total = recipe.train.epochs * steps_per_epoch
    lr = recipe.optimizer.lr
    if recipe.schedule.name == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    if recipe.schedule.name == "cosine":
        warmup = min(int(recipe.schedule.warmup_epochs * steps_per_epoch), total - 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
