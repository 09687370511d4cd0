"""Palettes trained so that embedding distances agree with exact EMD (search by example).

The loss (:mod:`embedforge.losses.emd_distillation`; Courty, Flamary & Ducoffe, ICLR 2018)
needs pairs of palettes with their exact Earth Mover's Distance in CIELAB
(:mod:`embedforge.metrics.emd`). Every pair of a batch would cost B² linear programmes, and
random pairs are almost never near, where search by example is decided. So a batch is made
of **near groups**: each of ``batch_size / loss.group`` seed palettes (every training palette
seeds one group an epoch) with ``group - 1`` others drawn from its ``loss.near`` nearest
training palettes by ratio-weighted CIELAB mean and standard deviation
(:meth:`~embedforge.metrics.emd.LabPalettes.statistics`, a cheap stand-in for its EMD
neighbours, found once). The pairs are every pair inside a group (the fine order among near
palettes) and each palette with the one at the same place in the next group (a random pair:
the far distances), ``batch_size · (group + 1) / 2`` pairs for ``batch_size`` encodings.

The palettes go through the palette views (:mod:`embedforge.views.set_views`) and the targets
are the exact EMD between the views as they are encoded, so every step sees new palettes
and new pairs with exact targets (about 0.1 ms a solve, small next to the forward pass).

Validation: the held-out objects are split once, by a fixed seed, into queries (at most
:data:`VALIDATION_QUERIES`) and a collection; their exact EMDs are solved once, and every
validation reports ``emd_recall_at_10`` (the share of each query's 10 embedding neighbours in
the collection that are among its 10 exact-EMD neighbours), ``emd_spearman`` and the loss on
all those (query, collection) pairs, next to view matching and the collapse monitors.

Under torchrun every rank draws the same partners and views (from the epoch's generator) and
solves the same targets, encodes its slice and gathers, as :class:`~embedforge.train.set_task.
SetTask` does, so the loss is the one-process loss of the global batch.
"""

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from embedforge.data.palettes import Palettes
from embedforge.data.set_batch import SetBatch
from embedforge.data.split import HeldOut
from embedforge.errors import UserError
from embedforge.inference import embed_sets, trim_padding
from embedforge.losses.emd_distillation import EMDDistillationConfig
from embedforge.losses.precision import in_float32
from embedforge.metrics.emd import (
    RGB_FEATURES,
    LabPalettes,
    emd_to_collection,
    has_colours,
    paired_emd,
    require_pot,
)
from embedforge.metrics.emd_agreement import emd_spearman, recall_at_k_of_emd_neighbours
from embedforge.metrics.knn import knn_search
from embedforge.metrics.view_matching import VALIDATION_SEED, view_matching
from embedforge.recipe import Recipe
from embedforge.train.distributed import world_size
from embedforge.train.set_task import SetTask, encode_global
from embedforge.train.task import rank_slice, shuffled_batches

VALIDATION_QUERIES = 100
"""Held-out palettes that query the rest of the held-out ones in validation (at most half of
them): 100 × 900 exact EMDs for the default 1,000 held-out objects, about 10 s, solved once."""
VALIDATION_K = 10


