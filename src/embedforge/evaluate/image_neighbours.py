"""The report's image sections: held-out images beside their nearest training images, and the
ones a re-identification threshold calls new.

Thumbnails are the run's own images (the tensors it was trained and embedded on, ``(C, S, S)``
in [0, 1], after resizing) encoded as small PNGs with Pillow and embedded as ``data:`` URIs,
so the page stays self-contained; they are drawn with ``image-rendering: pixelated`` so an
8 × 8 digit stays legible. A neighbour is marked right when it has the query's label, the
question kNN classification and P@1 answer, one example at a time.

For a re-identification run with new individuals, the threshold of
:mod:`embedforge.evaluate.open_set` calls a held-out image new when its nearest training image
is farther than it. The second section shows a seeded few of those, each beside that nearest
image, marked right when the individual is indeed absent from the training images.
"""

import io
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from embedforge.data.lazy_images import LazyImages
from embedforge.evaluate.html_page import image, note
from embedforge.evaluate.neighbour_rows import NEIGHBOURS, row, sample_queries, tile
from embedforge.metrics.knn import knn_search
from embedforge.run_items import RunEmbeddings

NEW = ("not in training: new", "in training: a missed match")
"""What ✓ and ✗ say on an image the threshold calls new."""


def thumbnail_png(pixels: Tensor) -> bytes:
    """A ``(C, S, S)`` image in [0, 1] (C = 1 grey, 3 RGB) as PNG bytes, 8 bits per channel.

    >>> png = thumbnail_png(torch.ones(1, 4, 4))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from PIL import Image

    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1 or 3, S, S) image; got shape {tuple(pixels.shape)}")
    levels = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)  # (C, S, S)
    array = levels[0].numpy() if pixels.shape[0] == 1 else levels.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_rows(
    query_images: Tensor,
    query_ids: Sequence[object],
    query_labels: Sequence[str],
    neighbour_images: Tensor,
    neighbour_ids: Sequence[Sequence[object]],
    neighbour_labels: Sequence[Sequence[str]],
    distances: np.ndarray,
) -> str:
    """One row per query: its thumbnail, then its neighbours', each marked right (✓, green)
    when its label is the query's and wrong (✗, red) otherwise.

    ``query_images`` is ``(q, C, S, S)``, ``neighbour_images`` ``(q, k, C, S, S)``; ids, labels
    and ``distances`` ``(q, k)`` row by row, nearest first.
    """
    rows = []
    for i, (query_id, label) in enumerate(zip(query_ids, query_labels, strict=True)):
        tiles = [
            tile(_thumbnail(query_images[i], query_id), ["query", str(query_id), label], query=True)
        ]
        for j, (neighbour_id, neighbour_label) in enumerate(
            zip(neighbour_ids[i], neighbour_labels[i], strict=True)
        ):
            caption = [str(neighbour_id), neighbour_label, f"distance {distances[i, j]:.3f}"]
            picture = _thumbnail(neighbour_images[i, j], neighbour_id)
            tiles.append(tile(picture, caption, right=neighbour_label == label))
        rows.append(row(tiles))
    return "".join(rows)


def image_neighbours(run: RunEmbeddings, *, seed: int = 0) -> str:
    """The section's body for an image run: seeded held-out images beside their
    :data:`~embedforge.evaluate.neighbour_rows.NEIGHBOURS` nearest training images."""
    queries = sample_queries(len(run.query), seed=seed)
    k = min(NEIGHBOURS, len(run.reference))
    distances, indices = knn_search(run.query[torch.from_numpy(queries)], run.reference, k)
    indices = indices.numpy()  # (q, k)
    neighbour_images = _images(run.reference_images, indices.ravel())
    text = (
        f"{len(queries)} held-out images (drawn by seed {seed}), each beside its {k} nearest "
        "training images by embedding distance, nearest first. A green border and ✓: the "
        f"neighbour's {run.label_name} is the query's; a red border and ✗: it is not."
    )
    body = image_rows(
        _images(run.query_images, queries),
        run.query_ids[queries],
        _label_texts(run, run.query_labels.numpy()[queries]),
        neighbour_images.reshape(len(queries), k, *neighbour_images.shape[1:]),
        run.reference_ids[indices],
        [_label_texts(run, labels) for labels in run.reference_labels.numpy()[indices]],
        distances.numpy(),
    )
    return note(text) + body


def called_new(run: RunEmbeddings, threshold: float, *, seed: int = 0) -> str:
    """The section's body for a re-identification run: a seeded few of the held-out images
    whose nearest training image is farther than ``threshold``, beside that image."""
    distances, indices = knn_search(run.query, run.reference, 1)
    nearest, match = distances[:, 0].numpy(), indices[:, 0].numpy()  # (m,), (m,)
    called = np.flatnonzero(nearest > threshold)
    if called.size == 0:
        return note(f"The threshold ({threshold:.4f}) calls no held-out image new.")
    shown = called[sample_queries(len(called), seed=seed)]
    query_labels = run.query_labels.numpy()
    unseen = ~np.isin(query_labels, run.reference_labels.numpy())  # (m,)
    query_images = _images(run.query_images, shown)
    match_images = _images(run.reference_images, match[shown])
    query_texts = _label_texts(run, query_labels[shown])
    match_texts = _label_texts(run, run.reference_labels.numpy()[match[shown]])
    rows = []
    for i, position in enumerate(shown):
        query_id, match_id = run.query_ids[position], run.reference_ids[match[position]]
        query_tile = tile(
            _thumbnail(query_images[i], query_id),
            ["called new", str(query_id), query_texts[i]],
            query=True,
            right=bool(unseen[position]),
            why=NEW,
        )
        caption = ["nearest", str(match_id), match_texts[i], f"distance {nearest[position]:.3f}"]
        rows.append(row([query_tile, tile(_thumbnail(match_images[i], match_id), caption)]))
    text = (
        f"The threshold ({threshold:.4f}) calls {called.size} of {len(nearest)} held-out images "
        f"new: their nearest training image is farther. {len(shown)} of them (drawn by seed "
        f"{seed}), each beside that nearest image. ✓ and a green border: the {run.label_name} "
        "is indeed absent from the training images; ✗ and a red border: it is there."
    )
    return note(text) + "".join(rows)


def _images(images: Tensor | LazyImages, positions: np.ndarray) -> Tensor:
    """The images at ``positions``: only those are read when the images live on disk."""
    return images[torch.from_numpy(np.asarray(positions, dtype=np.int64))]


def _label_texts(run: RunEmbeddings, codes: np.ndarray) -> list[str]:
    """``codes`` as "digit 3", "individual whale_7" (the label its CSV wrote), or the code
    itself when the run names no labels."""
    names = run.classes
    return [f"{run.label_name} {names[code] if names else code}" for code in codes.tolist()]


def _thumbnail(pixels: Tensor, item_id: object) -> str:
    return image(thumbnail_png(pixels), f"image {item_id}")
