"""From a recipe to the parts it names, in one hop each: data, model, loss, optimizer, schedule."""

import math
import os

import pandas as pd
import torch
from torch import nn

from embedforge.config import Section, Shapes
from embedforge.data.palettes import Palettes
from embedforge.data.source import ImageDataConfig, SetDataConfig
from embedforge.data.split import HeldOut, ImageSplit
from embedforge.encoders.embedder import Embedder
from embedforge.encoders.projection_head import ProjectionHead
from embedforge.errors import UserError
from embedforge.losses import CrossBatchMemory, Projected
from embedforge.recipe import Recipe
from embedforge.registry import DATA_SOURCES, ENCODERS, LOSSES, METHODS, SET_ENCODERS
from embedforge.views.image_pipeline import ImageViews
from embedforge.views.set_views import SetViews


def build_data(
    section: ImageDataConfig, held_out: HeldOut | None = None, *, allow_missing: bool = False
) -> ImageSplit:
    """The recipe's images as a train/test split, by its data source's entry.

    ``held_out``: a run's recorded split, found again by id (see :mod:`embedforge.data.split`);
    without it the split is drawn from ``data.seed``. ``allow_missing`` drops recorded items
    the data no longer has (re-scoring on changed data).
    """
    return DATA_SOURCES[section.source].target.split(section, held_out, allow_missing)


def build_palettes(
    section: SetDataConfig, source: str | os.PathLike[str] | pd.DataFrame | None = None
) -> Palettes:
    """Sets read as the recipe says: from ``source`` when given (data to embed), else the
    recipe's own (see :mod:`embedforge.data.palette_source`)."""
    return DATA_SOURCES[section.source].target.read(section, source)


def build_set_encoder(section: Section, *, in_features: int) -> nn.Module:
    """The set encoder itself: its (B, dim) output is the embedding (no head, no squashing)."""
    return SET_ENCODERS[section.name].target(section, Shapes(in_features=in_features))


def build_set_views(recipe: Recipe) -> SetViews:
    """The recipe's set views (the :class:`SetViews` defaults when the section is absent)."""
    return recipe.set_views or SetViews()


def build_model(recipe: Recipe, *, image_size: int, in_channels: int) -> nn.Sequential:
    """Trunk then embedder: ``model[0]`` is the trunk, ``model[1]`` the embedder."""
    shapes = Shapes(image_size=image_size, in_channels=in_channels)
    trunk = ENCODERS[recipe.encoder.name].target(recipe.encoder, shapes)
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
    model: nn.Module | None = None,
) -> nn.Module:
    """The recipe's loss, with the heads it trains (class weights, VAE decoder, projection).

    With a ``memory`` section the loss is wrapped in :class:`CrossBatchMemory`; with a
    ``projection`` section in :class:`Projected` (outermost) and sees the head's output;
    ``image_size`` and ``in_channels`` are the VAE's images. A recipe's
    ``method`` is built instead, around ``model`` (a momentum target copies it).
    """
    projection = recipe.projection
    sets = recipe.encoder.name in SET_ENCODERS
    embedding_dim = recipe.encoder.dim if sets else recipe.embedder.dim
    if recipe.method is not None:
        if model is None:
            raise ValueError(f"method {recipe.method.name!r} is built around its model")
        build_method = METHODS[recipe.method.name].target
        return build_method(recipe.method, Shapes(embedding_dim=embedding_dim), model)
    shapes = Shapes(
        embedding_dim=projection.dim if projection else embedding_dim,  # what the loss sees
        num_classes=num_classes,
        image_size=image_size or 0,
        in_channels=in_channels or 0,
    )
    loss = LOSSES[recipe.loss.name].target(recipe.loss, shapes)
    if recipe.memory is not None:
        loss = CrossBatchMemory(loss, shapes.embedding_dim, memory_size=recipe.memory.size)
    if projection is None:
        return loss
    head = ProjectionHead(embedding_dim, projection.hidden_dim, projection.dim)
    return Projected(head, loss)


def build_views(recipe: Recipe) -> ImageViews | None:
    """The recipe's image views (the section is the pipeline), or None without a section."""
    return recipe.views


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
