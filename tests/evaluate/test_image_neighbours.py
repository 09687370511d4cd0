"""Image neighbours and the images a threshold calls new: thumbnails, marks, escaping."""

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedforge.data.lazy_images import LazyImages
from embedforge.evaluate.image_neighbours import (
    called_new,
    image_neighbours,
    image_rows,
    thumbnail_png,
)
from embedforge.evaluate.neighbour_rows import NEIGHBOURS, QUERIES, sample_queries
from embedforge.metrics.knn import knn_search
from embedforge.run_items import load_run_embeddings


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB")])
def test_a_thumbnail_is_the_image_in_8_bits(channels: int, mode: str) -> None:
    pixels = torch.rand(channels, 5, 7, generator=torch.Generator().manual_seed(0))
    decoded = Image.open(io.BytesIO(thumbnail_png(pixels)))
    assert decoded.mode == mode and decoded.size == (7, 5)
    levels = np.asarray(decoded).reshape(5, 7, channels).transpose(2, 0, 1)
    np.testing.assert_array_equal(levels, np.rint(pixels.numpy() * 255))


def test_a_thumbnail_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match=r"got shape \(2, 4, 4\)"):
        thumbnail_png(torch.zeros(2, 4, 4))


def test_image_rows_mark_each_neighbour_by_its_label_and_escape_ids() -> None:
    images = torch.rand(2, 1, 4, 4)
    text = image_rows(
        images,
        ["<q>&1", "q2"],
        ["digit 1", "digit 2"],
        torch.rand(2, 3, 1, 4, 4),
        [["a", "b<", "c"], ["d", "e", "f&"]],
        [["digit 1", "digit 7", "digit 1"], ["digit 2", "digit 2", "digit 1"]],
        np.arange(6, dtype=float).reshape(2, 3) / 10,
    )
    assert text.count("<img ") == 8 and text.count("class='row'") == 2
    marks = re.findall(r"class='tile (right|wrong)'", text)
    assert marks == ["right", "wrong", "right", "right", "right", "wrong"]
    assert text.count("✓ same label") == 4 and text.count("✗ other label") == 2
    assert "<q>" not in text and "b<" not in text and "f&<" not in text
    assert "&lt;q&gt;&amp;1" in text and "alt='image b&lt;'" in text and "f&amp;" in text


def test_an_image_run_shows_its_nearest_training_images(reid_run: Path) -> None:
    run = load_run_embeddings(reid_run)
    text = image_neighbours(run, seed=2)
    queries = sample_queries(len(run.query), seed=2)
    assert len(queries) == QUERIES
    _, indices = knn_search(run.query[torch.from_numpy(queries)], run.reference, NEIGHBOURS)
    same = run.reference_labels[indices] == run.query_labels[torch.from_numpy(queries)][:, None]
    assert text.count("<img ") == QUERIES * (1 + NEIGHBOURS)
    marks = re.findall(r"class='tile (right|wrong)'", text)
    assert marks == ["right" if s else "wrong" for s in same.flatten().tolist()]
    captions = re.findall(r"<div>whale(\d+)_\d+\.png</div><div>individual ([^<]*)</div>", text)
    assert len(captions) == QUERIES * (1 + NEIGHBOURS)  # the CSV's label of each file
    assert all(label == f"whale_{number}" for number, label in captions)
    shown = re.findall(r"alt='image ([^']*)'", text)
    assert shown[: 1 + NEIGHBOURS] == [
        str(run.query_ids[queries[0]]),
        *(str(run.reference_ids[j]) for j in indices[0].tolist()),
    ]


def test_called_new_shows_the_images_beyond_the_threshold_marked_by_the_truth(
    reid_run: Path,
) -> None:
    run = load_run_embeddings(reid_run)
    distances, indices = knn_search(run.query, run.reference, 1)
    threshold = float(distances[:, 0].median())
    called = np.flatnonzero(distances[:, 0].numpy() > threshold)
    shown = called[sample_queries(len(called), seed=0)]
    text = called_new(run, threshold)
    assert f"calls {len(called)} of {len(run.query)} held-out images" in text
    assert text.count("class='row'") == len(shown) and text.count("<img ") == 2 * len(shown)
    unseen = ~np.isin(run.query_labels.numpy(), run.reference_labels.numpy())
    marks = re.findall(r"class='tile query (right|wrong)'", text)
    assert marks == ["right" if unseen[i] else "wrong" for i in shown]
    nearest = re.findall(r"<div>nearest</div><div>([^<]*)</div>", text)
    assert nearest == [str(run.reference_ids[indices[i, 0]]) for i in shown]


def test_a_threshold_beyond_every_distance_calls_nothing_new(reid_run: Path) -> None:
    text = called_new(load_run_embeddings(reid_run), float("inf"))
    assert "calls no held-out image new" in text and "<img" not in text


def test_images_read_from_disk_give_the_same_section(reid_run: Path) -> None:
    """A folder too large for memory (``data.storage: disk``): only the shown images are read,
    and they are the ones decoded in memory."""
    run = load_run_embeddings(reid_run)
    data = run.recipe.data
    folder = data.reader(data.root, data.csv)
    position = {name: i for i, name in enumerate(folder.image_names)}

    def lazy(ids: np.ndarray) -> LazyImages:
        return LazyImages(folder, torch.tensor([position[name] for name in ids]))

    on_disk = replace(
        run, query_images=lazy(run.query_ids), reference_images=lazy(run.reference_ids)
    )
    assert image_neighbours(on_disk, seed=1) == image_neighbours(run, seed=1)
    assert called_new(on_disk, 0.0) == called_new(run, 0.0)
