"""LazyImages: a folder's images read per batch are exactly the images decoded up front."""

from pathlib import Path

import pytest
import torch

from embedforge.data.image_folder import ImageFolder
from embedforge.data.image_folder_source import ImageFolderConfig, folder_split
from embedforge.data.lazy_images import LazyImages
from embedforge.errors import UserError


def section(reid_folder: Path, storage: str, **options: object) -> ImageFolderConfig:
    return ImageFolderConfig(
        root=str(reid_folder / "images"),
        csv=str(reid_folder / "train.csv"),
        image_size=16,
        storage=storage,
        **options,
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_reads_what_the_in_memory_split_holds(reid_folder: Path, channels: int) -> None:
    memory = folder_split(section(reid_folder, "memory", channels=channels))
    disk = folder_split(section(reid_folder, "disk", channels=channels))
    assert isinstance(memory.train_images, torch.Tensor)
    assert isinstance(disk.train_images, LazyImages)
    for in_memory, lazy in [
        (memory.train_images, disk.train_images),
        (memory.test_images, disk.test_images),
    ]:
        assert lazy.shape == in_memory.shape and len(lazy) == len(in_memory)
        shuffled = torch.randperm(len(lazy), generator=torch.Generator().manual_seed(1))[:7]
        for index in (torch.arange(len(lazy)), shuffled, slice(2, 5)):
            got = lazy[index]
            assert got.dtype == torch.float32 and torch.equal(got, in_memory[index])
        assert torch.equal(torch.cat(list(lazy.split(4))), in_memory)
        assert [len(chunk) for chunk in lazy.split(4)] == [len(c) for c in in_memory.split(4)]
    assert torch.equal(memory.train_labels, disk.train_labels)
    assert torch.equal(memory.test_labels, disk.test_labels)


def test_each_row_is_the_folder_image(reid_folder: Path) -> None:
    folder = ImageFolder(reid_folder / "images", reid_folder / "train.csv", image_size=8)
    rows = torch.tensor([5, 0, 5, 50])
    expected = torch.stack([folder[i][0] for i in rows.tolist()])  # the one-by-one reference
    assert torch.equal(LazyImages(folder, rows)[torch.arange(4)], expected)
    assert LazyImages(folder, rows)[torch.tensor([], dtype=torch.int64)].shape == (0, 3, 8, 8)


def test_a_missing_image_is_named_when_its_batch_is_read(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4), "red").save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("image,label\na.png,1\nb.png,2\n")
    images = LazyImages(
        ImageFolder(tmp_path, tmp_path / "labels.csv", image_size=4), torch.tensor([0, 1])
    )
    (tmp_path / "b.png").unlink()
    assert images[torch.tensor([0])].shape == (1, 3, 4, 4)
    with pytest.raises(UserError, match=r"b\.png: cannot read this image.*labels\.csv, line 3"):
        images[torch.tensor([0, 1])]
