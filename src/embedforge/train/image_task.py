"""Training on images: metric learning with labels, self-supervised with two views, or a VAE.

Batches are index tensors into the images (no DataLoader): into a tensor in
memory, or into :class:`~embedforge.data.lazy_images.LazyImages`, which reads
them from disk, the next batch in the background while the model computes this
one. Each *global* batch is drawn once, from (seed, epoch) only, and
under torchrun every rank takes its contiguous slice; the losses then gather
the slices back (:func:`~embedforge.train.distributed.global_batch_loss`), so
N processes see exactly the batches one process would. The views too: each rank draws their
parameters for the whole global batch and keeps its own rows
(:class:`~embedforge.views.batch_rows.BatchRows`), so every image gets the view one process
would give it.

The VAE (loss ``vae``) reconstructs the un-augmented images from their embeddings; its
reparameterisation noise is drawn from the step's generator, like the views.
"""

import math
from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch
from torch import Tensor, nn

from embedforge.data.lazy_images import LazyImages
from embedforge.data.prefetch import prefetch
from embedforge.data.split import ImageSplit
from embedforge.evaluate.retrieval import retrieval_metrics
from embedforge.losses import VAELoss
from embedforge.progress import progress_bar
from embedforge.recipe import Recipe
from embedforge.train.build import build_loss, build_model, build_views
from embedforge.train.distributed import gather_with_grad, global_batch_loss, world_size
from embedforge.train.pk_sampler import PKSampler
from embedforge.train.precision import in_float32
from embedforge.train.task import rank_rows, rank_slice, shuffled_batches

T = TypeVar("T")


def _read_ahead(batches: Iterable[T], images: Tensor | LazyImages) -> Iterable[T]:
    """``batches``, read in the background when ``images`` are on disk (memory needs no read)."""
    return prefetch(batches) if isinstance(images, LazyImages) else batches


@torch.no_grad()
def embed_images(
    model: nn.Module,
    images: Tensor | LazyImages,
    device: torch.device,
    batch: int = 1024,
    *,
    progress: bool = False,
) -> Tensor:
    """Embeddings in eval mode, batch by batch, on the CPU."""
    model.eval()
    chunks = _read_ahead(images.split(batch), images)
    total = math.ceil(len(images) / batch)
    chunks = progress_bar(chunks, show=progress, total=total, desc="embedding", unit="batch")
    return torch.cat([model(chunk.to(device)).float().cpu() for chunk in chunks])


class ImageTask:
    """Images from a train/test split; validation is retrieval of test images against train."""

    def __init__(self, recipe: Recipe, split: ImageSplit, device: torch.device) -> None:
        _, channels, size, _ = split.train_images.shape
        self.model = build_model(recipe, image_size=size, in_channels=channels).to(device)
        num_classes = int(split.train_labels.max()) + 1
        self.loss_fn = build_loss(
            recipe, num_classes=num_classes, image_size=size, in_channels=channels
        ).to(device)
        self.views = build_views(recipe)
        self.both_views = recipe.views is None or recipe.views.pair == "both"
        self.self_supervised = recipe.train.self_supervised
        self.split, self.device, self.seed = split, device, recipe.train.seed
        self.held_out, self.fingerprint = split.held_out, split.fingerprint()

        self.sampler = None
        self.batch_size = recipe.train.batch_size
        if recipe.sampler is not None:
            self.sampler = PKSampler(
                split.train_labels, p=recipe.sampler.p, k=recipe.sampler.k, seed=self.seed
            )
            self.batch_size = self.sampler.batch_size
        if self.batch_size % world_size():
            raise ValueError(
                f"the global batch of {self.batch_size} does not split over {world_size()} ranks"
            )

    def num_batches(self) -> int:
        if self.sampler is not None:
            return self.sampler.num_batches
        return len(self.split.train_labels) // self.batch_size  # a ragged last batch is dropped

    def _global_batches(self, epoch: int) -> Iterator[Tensor]:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            yield from (torch.tensor(batch) for batch in self.sampler.batches())
            return
        count = len(self.split.train_labels)
        yield from shuffled_batches(count, self.batch_size, seed=self.seed, epoch=epoch)

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        split = self.split
        local = (rank_slice(index) for index in self._global_batches(epoch))
        read = ((split.train_images[i], split.train_labels[i]) for i in local)
        for images, labels in _read_ahead(read, split.train_images):
            yield images.to(self.device), labels.to(self.device)

    def batch_loss(self, batch: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        images, labels = batch
        if isinstance(self.loss_fn, VAELoss):  # redraws the images themselves: no views
            # gathered although the loss is per image: the decoder is a loss parameter, outside
            # DDP, so every rank must compute the same global loss to get the same gradient
            z = gather_with_grad(self.model(images))
            return in_float32(self.loss_fn, z, gather_with_grad(images), generator)
        rows = rank_rows(self.batch_size)  # the views' draws cover the global batch
        if self.self_supervised:
            both = self.views is not None and self.both_views
            first = self.views(images, generator, rows) if both else images
            second = self.views(images, generator, rows) if self.views else images
            return global_batch_loss(self.loss_fn, self.model(first), self.model(second))
        inputs = self.views(images, generator, rows) if self.views else images
        return global_batch_loss(self.loss_fn, self.model(inputs), labels)

    def validate(self) -> dict[str, float]:
        split = self.split
        return retrieval_metrics(
            embed_images(self.model, split.test_images, self.device),
            split.test_labels,
            embed_images(self.model, split.train_images, self.device),
            split.train_labels,
        )
