"""Every triplet of a batch without ever holding them all: the fused triplet kernel.

A batch of B items with K per class has about B*K anchor-positive pairs and B
negatives each, so B^2*K triplets. pytorch-metric-learning materialises a
(B, B, B) mask and then three index tensors of that length; here the
anchor-positive pairs are walked in chunks against all B negatives, so the
working set is one (chunk, B) block. The loss is a custom autograd function
over the (B, B) distance matrix: its forward pass also accumulates the
gradient with respect to that matrix, which is the only thing kept for
backward. Autograd then carries it back to the embeddings through the
ordinary distance computation.

For the plain hinge there is a faster way still (:class:`_SortedTripletHinge`):
a triplet (a, p, n) violates the margin exactly when ``E[a, n] < E[a, p] + margin``,
so once each anchor's negatives are sorted, the number of violating negatives of
every anchor-positive pair and the sum of their distances come from one
``searchsorted`` and a prefix sum. That is O(B² log B) time instead of O(B²·K),
and the gradient comes out the same way (for each negative, how many positives
it violates against).

Everything here works on a matrix ``E`` where smaller means closer: a distance
as is, a similarity negated (so ``E[a, p] - E[a, n]`` is PML's
``distance.margin(ap, an)`` exactly, in both cases).
"""

from collections.abc import Iterator
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from embedforge.losses.saved_gradient import SavedGradientFunction, mean_and_gradient

TripletType = Literal["all", "hard", "semihard", "easy"]

CHUNK_ELEMENTS = 1 << 22  # entries of one (chunk, B) block


def closeness_sign(is_similarity: bool) -> float:
    """+1 for a distance, -1 for a similarity: ``sign * matrix`` is smaller-is-closer."""
    return -1.0 if is_similarity else 1.0


def anchor_positive_chunks(
    positive_mask: Tensor, *, chunk_elements: int = CHUNK_ELEMENTS
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (anchor, positive) index chunks, row-major, sized so chunk * B <= chunk_elements."""
    anchor, positive = positive_mask.nonzero(as_tuple=True)  # (P,), (P,)
    step = max(1, chunk_elements // max(1, positive_mask.shape[1]))
    for start in range(0, anchor.numel(), step):
        yield anchor[start : start + step], positive[start : start + step]


def select_triplets(
    current_margin: Tensor, valid: Tensor, *, margin: float, kind: TripletType
) -> Tensor:
    """Which triplets of a block to keep, as pytorch-metric-learning's TripletMarginMiner.

    ``current_margin`` is ``E[a, p] - E[a, n]`` (C, B); the miner's
    "triplet margin" is its negation. "all" keeps the triplets that violate the
    margin, "hard" those whose negative is at least as close as the positive,
    "semihard" the violating ones whose negative is still farther, "easy" the
    ones that already satisfy the margin.
    """
    triplet_margin = -current_margin  # (C, B)
    if kind == "easy":
        return valid & (triplet_margin > margin)
    keep = valid & (triplet_margin <= margin)  # (C, B)
    if kind == "hard":
        keep &= triplet_margin <= 0
    elif kind == "semihard":
        keep &= triplet_margin > 0
    elif kind != "all":
        raise ValueError(
            f"type of triplets must be 'all', 'hard', 'semihard' or 'easy', not {kind!r}"
        )
    return keep


DENSE_COUNT_POSITIVES = 16
"""Up to this many positives per anchor, each negative's violation count is K dense comparisons
of the matrix (uint8 counts, one byte per cell); beyond, two ``searchsorted`` of every cell
into its anchor's sorted bounds, whose per-query cost is higher but does not grow with K."""


def sort_rows(matrix: Tensor) -> Tensor:
    """Each row sorted ascending (values only). On the CPU numpy's vectorised sort (x86-simd-
    sort: measured 2 ms for 1024×1024 float32 against torch.sort's 45 ms on this machine's one
    thread), zero-copy both ways; elsewhere, and for dtypes numpy lacks, ``torch.sort``."""
    if matrix.device.type == "cpu" and matrix.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.sort(matrix.contiguous().numpy(), axis=1))
    return matrix.sort(dim=1).values


