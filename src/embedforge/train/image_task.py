"""Training on images: metric learning with labels, or self-supervised with two views."""

from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from embedforge.data.digits import ImageSplit
from embedforge.evaluate.retrieval import retrieval_metrics
from embedforge.recipe import Recipe
from embedforge.train.build import build_loss, build_model, build_views
from embedforge.train.pk_sampler import PKSampler


@torch.no_grad()
def embed_images(
    model: nn.Module, images: Tensor, device: torch.device, batch: int = 1024
) -> Tensor:
    """Embeddings in eval mode, batch by batch, on the CPU."""
    model.eval()
    return torch.cat([model(chunk.to(device)).float().cpu() for chunk in images.split(batch)])


class ImageTask:
    """Images from a train/test split; validation is retrieval of test images against train."""

    def __init__(self, recipe: Recipe, split: ImageSplit, device: torch.device) -> None:
        _, channels, size, _ = split.train_images.shape
        self.model = build_model(recipe, image_size=size, in_channels=channels).to(device)
        num_classes = int(split.train_labels.max()) + 1
        self.loss_fn = build_loss(recipe, num_classes=num_classes).to(device)
        self.views = build_views(recipe)
        self.self_supervised = recipe.train.self_supervised
        self.split, self.device, self.seed = split, device, recipe.train.seed

        dataset = TensorDataset(split.train_images, split.train_labels)
        if recipe.sampler is not None:
            self.sampler = PKSampler(
                split.train_labels, p=recipe.sampler.p, k=recipe.sampler.k, seed=self.seed
            )
            batch_size = self.sampler.batch_size
        else:
            self.shuffle = torch.Generator()
            self.sampler = RandomSampler(dataset, generator=self.shuffle)
            batch_size = recipe.train.batch_size
        # Random batches drop a ragged last batch so batch norm never sees a single item.
        self.loader = DataLoader(
            dataset, batch_size=batch_size, sampler=self.sampler, drop_last=recipe.sampler is None
        )

    def num_batches(self) -> int:
        return len(self.loader)

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        if isinstance(self.sampler, PKSampler):
            self.sampler.set_epoch(epoch)
        else:
            self.shuffle.manual_seed(self.seed * 1_000_003 + epoch)
        for images, labels in self.loader:
            yield images.to(self.device), labels.to(self.device)

    def batch_loss(self, batch: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        images, labels = batch
        if self.self_supervised:
            first, second = (
                (self.views(images, generator), self.views(images, generator))
                if self.views
                else (images, images)
            )
            return self.loss_fn(self.model(first).float(), self.model(second).float())
        inputs = self.views(images, generator) if self.views else images
        return self.loss_fn(self.model(inputs).float(), labels)

    def validate(self) -> dict[str, float]:
        split = self.split
        return retrieval_metrics(
            embed_images(self.model, split.test_images, self.device),
            split.test_labels,
            embed_images(self.model, split.train_images, self.device),
            split.train_labels,
        )
