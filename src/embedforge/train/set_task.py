"""Self-supervised training on sets of weighted rows (colour palettes): two views per object.

There are no labels: each object's two random views (:class:`~embedforge.views.set_views.
SetViews`) must land close and other objects' views far. All the objects are trained on in
one model (no folds, so every vector lives in the same space), except a small seeded subset
held out for the validation metric only: ``data.validation_objects`` (default 1,000, at most
a fifth of the objects), or the split a run recorded (``held_out``, found by object id).
The model is the set encoder itself; its output is the embedding, with no squashing.

Losses. NT-Xent (the default) on (view 1, view 2): every other object of the *global* batch
is a negative (gathered across ranks). ``cosine_triplet`` (the original approach): anchor =
view 1, positive = view 2 of the same object, negative = view 2 of the next object in the
global batch (the batch rolled by one; batches are shuffled, so the pairing is random).

Validation: view matching on the held-out objects (:mod:`embedforge.metrics.view_matching`),
with the loss's own trained parts (a projection head) in eval mode, so ``embedforge
evaluate`` on the best checkpoint gives the validation loss training logged for that epoch.

Batches are drawn from sets held in memory; each global batch depends on (seed, epoch) only.
Under torchrun every rank makes the views of the whole global batch and then encodes its own
contiguous slice of them: a set view's draws are shaped by the global batch's padded width
and the Dirichlet step's gamma sampler draws a whole tensor from one forked seed, so neither
can be sliced by rank, and views cost little next to the encoder. Each rank thus encodes
exactly the views one process would (the embeddings are then gathered for the loss).
"""

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from embedforge.build import build_loss, build_set_encoder, build_set_views
from embedforge.data.palettes import Palettes
from embedforge.data.set_batch import SetBatch
from embedforge.data.source import SetDataConfig
from embedforge.data.split import HeldOut, split_sets
from embedforge.errors import UserError
from embedforge.inference import embed_sets, forward_by_size, trim_padding
from embedforge.losses.loss_config import views_loss
from embedforge.metrics.view_matching import view_matching
from embedforge.recipe import Recipe
from embedforge.train.distributed import gather_with_grad, world_size
from embedforge.train.hooks import TrainingHooks
from embedforge.train.task import rank_slice, shuffled_batches

TRAINING_CHUNK = 256
"""Sets per forward pass in training (see :func:`forward_by_size`). Measured on the default
palette recipe (batches of 512, 2 CPU threads): 256 made a step 9% faster than one pass
of 512; 128 and 64 gained less, their matrix products being too small."""


def encode_global(model: nn.Module, sets: SetBatch) -> Tensor:
    """(B_local, D) embeddings of this rank's sets, gathered into the global batch's with
    gradients (see :mod:`embedforge.train.distributed`)."""
    return gather_with_grad(forward_by_size(model, sets, chunk=TRAINING_CHUNK))


class SetTask(TrainingHooks):
    """Palettes as a :class:`~embedforge.train.task.TrainingTask` (two views, no labels).

    >>> from embedforge.recipe import parse_recipe
    >>> from embedforge.build import build_palettes
    >>> recipe = parse_recipe({"data": {"source": "palettes", "size": 50},
    ...                        "encoder": {"name": "deep_sets", "dim": 8}})
    >>> task = SetTask(recipe, build_palettes(recipe.data), torch.device("cpu"))
    >>> len(task.validation_index), task.num_batches()  # a fifth held out; 40 in one batch
    (10, 1)
    >>> sorted(task.validate())  # view matching and the collapse monitors
    ['alignment', 'dimension_std', 'rankme', 'uniformity', 'validation_loss', 'view_precision_at_1']
    """

    def __init__(
        self,
        recipe: Recipe,
        palettes: Palettes,
        device: torch.device,
        held_out: HeldOut | None = None,
        *,
        allow_missing: bool = False,
    ) -> None:
        if not isinstance(recipe.data, SetDataConfig):
            raise ValueError("SetTask needs a recipe with data.source 'palettes'")
        sets = palettes.sets
        split = split_sets(
            palettes,
            validation_objects=recipe.data.validation_objects,
            seed=recipe.data.seed,
            held_out=held_out,
            allow_missing=allow_missing,
            source=recipe.data.path or "the synthetic palettes",
        )
        self.train_index, self.validation_index = split.train_index, split.validation_index
        self.held_out, self.fingerprint = split.held_out, split.fingerprint
        self.train_sets = sets[self.train_index]
        self.validation_sets = sets[self.validation_index]

        self.model = build_set_encoder(recipe.encoder, in_features=sets.num_features).to(device)
        self.loss_fn = build_loss(recipe, num_classes=0, model=self.model).to(device)
        self.calls = recipe.loss_calls()  # how the loss is called (LossConfig.calls)
        self.views = build_set_views(recipe)
        self.device, self.seed = device, recipe.train.seed
        # a batch never exceeds the training objects, and splits evenly over the ranks
        self.batch_size = min(recipe.train.batch_size, len(self.train_index))
        self.batch_size -= self.batch_size % world_size()
        if self.batch_size < 2:
            raise UserError(
                f"{len(self.train_index)} training objects over {world_size()} ranks leave "
                "fewer than 2 per batch"
            )

    def num_batches(self) -> int:
        return len(self.train_index) // self.batch_size  # a ragged last batch is dropped

    def batches(self, epoch: int) -> Iterator[SetBatch]:
        """The global batches, on every rank (views are made of the whole; see the module)."""
        count = len(self.train_index)
        for index in shuffled_batches(count, self.batch_size, seed=self.seed, epoch=epoch):
            yield trim_padding(self.train_sets[index]).to(self.device)

    def batch_loss(self, batch: SetBatch, generator: torch.Generator) -> Tensor:
        """The loss of a global ``batch``: its views, this rank's slice of them encoded."""
        first = rank_slice(self.views(batch, generator))
        second = rank_slice(self.views(batch, generator))
        return views_loss(self.loss_fn, self.calls, encode_global, self.model, first, second)

    def validate(self) -> dict[str, float]:
        self.loss_fn.eval()  # a projection head's batch norm uses its running statistics
        return view_matching(
            self.model, self.views, self.validation_sets, self.device, self._loss_of_views
        )

    def _loss_of_views(self, first: SetBatch, second: SetBatch) -> Tensor:
        """Every rank embeds all the held-out objects: no gather."""
        return views_loss(self.loss_fn, self.calls, self._embed, self.model, first, second)

    def _embed(self, model: nn.Module, sets: SetBatch) -> Tensor:
        return embed_sets(model, sets, self.device).to(self.device)