class PackedPositives(NamedTuple):
    """Each anchor's positives packed into the first slots of a (B, K) block, K the most any
    anchor has: ``values`` (-inf in unused slots), ``per_row`` (B,) how many each anchor has
    and, per positive pair, its ``row``, ``slot`` and ``column`` in the matrix (each (P,))."""

    values: Tensor
    per_row: Tensor
    row: Tensor
    slot: Tensor
    column: Tensor


def pack_positives(e: Tensor, positive_mask: Tensor) -> PackedPositives:
    """One pass over the mask (its row-major nonzeros), then O(B·K)."""
    row, column = positive_mask.nonzero(as_tuple=True)  # (P,) each, row-major
    per_row = torch.bincount(row, minlength=e.shape[0])  # (B,)
    k = max(int(per_row.max()), 1) if len(per_row) else 1
    slot = torch.arange(len(row), device=e.device) - (per_row.cumsum(0) - per_row)[row]
    values = e.new_full((e.shape[0], k), -torch.inf)  # (B, K)
    values[row, slot] = e[row, column]
    return PackedPositives(values, per_row, row, slot, column)


def violations_per_cell(e: Tensor, lower: Tensor | None, upper: Tensor) -> Tensor:
    """(B, M) how many of each anchor's K (lower, upper) intervals hold the cell strictly:
    ``lower < e < upper`` (``lower=None``: no lower bound). Unused slots are (-inf, -inf) and
    hold nothing; so does an inf cell."""
    k = upper.shape[1]
    if k > DENSE_COUNT_POSITIVES:
        below_upper = torch.searchsorted(upper.sort(dim=1).values, e, right=True)  # upper <= e
        above_lower = k if lower is None else torch.searchsorted(lower.sort(dim=1).values, e)
        return (above_lower - below_upper).clamp_min_(0)  # lower < e, minus upper <= e
    on_cpu = e.device.type == "cpu"  # numpy's broadcast comparisons: 2x torch's, measured
    cells, ups = (e.numpy(), upper.numpy()) if on_cpu else (e, upper)
    lows = lower.numpy() if on_cpu and lower is not None else lower
    count = (
        np.zeros(e.shape, np.uint8)
        if on_cpu
        else torch.zeros(e.shape, dtype=torch.uint8, device=e.device)
    )  # (B, M)
    for slot in range(k):
        inside = cells < ups[:, slot : slot + 1]  # (B, M)
        if lows is not None:
            inside &= cells > lows[:, slot : slot + 1]
        count += inside
    return torch.from_numpy(count) if on_cpu else count


def _prefix_at(prefix: Tensor, count: Tensor) -> Tensor:
    """Per (row, slot), the sum of the row's first ``count`` sorted values (0 for none)."""
    if prefix.shape[1] == 0:  # no columns (an empty cross-batch memory)
        return prefix.new_zeros(count.shape)
    taken = prefix.gather(1, (count - 1).clamp_min(0))  # (B, K)
    return torch.where(count > 0, taken, 0.0)


