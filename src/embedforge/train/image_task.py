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

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from embedforge.build import build_loss, build_model, build_views
from embedforge.data.split import ImageSplit
from embedforge.inference import embed_images, read_ahead
from embedforge.losses.loss_config import views_loss
from embedforge.losses.precision import in_float32
from embedforge.metrics.collapse import collapse_metrics
from embedforge.metrics.retrieval import retrieval_metrics
from embedforge.recipe import Recipe
from embedforge.registry import SAMPLERS
from embedforge.train.distributed import gather_with_grad, global_batch_loss, world_size
from embedforge.train.hooks import TrainingHooks
from embedforge.train.task import rank_rows, rank_slice, shuffled_batches


def _encode(model: nn.Module, images: Tensor) -> Tensor:
    """Embeddings of this rank's images, gathered into the global batch's (with gradients)."""
    return gather_with_grad(model(images))


class ImageTask(TrainingHooks):
    """Images from a train/test split; validation is retrieval of test images against train."""

    def __init__(self, recipe: Recipe, split: ImageSplit, device: torch.device) -> None:
        _, channels, size, _ = split.train_images.shape
        self.model = build_model(recipe, image_size=size, in_channels=channels).to(device)
        num_classes = int(split.train_labels.max()) + 1
        self.loss_fn = build_loss(
            recipe, num_classes=num_classes, image_size=size, in_channels=channels, model=self.model
        ).to(device)
        self.calls = recipe.loss_calls()  # how the loss is called (LossConfig.calls)
        self.views = build_views(recipe)
        self.both_views = recipe.views is None or recipe.views.pair == "both"
        self.second_views = self.views.second_view() if self.views else None  # BYOL: asymmetric
        self.self_supervised = recipe.self_supervised
        self.split, self.device, self.seed = split, device, recipe.train.seed
        self.held_out, self.fingerprint = split.held_out, split.fingerprint()

        self.sampler = None
        self.batch_size = recipe.train.batch_size
        if recipe.sampler is not None:
            build_sampler = SAMPLERS[recipe.sampler.name].target
            self.sampler = build_sampler(recipe.sampler, split.train_labels, self.seed)
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
        for images, labels in read_ahead(read, split.train_images):
            yield images.to(self.device), labels.to(self.device)

    def batch_loss(self, batch: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        images, labels = batch
        if "reconstruction" in self.calls:  # redraws the images themselves: no views
            # gathered although the loss is per image: the decoder is a loss parameter, outside
            # DDP, so every rank must compute the same global loss to get the same gradient
            z = gather_with_grad(self.model(images))
            return in_float32(self.loss_fn, z, gather_with_grad(images), generator)
        rows = rank_rows(self.batch_size)  # the views' draws cover the global batch
        if self.self_supervised:
            both = self.views is not None and self.both_views
            first = self.views(images, generator, rows) if both else images
            second = self.second_views(images, generator, rows) if self.views else images
            return views_loss(self.loss_fn, self.calls, _encode, self.model, first, second)
        inputs = self.views(images, generator, rows) if self.views else images
        return global_batch_loss(self.loss_fn, self.model(inputs), labels)

    def validate(self) -> dict[str, float]:
        """Retrieval of the test images against the training images, and the collapse
        monitors of the test embeddings (:mod:`embedforge.metrics.collapse`)."""
        split = self.split
        test = embed_images(self.model, split.test_images, self.device)
        metrics = retrieval_metrics(
            test,
            split.test_labels,
            embed_images(self.model, split.train_images, self.device),
            split.train_labels,
        )
        return {**metrics, **collapse_metrics(test)}
