"""A folder of image files plus a CSV of labels: the re-identification layout.

Re-identification data (whales, dolphins, people) comes as one image file per picture and a
table naming the individual in each: ``image,label``, one row per image, the label any id
(string or number) of the individual. Images are read lazily, one at a time, with Pillow, so a
folder of 50,000 photos costs nothing until a batch asks for it.

Labels become class ids by sorting the distinct label strings (as strings: ``"10"`` comes
before ``"2"``); ``classes[i]`` names class ``i``. File names and labels are kept exactly as
written (spaces included); a cell that is empty or only spaces is an error. Line numbers in
error messages are those of the CSV file, its header being line 1.

A listed image must lie inside ``root``: its path, symlinks followed, is resolved and one
outside the resolved root (``../x.png``, ``/etc/x.png``, a symlink pointing out) is refused
unless ``allow_outside_root=True``, so a CSV cannot make the tool read files it was not
pointed at.

Reading an image: Pillow decodes the whole file, and a truncated or damaged one is an error
naming it (Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off: embedforge never turns it
on). An image smaller than :data:`MIN_IMAGE_SIDE` on a side is refused. 16-bit grey images
(PNG, TIFF: Pillow's ``I;16`` modes) are scaled by their 16-bit range, 65535 -> 1.0, where
Pillow's own conversion to 8 bits would clip everything above 255; CMYK (and palette, grey,
alpha) images are converted to RGB by Pillow.
"""

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from embedforge.errors import UserError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MIN_IMAGE_SIDE = 2
"""Images with a side shorter than this (in pixels) are refused: a 1-pixel-wide image is a
placeholder or a broken export, not a picture, and resizing it would invent the rest."""
_SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N")
"""Pillow's modes for 16-bit grey pixels (what it opens 16-bit grey PNG and TIFF files as)."""


