"""The re-identification layout: a folder of images and an ``image,label`` CSV."""

from pathlib import Path

import numpy as np
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


def test_names_and_labels_are_kept_as_written(folder):
    Image.new("RGB", (4, 4), "white").save(folder / " spaced .png")
    csv = write(folder, "image,label\n spaced .png, whale 7 \na.png,007\n")
    data = ImageFolder(folder, csv, image_size=4)
    assert data.image_names == [" spaced .png", "a.png"]
    assert data.classes == [" whale 7 ", "007"]
    assert data[0][0].min() == 1.0  # the file with the spaces in its name is the one read


@pytest.mark.parametrize("column", ["image", "label"])
def test_a_cell_of_only_spaces_is_empty(folder, column):
    row = "   ,1" if column == "image" else "a.png,   "
    with pytest.raises(UserError, match=rf"bad\.csv, line 2, column '{column}': empty value"):
        ImageFolder(folder, write(folder, f"image,label\n{row}\n"), image_size=4)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A PNG beside the image folder ``tmp_path / "root"``, not in it."""
    Image.new("RGB", (4, 4), "blue").save(tmp_path / "outside.png")
    (tmp_path / "root").mkdir()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "root" / "inside.png")
    return tmp_path / "outside.png"


@pytest.mark.parametrize("how", ["dot-dot", "absolute", "symlink"])
def test_images_outside_the_root_are_refused_unless_allowed(outside: Path, how: str) -> None:
    root = outside.parent / "root"
    name = {"dot-dot": "../outside.png", "absolute": str(outside), "symlink": "link.png"}[how]
    if how == "symlink":
        (root / "link.png").symlink_to(outside)
    csv = root / "labels.csv"
    csv.write_text(f"image,label\ninside.png,1\n{name},2\n")
    expected = (
        f"{csv}, line 3, column 'image': {name!r} resolves to {outside.resolve()}, outside the "
        f"image folder {root.resolve()}; "
    )
    with pytest.raises(UserError) as caught:
        ImageFolder(root, csv, image_size=4)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "allow_outside_root=True, recipe key data.allow_outside_root" in message
    data = ImageFolder(root, csv, image_size=4, allow_outside_root=True)
    assert data.image_names == ["inside.png", name]
    assert data[1][0].mean(dim=(1, 2)).tolist() == [0.0, 0.0, 1.0]  # the blue file outside


def test_a_path_that_comes_back_inside_is_accepted(outside: Path) -> None:
    root = outside.parent / "root"
    (root / "sub").mkdir()
    csv = root / "labels.csv"
    csv.write_text("image,label\nsub/../inside.png,1\n")
    assert ImageFolder(root, csv, image_size=4).image_names == ["sub/../inside.png"]


def test_a_listed_folder_refuses_a_symlink_pointing_out(outside: Path) -> None:
    root = outside.parent / "root"
    (root / "link.png").symlink_to(outside)
    with pytest.raises(UserError) as caught:
        ImageFolder(root, None, image_size=4)
    assert str(caught.value).startswith(f"{root / 'link.png'}: resolves to {outside.resolve()}, ")
    assert ImageFolder(root, None, image_size=4, allow_outside_root=True).image_names == [
        "inside.png",
        "link.png",
    ]


def truncated(path: Path) -> None:
    """A noisy 32x32 image cut to its first half: a download or copy that stopped midway."""
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("name", "make", "pattern"),
    [
        ("truncated.png", truncated, "cannot read this image (image file is truncated"),
        ("truncated.jpg", truncated, "cannot read this image (image file is truncated"),
        ("empty.png", lambda p: p.write_bytes(b""), "cannot read this image (cannot identify"),
        ("dot.png", lambda p: Image.new("RGB", (1, 1)).save(p), "1x1 pixels; expected at least 2"),
        ("line.png", lambda p: Image.new("L", (40, 1)).save(p), "40x1 pixels; expected at least 2"),
    ],
)
def test_a_bad_image_is_one_error_naming_it(folder, name, make, pattern):
    make(folder / name)
    data = ImageFolder(folder, write(folder, f"image,label\na.png,1\n{name},2\n"), image_size=4)
    data[0]  # the good one still reads
    with pytest.raises(UserError) as caught:
        data[1]
    message = str(caught.value)
    assert message.startswith(f"{folder / name}: ") and "\n" not in message
    assert pattern in message and message.endswith("bad.csv, line 3")
    assert message.count("listed in") == 1  # said once, not wrapped in a second message


def test_a_decompression_bomb_is_one_error_naming_it(folder, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # a.png's 84 pixels: over twice that
    data = ImageFolder(folder, folder / "labels.csv", image_size=4)
    with pytest.raises(UserError, match=r"a\.png: cannot read this image \(Image size \(84 "):
        data[0]


def test_no_module_lets_truncated_images_through() -> None:
    """Pillow pads a truncated file silently when LOAD_TRUNCATED_IMAGES is on: no module of
    embedforge may turn it on (the truncated cases above fail when it is)."""
    import importlib
    import pkgutil

    from PIL import ImageFile

    import embedforge

    for module in pkgutil.walk_packages(embedforge.__path__, "embedforge."):
        importlib.import_module(module.name)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_missing_image_is_named_when_read(folder):
    data = ImageFolder(folder, folder / "labels.csv", image_size=4)
    (folder / "b.png").unlink()
    with pytest.raises(UserError, match=r"b\.png: cannot read this image.*labels\.csv, line 3$"):
        data[1]


SIXTEEN_BIT = np.array([[0, 1, 255], [256, 32768, 65535], [1000, 40000, 65534]], dtype=np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_grey_is_scaled_by_its_range(tmp_path: Path, suffix: str, channels: int):
    Image.fromarray(SIXTEEN_BIT).save(tmp_path / f"grey{suffix}")
    with Image.open(tmp_path / f"grey{suffix}") as saved:
        assert saved.mode == "I;16"
    data = ImageFolder(tmp_path, None, image_size=3, channels=channels)  # 3x3: not resized
    image, _ = data[0]
    expected = torch.from_numpy(SIXTEEN_BIT.astype(np.float32) / 65535)
    assert image.shape == (channels, 3, 3) and image.dtype == torch.float32
    for channel in image:
        torch.testing.assert_close(channel, expected, rtol=0, atol=1e-7)
    resized, _ = ImageFolder(tmp_path, None, image_size=6, channels=channels)[0]
    assert resized.min() >= 0.0 and resized.max() <= 1.0
    assert 0.3 < resized.mean() < 0.7  # not clipped to 1 as Pillow's 8-bit conversion would


def test_cmyk_jpeg_is_read_as_rgb(tmp_path: Path) -> None:
    colours = {"red": (0, 255, 255, 0), "black": (0, 0, 0, 255), "cyan": (255, 0, 0, 0)}
    for name, cmyk in colours.items():
        Image.new("CMYK", (8, 8), cmyk).save(tmp_path / f"{name}.jpg", quality=100)
    data = ImageFolder(tmp_path, None, image_size=8)
    assert data.image_names == ["black.jpg", "cyan.jpg", "red.jpg"]
    means = torch.stack([data[i][0].mean(dim=(1, 2)) for i in range(3)])
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(means, expected, rtol=0, atol=2 / 255)
