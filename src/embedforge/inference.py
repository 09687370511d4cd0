"""Embedding in batches: images (in memory or read from disk ahead of the model) and sets
(in chunks sorted by size, each padded only to its own largest set), in eval mode.

Below ``train`` (validation, and the set task's training forward) and ``evaluate``, the
commands that embed (``embed``, ``index build``, ``search``) and the estimator, so all of them
embed the same way.
"""

import math
from collections.abc import Iterable
from typing import TypeVar

import torch
from torch import Tensor, nn

from embedforge.data.lazy_images import LazyImages
from embedforge.data.prefetch import prefetch
from embedforge.data.set_batch import SetBatch
from embedforge.progress import progress_bar

T = TypeVar("T")


def read_ahead(batches: Iterable[T], images: Tensor | LazyImages) -> Iterable[T]:
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
    chunks = read_ahead(images.split(batch), images)
    total = math.ceil(len(images) / batch)
    chunks = progress_bar(chunks, show=progress, total=total, desc="embedding", unit="batch")
    return torch.cat([model(chunk.to(device)).float().cpu() for chunk in chunks])


def trim_padding(batch: SetBatch) -> SetBatch:
    """Drop the padding columns no set in ``batch`` uses (sets are packed rows first).

    Set encoders ignore padding, so this changes no embedding; it only saves work
    when a few large sets pad a whole table.
    """
    used = int(batch.mask.any(dim=0).nonzero().max()) + 1 if batch.mask.any() else 1
    return SetBatch(batch.values[:, :used], batch.mask[:, :used])


def batch_bounds(n: int, chunk: int, *, remainder_in_powers_of_two: bool) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch: full batches of ``chunk``, then the remainder, as one
    batch or split into powers of two, largest first.

    Why the powers of two, when embedding: oneDNN (PyTorch's CPU kernels for GELU, among
    others) compiles and caches a kernel per input shape, and never frees its cache of up to
    1,024. A stream embeds each chunk's sets in batches, and every chunk's last batch had a
    count of its own, so each chunk left new kernels behind: streaming 2,000,000 palettes,
    resident memory grew by about 200 MiB over the 122 chunks. With the remainder in powers of
    two the counts repeat from call to call, for the same work. Training keeps one remainder
    batch: its batches have the same count every step, and the extra small passes made a
    forward and backward of 299 sets 25–43% slower.

    >>> batch_bounds(2500, 1024, remainder_in_powers_of_two=True)
    [(0, 1024), (1024, 2048), (2048, 2304), (2304, 2432), (2432, 2496), (2496, 2500)]
    >>> batch_bounds(2500, 1024, remainder_in_powers_of_two=False)
    [(0, 1024), (1024, 2048), (2048, 2500)]
    """
    whole, remainder = n - n % chunk, n % chunk
    bounds = [(start, start + chunk) for start in range(0, whole, chunk)]
    if remainder_in_powers_of_two:
        bits = reversed(range(remainder.bit_length()))
        sizes = [1 << bit for bit in bits if remainder >> bit & 1]
    else:
        sizes = [remainder] if remainder else []
    for size in sizes:
        bounds.append((whole, whole + size))
        whole += size
    return bounds


def forward_by_size(
    model: nn.Module,
    sets: SetBatch,
    *,
    chunk: int,
    device: torch.device | None = None,
    progress: bool = False,
    remainder_in_powers_of_two: bool = False,
) -> Tensor:
    """``model`` on ``sets`` in chunks of ``chunk`` sets sorted by size; rows in input order.

    Each chunk is padded only to its own largest set, so a few large sets no longer pad the
    whole batch (a set encoder's output does not depend on the other sets it runs with).
    Gradients flow as for one call. ``device``: where the chunks run (default: where they are).
    ``remainder_in_powers_of_two``: the last, partial chunk split as :func:`batch_bounds` says.
    """
    by_size = sets.sizes.argsort(stable=True)  # (n,)
    outputs = []
    bounds = batch_bounds(len(sets), chunk, remainder_in_powers_of_two=remainder_in_powers_of_two)
    for start, stop in progress_bar(bounds, show=progress, desc="embedding", unit="batch"):
        part = trim_padding(sets[by_size[start:stop]])
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
    """``(n, d)`` float32 embeddings on the CPU, in eval mode, ``batch`` sets at a time (the
    last, partial batch in powers of two: calls with any ``n`` reuse the same shapes, see
    :func:`batch_bounds`)."""
    model.eval()
    return forward_by_size(
        model, sets, chunk=batch, device=device, progress=progress, remainder_in_powers_of_two=True
    ).cpu()
