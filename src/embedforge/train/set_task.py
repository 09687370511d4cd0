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

Validation: view matching on the held-out objects. Two views of each are drawn from a fixed
seed (the same every epoch), embedded in eval mode, and each view-1 embedding queries the
view-2 embeddings: ``view_precision_at_1`` is the fraction whose nearest view 2 is its own
object's (labels = object index). ``validation_loss`` is the training loss on those views,
with the loss's own trained parts (a projection head) in eval mode, so ``embedforge
evaluate`` on the best checkpoint gives the number training logged for that epoch.

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

from embedforge.data.palettes import Palettes
from embedforge.data.set_batch import SetBatch
from embedforge.data.split import HeldOut, fingerprint
from embedforge.errors import UserError
from embedforge.evaluate.retrieval import retrieval_metrics
from embedforge.losses import CosineTripletLoss
from embedforge.progress import progress_bar
from embedforge.recipe import PaletteDataSection, Recipe
from embedforge.train.build import build_loss, build_set_encoder, build_set_views
from embedforge.train.distributed import gather_with_grad, world_size
from embedforge.train.precision import in_float32
from embedforge.train.task import rank_slice, shuffled_batches

TRAINING_CHUNK = 256
"""Sets per forward pass in training (see :func:`forward_by_size`). Measured on the default
palette recipe (batches of 512, 2 CPU threads): 256 made a step 9% faster than one pass
of 512; 128 and 64 gained less, their matrix products being too small."""

VALIDATION_SEED = 20_240_601
"""Seed of the held-out objects' validation views: fixed, so epochs are compared fairly."""


def trim_padding(batch: SetBatch) -> SetBatch:
    """Drop the padding columns no set in ``batch`` uses (sets are packed rows first).

    Set encoders ignore padding, so this changes no embedding; it only saves work
    when a few large sets pad a whole table.
    """
    used = int(batch.mask.any(dim=0).nonzero().max()) + 1 if batch.mask.any() else 1
    return SetBatch(batch.values[:, :used], batch.mask[:, :used])


def forward_by_size(
    model: nn.Module,
    sets: SetBatch,
    *,
    chunk: int,
    device: torch.device | None = None,
    progress: bool = False,
) -> Tensor:
    """``model`` on ``sets`` in chunks of ``chunk`` sets sorted by size; rows in input order.

    Each chunk is padded only to its own largest set, so a few large sets no longer pad the
    whole batch (a set encoder's output does not depend on the other sets it runs with).
    Gradients flow as for one call. ``device``: where the chunks run (default: where they are).
    """
    by_size = sets.sizes.argsort(stable=True)  # (n,)
    outputs = []
    starts = range(0, len(sets), chunk)
    for start in progress_bar(starts, show=progress, desc="embedding", unit="batch"):
        part = trim_padding(sets[by_size[start : start + chunk]])
        part = part.to(device) if device is not None else part
        outputs.append(model(part.values, part.mask).float())  # (chunk, d)
    in_size_order = torch.cat(outputs)  # (n, d)
    rows = by_size.to(in_size_order.device)  # where each output row goes back to
    return torch.empty_like(in_size_order).index_copy(0, rows, in_size_order)


@torch.no_grad()
def embed_sets(
    model: nn.Module,
    sets: SetBatch,
    device: torch.device,
    *,
    batch: int = 1024,
    progress: bool = False,
) -> Tensor:
    """``(n, d)`` float32 embeddings on the CPU, in eval mode, ``batch`` sets at a time."""
    model.eval()
    return forward_by_size(model, sets, chunk=batch, device=device, progress=progress).cpu()


class SetTask:
    """Palettes as a :class:`~embedforge.train.task.TrainingTask` (two views, no labels).

    >>> from embedforge.recipe import parse_recipe
    >>> from embedforge.train.build import build_palettes
    >>> recipe = parse_recipe({"data": {"source": "palettes", "size": 50},
    ...                        "encoder": {"name": "deep_sets", "dim": 8}})
    >>> task = SetTask(recipe, build_palettes(recipe.data), torch.device("cpu"))
    >>> len(task.validation_index), task.num_batches()  # a fifth held out; 40 in one batch
    (10, 1)
    >>> sorted(task.validate())
    ['validation_loss', 'view_precision_at_1']
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
        if not isinstance(recipe.data, PaletteDataSection):
            raise ValueError("SetTask needs a recipe with data.source 'palettes'")
        sets, n = palettes.sets, len(palettes)
        if held_out is None:
            held = min(recipe.data.validation_objects, n // 5)
            if held < 2:
                raise UserError(f"{n} objects are too few to train on; expected at least 10")
            order = torch.randperm(n, generator=torch.Generator().manual_seed(recipe.data.seed))
            self.validation_index = order[:held].sort().values  # (held,)
            self.train_index = order[held:].sort().values  # (n - held,)
        else:  # a run's recorded split, found again by object id
            source = recipe.data.path or "the synthetic palettes"
            self.train_index, self.validation_index = held_out.positions(
                palettes.ids, source=source, allow_missing=allow_missing
            )
        self.held_out = HeldOut(
            palettes.ids[self.train_index.numpy()], palettes.ids[self.validation_index.numpy()]
        )
        self.train_sets = sets[self.train_index]
        self.validation_sets = sets[self.validation_index]
        both = torch.cat([self.train_index, self.validation_index])
        self.fingerprint = fingerprint(
            palettes.ids[both.numpy()], sets.values[both], sets.mask[both]
        )

        self.model = build_set_encoder(recipe.encoder, in_features=sets.num_features).to(device)
        self.loss_fn = build_loss(recipe, num_classes=0).to(device)
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

    def _two_view_loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        """The loss of (B, D) view-1 and view-2 embeddings of the same B objects, in float32."""
        if isinstance(self.loss_fn, CosineTripletLoss):  # negative: the next object's view
            return in_float32(self.loss_fn, z1, z2, z2.roll(1, dims=0))
        return in_float32(self.loss_fn, z1, z2)

    def batch_loss(self, batch: SetBatch, generator: torch.Generator) -> Tensor:
        """The loss of a global ``batch``: its views, this rank's slice of them encoded."""
        first = rank_slice(self.views(batch, generator))
        second = rank_slice(self.views(batch, generator))
        z1 = forward_by_size(self.model, first, chunk=TRAINING_CHUNK)  # (B_local, D)
        z2 = forward_by_size(self.model, second, chunk=TRAINING_CHUNK)  # (B_local, D)
        # the global batch on every rank, gradients kept (see embedforge.train.distributed)
        return self._two_view_loss(gather_with_grad(z1), gather_with_grad(z2))

    def validate(self) -> dict[str, float]:
        sets = self.validation_sets.to(self.device)
        generator = torch.Generator(self.device).manual_seed(VALIDATION_SEED)
        first, second = self.views(sets, generator), self.views(sets, generator)
        z1 = embed_sets(self.model, first, self.device)  # (held, D)
        z2 = embed_sets(self.model, second, self.device)  # (held, D)
        objects = torch.arange(len(z1))
        metrics = retrieval_metrics(z1, objects, z2, objects, include=("precision_at_1",))
        self.loss_fn.eval()  # a projection head's batch norm uses its running statistics
        with torch.no_grad():  # every rank embeds all of them: no gather
            loss = self._two_view_loss(z1.to(self.device), z2.to(self.device))
        return {"view_precision_at_1": metrics["precision_at_1"], "validation_loss": loss.item()}
