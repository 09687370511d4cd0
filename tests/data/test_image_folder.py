"""The re-identification layout: a folder of images and an ``image,label`` CSV."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from embedforge.data.image_folder import ImageFolder
from embedforge.errors import UserError

COLOURS = {"a.png": (255, 0, 0), "b.png": (0, 255, 0), "c.jpg": (0, 0, 255), "d.png": (0, 0, 0)}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, colour in COLOURS.items():
        Image.new("RGB", (12, 7), colour).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text(
        "image,label,note\na.png,whale_2,x\nb.png,whale_10,\n\nc.jpg,whale_2,y\nd.png,7,z\n"
    )
    return tmp_path


def test_reads_images_labels_and_classes(folder):
    data = ImageFolder(folder, folder / "labels.csv", image_size=8)
    assert len(data) == 4
    assert data.image_names == ["a.png", "b.png", "c.jpg", "d.png"]
    assert data.classes == ["7", "whale_10", "whale_2"]  # sorted label strings
    assert data.labels.dtype == torch.int64
    assert data.labels.tolist() == [2, 1, 2, 0]
    image, label = data[1]
    assert image.shape == (3, 8, 8) and image.dtype == torch.float32
    assert int(label) == 1 and label.dtype == torch.int64
    assert torch.allclose(image.mean(dim=(1, 2)), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    blue, _ = data[2]  # a JPEG: nearly pure blue
    assert blue[2].min() > 0.9 and blue[:2].max() < 0.1


def test_grey_channel(folder):
    data = ImageFolder(folder, folder / "labels.csv", image_size=5, channels=1)
    image, _ = data[0]
    assert image.shape == (1, 5, 5)
    assert 0.0 < float(image.mean()) < 1.0  # red in grey levels


def test_works_with_a_data_loader(folder):
    loader = torch.utils.data.DataLoader(
        ImageFolder(folder, folder / "labels.csv", image_size=4), batch_size=3
    )
    images, labels = next(iter(loader))
    assert images.shape == (3, 3, 4, 4) and labels.tolist() == [2, 1, 2]


def test_other_column_names(folder):
    (folder / "train.csv").write_text("image,individual_id\na.png,w1\nb.png,w2\n")
    data = ImageFolder(folder, folder / "train.csv", image_size=4, label_column="individual_id")
    assert data.classes == ["w1", "w2"]


def write(folder: Path, text: str) -> Path:
    path = folder / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"bad\.csv: the CSV file is empty; expected a header with columns image,label"),
        ("image,id\na.png,1\n", r"bad\.csv, line 1: missing column\(s\) 'label'.*found: image,id"),
        ("image,label\n", r"bad\.csv: no data rows"),
        ("image,label\na.png,1\n,2\n", r"bad\.csv, line 3, column 'image': empty value"),
        ("image,label\na.png,1\nb.png\n", r"bad\.csv, line 3, column 'label': empty value"),
        (
            "image,label\na.png,1\nzz.png,1\nb.png,2\nyy.png,3\n",
            r"bad\.csv, column 'image': 2 of 4 listed images are not in .*"
            r"first: 'zz.png' \(line 3\)",
        ),
    ],
)
def test_bad_csv(folder, text, pattern):
    with pytest.raises(UserError, match=pattern):
        ImageFolder(folder, write(folder, text), image_size=4)


def test_missing_csv_and_folder(folder):
    with pytest.raises(UserError, match=r"nope\.csv: CSV file not found"):
        ImageFolder(folder, folder / "nope.csv", image_size=4)
    with pytest.raises(UserError, match="image folder not found"):
        ImageFolder(folder / "nowhere", folder / "labels.csv", image_size=4)


@pytest.mark.parametrize(
    ("options", "pattern"), [({"channels": 2}, "channels"), ({"image_size": 0}, "image_size")]
)
def test_bad_options(folder, options, pattern):
    with pytest.raises(UserError, match=pattern):
        ImageFolder(folder, folder / "labels.csv", **({"image_size": 4} | options))


def test_unreadable_image_named(folder):
    (folder / "broken.png").write_bytes(b"not a png")
    data = ImageFolder(folder, write(folder, "image,label\na.png,1\nbroken.png,2\n"), image_size=4)
    data[0]  # the good one still reads: images are read lazily
    with pytest.raises(UserError, match=r"broken\.png: cannot read this image.*bad\.csv, line 3"):
        data[1]