def group_pairs(groups: int, group: int, rows: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(first, second)`` rows of a batch of ``groups`` consecutive near groups of ``group``
    palettes (cut to its first ``rows``): every pair inside a group, then every palette with
    the one at the same place in the next group (the last group with the first).

    >>> [pair.tolist() for pair in group_pairs(2, 3, 6, torch.device("cpu"))]
    [[0, 0, 1, 3, 3, 4, 0, 1, 2, 3, 4, 5], [1, 2, 2, 4, 5, 5, 3, 4, 5, 0, 1, 2]]
    """
    inside = torch.triu_indices(group, group, offset=1)  # (2, group·(group-1)/2)
    offsets = torch.arange(groups)[:, None] * group  # (groups, 1)
    near = [(offsets + inside[i]).reshape(-1) for i in (0, 1)]
    rows_ = torch.arange(groups * group)
    first, second = torch.cat([near[0], rows_]), torch.cat([near[1], (rows_ + group) % len(rows_)])
    kept = (first < rows) & (second < rows)
    return first[kept].to(device), second[kept].to(device)


def near_candidates(palettes: LabPalettes, near: int) -> Tensor:
    """``(n, min(near, n - 1))`` int64: each palette's nearest other palettes by colour
    statistics (ties broken by index; a palette is never its own candidate)."""
    statistics = torch.from_numpy(palettes.statistics()).float()  # (n, 6)
    count = min(near, len(palettes) - 1)
    return knn_search(statistics, statistics, count, exclude_self=True)[1]


class EMDPairTask(SetTask):
    """Palettes with pairs and exact-EMD targets as a training task (see the module).

    >>> from embedforge.recipe import parse_recipe
    >>> from embedforge.build import build_palettes
    >>> recipe = parse_recipe({"data": {"source": "palettes", "size": 50},
    ...                        "encoder": {"name": "deep_sets", "dim": 8},
    ...                        "loss": {"name": "emd_distillation"}})
    >>> task = EMDPairTask(recipe, build_palettes(recipe.data), torch.device("cpu"))
    >>> task.batch_loss(next(iter(task.batches(0))), torch.Generator().manual_seed(0)).ndim
    0
    >>> sorted(task.validate())[:3]
    ['alignment', 'dimension_std', 'emd_recall_at_10']
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
        if not isinstance(recipe.loss, EMDDistillationConfig):
            raise ValueError("EMDPairTask needs a loss called with palette pairs")
        if not has_colours(palettes.feature_names):
            raise UserError(
                f"loss {recipe.loss.name!r} needs palettes of colours (features "
                f"{RGB_FEATURES[1:]} in RGB, or colour_space: lab); this table's features are "
                f"{palettes.feature_names[1:]}"
            )
        require_pot()
        super().__init__(recipe, palettes, device, held_out, allow_missing=allow_missing)
        self.feature_names = palettes.feature_names
        self.candidates = near_candidates(
            LabPalettes.from_sets(self.train_sets, self.feature_names), recipe.loss.near
        ).to(device)  # (n_train, near)
        self.group = min(recipe.loss.group, self.candidates.shape[1] + 1)
        self.groups = self.batch_size // self.group
        if self.groups < 2:
            raise UserError(
                f"train.batch_size {self.batch_size} holds fewer than 2 near groups of "
                f"loss.group {self.group}; expected batch_size >= {2 * self.group}"
            )
        self.batch_size = self.groups * self.group
        self.batch_size -= self.batch_size % world_size()  # ranks encode equal slices
        self.pairs = group_pairs(self.groups, self.group, self.batch_size, device)
        self._validation_pairs()

    def num_batches(self) -> int:
        return len(self.train_index) // self.groups  # every palette seeds a group an epoch

    def batches(self, epoch: int) -> Iterator[Tensor]:
        """The epoch's global batches of group seeds (indices into the training palettes)."""
        count = len(self.train_index)
        yield from shuffled_batches(count, self.groups, seed=self.seed, epoch=epoch)

    def batch_loss(self, seeds: Tensor, generator: torch.Generator) -> Tensor:
        """The loss of the pairs of the seeds' near groups, on their views."""
        members = self._groups(seeds.to(self.device), generator)  # (batch_size,)
        views = self.views(self._sets(members), generator)
        first, second = self.pairs  # (pairs,) each: rows of the batch
        emd = self._paired_emd(views[first.cpu()], views[second.cpu()])  # (pairs,)
        z = encode_global(self.model, rank_slice(views))  # (batch_size, D)
        return in_float32(self.loss_fn, z[first], z[second], emd)

    def validate(self) -> dict[str, float]:
        metrics = view_matching(self.model, self.views, self.validation_sets, self.device, None)
        z = embed_sets(self.model, self.validation_sets, self.device)  # (held, D)
        query, collection = z[self.validation_queries], z[self.validation_collection]
        pairs = self.validation_emd.shape
        with torch.no_grad():
            loss = in_float32(
                self.loss_fn,
                query.repeat_interleave(pairs[1], dim=0),
                collection.repeat(pairs[0], 1),
                torch.from_numpy(self.validation_emd).float().reshape(-1),
            )
        k = min(VALIDATION_K, pairs[1])
        return {
            **metrics,
            "emd_recall_at_10": recall_at_k_of_emd_neighbours(
                query, collection, self.validation_emd, k
            ),
            "emd_spearman": emd_spearman(
                query, collection, self.validation_emd, seed=VALIDATION_SEED
            ),
            "validation_loss": loss.item(),
        }

    def _groups(self, seeds: Tensor, generator: torch.Generator) -> Tensor:
        """``(batch_size,)``: group after group, each seed and then ``group - 1`` of its
        candidates drawn without replacement (the last rows cut to a multiple of the ranks)."""
        keys = torch.rand(self.candidates[seeds].shape, generator=generator, device=seeds.device)
        others = self.candidates[seeds].gather(1, keys.argsort(dim=1)[:, : self.group - 1])
        return torch.cat([seeds[:, None], others], dim=1).reshape(-1)[: self.batch_size]

    def _sets(self, index: Tensor) -> SetBatch:
        return trim_padding(self.train_sets[index.cpu()]).to(self.device)

    def _paired_emd(self, first: SetBatch, second: SetBatch) -> Tensor:
        """(P,) float32 exact EMD between row i of both batches (solved on the CPU)."""
        lab = [
            LabPalettes.from_sets(sets.to("cpu"), self.feature_names) for sets in (first, second)
        ]
        return torch.from_numpy(paired_emd(*lab)).float().to(self.device)

    def _validation_pairs(self) -> None:
        """Split the held-out palettes into queries and a collection; solve their EMDs once."""
        held = len(self.validation_index)
        if held < 2:
            raise UserError(
                f"loss {EMDDistillationConfig.model_fields['name'].default!r} needs at least 2 "
                f"held-out objects to validate; data.validation_objects leaves {held}"
            )
        order = np.random.default_rng(VALIDATION_SEED).permutation(held)
        count = min(VALIDATION_QUERIES, held // 2)
        self.validation_queries = torch.from_numpy(np.sort(order[:count]))
        self.validation_collection = torch.from_numpy(np.sort(order[count:]))
        queries, collection = (
            LabPalettes.from_sets(self.validation_sets[index], self.feature_names)
            for index in (self.validation_queries, self.validation_collection)
        )
        self.validation_emd = emd_to_collection(queries, collection)  # (queries, collection)