class ImageFolder(Dataset):
    """Images listed in a CSV, each read as a ``(C, image_size, image_size)`` float32 in [0, 1].

    ``channels``: 3 reads RGB, 1 grey levels (Pillow's ``L``). Images are resized (bilinear) to
    a square, without keeping the aspect ratio. ``dataset[i]`` is ``(image, label)`` with
    ``label`` an int64 scalar; ``labels`` holds all of them ``(n,)``, ``image_names`` the CSV's
    file names. Extra CSV columns are ignored; other column names can be given. Unlabelled
    images (queries to search with): ``label_column=None``, or ``csv_path=None`` for every
    image file in ``root`` (sorted by name); their labels are all 0 and ``classes`` is ``[""]``.
    ``allow_outside_root=True`` reads listed images whose resolved path is outside ``root``
    (refused by default, see the module docstring).

    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (5, 3), "red").save(root / "a.png")
    >>> _ = (root / "labels.csv").write_text("image,label\\na.png,whale_7\\n")
    >>> data = ImageFolder(root, root / "labels.csv", image_size=4)
    >>> image, label = data[0]
    >>> tuple(image.shape), image[0, 0, 0].item(), int(label), data.classes
    ((3, 4, 4), 1.0, 0, ['whale_7'])
    """

    def __init__(
        self,
        root: str | os.PathLike,
        csv_path: str | os.PathLike | None,
        *,
        image_size: int,
        channels: int = 3,
        image_column: str = "image",
        label_column: str | None = "label",
        allow_outside_root: bool = False,
    ) -> None:
        if channels not in (1, 3):
            raise UserError(f"ImageFolder: channels must be 1 or 3, got {channels!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise UserError(
                f"ImageFolder: image_size must be a positive integer, got {image_size!r}"
            )
        self.root = Path(root)
        self.csv_path = Path(csv_path) if csv_path is not None else self.root
        self.image_size = image_size
        self.channels = channels
        if not self.root.is_dir():
            raise UserError(f"{self.root}: image folder not found")
        if csv_path is None:
            names = _image_files(self.root)
            label_names, self._lines = ["" for _ in names], [0 for _ in names]
        else:
            names, label_names, self._lines = _read_table(self.csv_path, image_column, label_column)
        if not allow_outside_root:
            self._check_inside_root(names, image_column)
        missing = [
            (name, line)
            for name, line in zip(names, self._lines, strict=True)
            if not self._path(name).is_file()
        ]
        if missing:
            name, line = missing[0]
            raise UserError(
                f"{self.csv_path}, column {image_column!r}: {len(missing)} of {len(names)} listed "
                f"images are not in {self.root}; first: {name!r} (line {line}); expected each "
                "listed image to be a file there"
            )
        self.image_names: list[str] = names
        self.classes: list[str] = sorted(set(label_names))
        index = {label: i for i, label in enumerate(self.classes)}
        self.labels: Tensor = torch.tensor(
            [index[label] for label in label_names], dtype=torch.int64
        )

    def __len__(self) -> int:
        return len(self.image_names)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        from PIL import Image, UnidentifiedImageError

        path = self._path(self.image_names[i])
        line = self._lines[i]  # 0: found by listing the folder, not in a CSV
        listed = f"; listed in {self.csv_path}, line {line}" if line else ""
        try:
            with Image.open(path) as image:
                width, height = image.size
                if min(width, height) < MIN_IMAGE_SIDE:
                    raise UserError(
                        f"{path}: {width}x{height} pixels; expected at least {MIN_IMAGE_SIDE} "
                        f"pixels on each side{listed}"
                    )
                pixels = self._pixels(image)  # (H, W, 3) or (H, W), float32 in [0, 1]
        except UserError:  # the size check's own message (a UserError is a ValueError too)
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            raise UserError(
                f"{path}: cannot read this image ({error}); expected a whole image file that "
                f"Pillow can decode{listed}"
            ) from error
        tensor = torch.from_numpy(pixels)
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        return tensor.contiguous(), self.labels[i]  # (C, H, W), ()

    def _pixels(self, image: "PILImage") -> np.ndarray:
        """The decoded, resized image as float32 in [0, 1]: ``(H, W, 3)`` or ``(H, W)``."""
        from PIL import Image

        size = (self.image_size, self.image_size)
        if image.mode in _SIXTEEN_BIT_GREY:  # resized as floats, so no level is clipped
            grey = Image.fromarray(np.asarray(image, dtype=np.float32) / 65535, mode="F")
            grey = np.array(grey.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
            return grey if self.channels == 1 else np.repeat(grey[..., None], 3, axis=2)
        image = image.convert("RGB" if self.channels == 3 else "L")
        image = image.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32) / 255

    def _path(self, name: str) -> Path:
        return self.root / name

    def _check_inside_root(self, names: list[str], image_column: str) -> None:
        """Refuse the first image whose resolved path (symlinks followed) leaves the root."""
        root = self.root.resolve()
        for name, line in zip(names, self._lines, strict=True):
            resolved = self._path(name).resolve()
            if resolved.is_relative_to(root):
                continue
            where = f"{self.csv_path}, line {line}, column {image_column!r}: {name!r}"
            if not line:  # found by listing the folder: a symlink pointing out
                where = f"{self._path(name)}:"
            raise UserError(
                f"{where} resolves to {resolved}, outside the image folder {root}; expected "
                "images inside it (allow_outside_root=True, recipe key data.allow_outside_root: "
                "true, allows it)"
            )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _image_files(root: Path) -> list[str]:
    """The image files directly in ``root``, by name; none is a UserError."""
    names = sorted(p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not names:
        raise UserError(
            f"{root}: no image files in this folder; expected at least one "
            f"({', '.join(IMAGE_SUFFIXES)}) directly in it"
        )
    return names


def _read_table(
    csv_path: Path, image_column: str, label_column: str | None
) -> tuple[list[str], list[str], list[int]]:
    """``(image names, label strings, line numbers)`` of every data row, checked; the labels
    are empty strings when ``label_column`` is None."""
    columns = [image_column] if label_column is None else [image_column, label_column]
    expected = f"expected a header with columns {','.join(columns)}"
    try:
        handle = csv_path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{csv_path}: CSV file not found") from None
    except OSError as error:
        raise UserError(f"{csv_path}: cannot open the CSV file ({error})") from error
    with handle:
        reader = csv.reader(handle)
        try:
            header = [column.strip() for column in next(reader)]
        except StopIteration:
            raise UserError(f"{csv_path}: the CSV file is empty; {expected}") from None
        except (csv.Error, UnicodeDecodeError) as error:
            raise UserError(
                f"{csv_path}, line 1: not a readable CSV header ({error}); {expected} in a UTF-8 "
                "CSV file"
            ) from error
        absent = [column for column in columns if column not in header]
        if absent:
            raise UserError(
                f"{csv_path}, line 1: missing column(s) {', '.join(map(repr, absent))}; "
                f"{expected} (found: {','.join(header)})"
            )
        at = {column: header.index(column) for column in columns}
        names: list[str] = []
        labels: list[str] = []
        lines: list[int] = []
        try:
            for row in reader:
                if not any(field.strip() for field in row):
                    continue  # blank line
                line = reader.line_num
                for column, position in at.items():
                    if position >= len(row) or not row[position].strip():
                        raise UserError(
                            f"{csv_path}, line {line}, column {column!r}: empty value; expected "
                            + ("an image file name" if column == image_column else "a label")
                        )
                names.append(row[at[image_column]])  # as written: spaces are part of a name
                labels.append("" if label_column is None else row[at[label_column]])
                lines.append(line)
        except (csv.Error, UnicodeDecodeError) as error:
            raise UserError(
                f"{csv_path}, line {reader.line_num}: not readable as CSV ({error}); expected a "
                "UTF-8 CSV file, one row per image"
            ) from error
    if not names:
        raise UserError(f"{csv_path}: no data rows after the header; expected one row per image")
    return names, labels, lines