class _SortedTripletHinge(SavedGradientFunction):
    """Mean hinge over violating triplets ("all" or "semihard"), by sorting instead of walking.

    Per anchor-positive pair, the violating negatives are those with
    ``lower < E[a, n] < E[a, p] + margin`` where ``lower`` is none for "all" and
    ``E[a, p]`` for "semihard"; they form one contiguous run of the anchor's
    sorted negatives, so their count and summed distance are differences of
    ``searchsorted`` positions (B·K queries) and of a prefix sum. The gradient of a negative
    cell is minus the number of the anchor's positives it violates against
    (:func:`violations_per_cell`), of a positive cell its number of violating negatives.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        matrix: Tensor,
        positive_mask: Tensor,
        negative_mask: Tensor,
        margin: float,
        sign: float,
        semihard: bool,
    ) -> tuple[Tensor, Tensor]:
        e = matrix if sign > 0 else -matrix  # (B, M), smaller = closer
        only_negatives = e.masked_fill(~negative_mask, torch.inf)  # (B, M)
        negatives = sort_rows(only_negatives)  # (B, M), each row's inf last
        packed = pack_positives(e, positive_mask)
        positives = packed.values  # (B, K)
        is_positive = positives.isfinite()  # (B, K)
        upper = positives + margin  # (B, K): negatives below this violate
        high = torch.searchsorted(negatives, upper)  # (B, K) negatives < upper
        if semihard:  # negatives <= E[a, p] do not count; considered: up to upper inclusive
            low = torch.searchsorted(negatives, positives, right=True)  # (B, K)
            considered = (torch.searchsorted(negatives, upper, right=True) - low) * is_positive
            lower = positives
        else:
            low, lower = torch.zeros_like(high), None
            finite = torch.searchsorted(negatives, negatives.new_full((len(e), 1), torch.inf))
            considered = packed.per_row * finite.squeeze(1)  # (B,) positives x negatives
        violating = (high - low).clamp_min_(0) * is_positive  # (B, K) per pair
        prefix = negatives.cumsum_(dim=1)  # (B, M), finite up to each row's negatives
        summed = _prefix_at(prefix, high) - _prefix_at(prefix, low)  # (B, K) their E[a, n]
        total = torch.where(is_positive, violating * upper - summed, 0.0).sum()
        num_positive = violating.sum()
        counts = torch.stack([considered.sum(), num_positive])

        # d mean / d E: a negative cell minus the positives it violates against, a positive
        # cell its violating negatives; over the count, times sign (E = sign * matrix)
        denominator = num_positive.to(matrix.dtype)  # int / float would round to float32
        scale = sign / denominator if num_positive > 0 else matrix.new_zeros(())
        count = violations_per_cell(only_negatives, lower, upper)  # (B, M), 0 off negatives
        grad = count.to(matrix.dtype).mul_(-scale)  # (B, M)
        pairs = (packed.row, packed.column)
        grad.index_put_(pairs, violating[packed.row, packed.slot].to(matrix.dtype) * scale)
        loss = total / denominator if num_positive > 0 else total * 0.0
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(counts)
        return loss, counts


class _TripletMarginFromMatrix(SavedGradientFunction):
    """Mean triplet hinge (or softplus) from a (B, B) matrix, gradient fused into forward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        matrix: Tensor,
        positive_mask: Tensor,
        negative_mask: Tensor,
        margin: float,
        sign: float,
        kind: TripletType | None,
        smooth: bool,
        positive_threshold: float,
        eps: float,
        chunk_elements: int,
    ) -> tuple[Tensor, Tensor]:
        e = matrix * sign  # (B, B), smaller = closer
        grad = torch.zeros_like(matrix)  # (B, B), unnormalised d(sum)/dE
        total = matrix.new_zeros(())
        counts = torch.zeros(2, dtype=torch.int64, device=matrix.device)  # (considered, > thr)
        for anchor, positive in anchor_positive_chunks(
            positive_mask, chunk_elements=chunk_elements
        ):
            current = e[anchor, positive].unsqueeze(1) - e[anchor]  # (C, B)
            valid = negative_mask[anchor]  # (C, B)
            keep = (
                valid if kind is None else select_triplets(current, valid, margin=margin, kind=kind)
            )  # (C, B)
            violation = current + margin  # (C, B)
            if smooth:
                losses = F.softplus(violation)  # (C, B)
                weight = torch.sigmoid(violation)  # (C, B)
            else:
                losses = F.relu(violation)  # (C, B)
                weight = (violation > 0).to(matrix.dtype)  # (C, B)
            zero = losses.new_zeros(())
            losses = torch.where(keep, losses, zero)  # (C, B)
            weight = torch.where(keep, weight, zero)  # (C, B)
            total += losses.sum()
            counts[0] += keep.sum()
            counts[1] += (losses > positive_threshold).sum()
            grad.index_put_((anchor, positive), weight.sum(dim=1), accumulate=True)
            grad.index_add_(0, anchor, weight, alpha=-1.0)
        denominator = counts[1].to(matrix.dtype) + eps
        loss = mean_and_gradient(total, grad, denominator, sign)
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(counts)
        return loss, counts


def triplet_margin_from_matrix(
    matrix: Tensor,
    positive_mask: Tensor,
    negative_mask: Tensor,
    *,
    margin: float,
    is_similarity: bool = False,
    kind: TripletType | None = None,
    smooth: bool = False,
    positive_threshold: float = 0.0,
    eps: float = 0.0,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """Mean triplet loss over the chosen triplets of a batch, in O(B^2) memory.

    matrix: (B, B) distances (or similarities with ``is_similarity=True``);
    positive_mask / negative_mask: (B, B) bool, from :func:`label_masks`.
    ``kind=None`` takes every valid triplet; otherwise :func:`select_triplets`.
    Per triplet the loss is ``relu(E[a,p] - E[a,n] + margin)`` (``softplus``
    when ``smooth``). The result is ``sum / (count(loss > positive_threshold) + eps)``,
    0 when that denominator is 0: PML's AvgNonZeroReducer with the defaults,
    Moindrot's batch-all average with ``positive_threshold=eps=1e-16``.

    Returns ``(loss, counts)``: a scalar on the graph of ``matrix`` and an int64
    (2,) tensor ``[triplets considered, triplets above the threshold]``.

    >>> import torch
    >>> from embedforge.losses.masks import label_masks
    >>> d = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 0.5], [2.0, 0.5, 0.0]])
    >>> pos, neg = label_masks(torch.tensor([0, 0, 1]))
    >>> loss, counts = triplet_margin_from_matrix(d, pos, neg, margin=0.1)
    >>> round(loss.item(), 4), counts.tolist()  # (1,0,2): 1.0-0.5+0.1; (0,1,2): 1.0-2.0+0.1 < 0
    (0.6, [2, 1])
    """
    sign = closeness_sign(is_similarity)
    if not smooth and kind in (None, "all", "semihard") and positive_threshold == 0 and eps == 0:
        return _SortedTripletHinge.apply(
            matrix, positive_mask, negative_mask, margin, sign, kind == "semihard"
        )
    return _TripletMarginFromMatrix.apply(
        matrix,
        positive_mask,
        negative_mask,
        margin,
        sign,
        kind,
        smooth,
        positive_threshold,
        eps,
        chunk_elements,
    )


@torch.no_grad()
def mine_triplets(
    matrix: Tensor,
    positive_mask: Tensor,
    negative_mask: Tensor,
    *,
    margin: float,
    kind: TripletType,
    is_similarity: bool = False,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor, Tensor]:
    """(anchor, positive, negative) int64 indices of the triplets :func:`select_triplets` keeps.

    Same set and order (lexicographic in a, p, n) as PML's TripletMarginMiner,
    built chunk by chunk: only the output grows with the number of triplets.
    """
    e = matrix * closeness_sign(is_similarity)  # (B, B)
    anchors, positives, negatives = [], [], []
    for anchor, positive in anchor_positive_chunks(positive_mask, chunk_elements=chunk_elements):
        current = e[anchor, positive].unsqueeze(1) - e[anchor]  # (C, B)
        keep = select_triplets(current, negative_mask[anchor], margin=margin, kind=kind)  # (C, B)
        row, negative = keep.nonzero(as_tuple=True)  # (T,), (T,)
        anchors.append(anchor[row])
        positives.append(positive[row])
        negatives.append(negative)
    if not anchors:
        empty = torch.empty(0, dtype=torch.int64, device=matrix.device)
        return empty, empty.clone(), empty.clone()
    return torch.cat(anchors), torch.cat(positives), torch.cat(negatives)


@torch.no_grad()
def hardest_triplets(
    matrix: Tensor, positive_mask: Tensor, negative_mask: Tensor, *, is_similarity: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Batch-hard: per anchor the farthest positive and the closest negative (arXiv:1703.07737).

    Anchors without a positive or without a negative are dropped, as PML's
    BatchHardMiner does; ties go to the lowest index. O(B^2).
    """
    far, near = (torch.min, torch.max) if is_similarity else (torch.max, torch.min)
    far_fill = torch.inf if is_similarity else -torch.inf
    positive = far(matrix.masked_fill(~positive_mask, far_fill), dim=1).indices  # (B,)
    negative = near(matrix.masked_fill(~negative_mask, -far_fill), dim=1).indices  # (B,)
    anchor = (positive_mask.any(dim=1) & negative_mask.any(dim=1)).nonzero().squeeze(1)  # (A,)
    return anchor, positive[anchor], negative[anchor]
