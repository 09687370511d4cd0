import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from embedforge.data.palettes import read_palettes, srgb_to_lab
from embedforge.data.synthetic_palettes import synthetic_palettes
from embedforge.errors import UserError

PALETTE_CSV = """ratio,color_r,color_g,color_b,object_id
0.2,255,0,0,b
0.5,0,255,0,b
0.3,0,0,255,b
0.9,10,20,30,a
0.1,255,255,255,a
"""


def palette_frame() -> pd.DataFrame:
    return pd.read_csv(pd.io.common.StringIO(PALETTE_CSV))


def to_color_layout(rows: pd.DataFrame) -> pd.DataFrame:
    """The same palettes in color.csv's layout."""
    rgb = rows[["color_r", "color_g", "color_b"]].to_numpy()
    hexes = ["#{:02x}{:02x}{:02x}".format(*colour) for colour in rgb]
    return pd.DataFrame(
        {"object_id": rows["object_id"], "percentage": rows["ratio"] * 100, "hex": hexes}
    )


def write(tmp_path: Path, text: str, name: str = "palette.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_palette_layout_sets() -> None:
    palettes = read_palettes(palette_frame())
    assert palettes.ids.tolist() == ["a", "b"]
    assert palettes.feature_names == ("weight", "r", "g", "b")
    values, mask = palettes.sets.values, palettes.sets.mask
    assert values.dtype == torch.float32 and mask.dtype == torch.bool
    assert values.shape == (2, 3, 4)
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert values[0, 2].tolist() == [0.0] * 4  # padding is zeros
    # heaviest first, colours scaled to [0, 1]
    expected_b = torch.tensor([[0.5, 0, 1, 0], [0.3, 0, 0, 1], [0.2, 1, 0, 0]])
    assert torch.allclose(values[1], expected_b)
    assert torch.allclose(values[0, 0], torch.tensor([0.9, 10 / 255, 20 / 255, 30 / 255]))
    assert torch.allclose(values[..., 0].sum(1), torch.ones(2))
    assert (palettes.num_renormalised, palettes.num_truncated) == (0, 0)


def test_file_and_frame_agree(tmp_path: Path) -> None:
    from_file = read_palettes(write(tmp_path, PALETTE_CSV))
    from_frame = read_palettes(palette_frame())
    assert torch.equal(from_file.sets.values, from_frame.sets.values)
    assert from_file.ids.tolist() == from_frame.ids.tolist()


@pytest.mark.parametrize("colour_space", ["rgb", "lab"])
def test_both_layouts_read_to_the_same_sets(tmp_path: Path, colour_space: str) -> None:
    rows = synthetic_palettes(60, seed=3).rows
    color_path = tmp_path / "color.csv"
    to_color_layout(rows).to_csv(color_path, index=False)
    palette = read_palettes(rows, colour_space=colour_space)
    color = read_palettes(color_path, colour_space=colour_space)
    assert palette.ids.tolist() == color.ids.tolist()
    assert palette.feature_names == color.feature_names
    assert torch.allclose(palette.sets.values, color.sets.values, atol=1e-6)
    assert torch.equal(palette.sets.mask, color.sets.mask)


def test_hex_forms_accepted() -> None:
    frame = pd.DataFrame(
        {
            "object_id": [1, 1, 1],
            "percentage": [50, 30, 20],
            "hex": ["#FF0000", "00ff00", " #0000Ff"],
        }
    )
    values = read_palettes(frame).sets.values[0]
    assert values[:, 1:].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_row_order_does_not_matter() -> None:
    rows = synthetic_palettes(50, seed=1).rows
    shuffled = rows.sample(frac=1.0, random_state=0)
    assert torch.equal(read_palettes(rows).sets.values, read_palettes(shuffled).sets.values)


def test_numeric_ids_sorted_as_numbers() -> None:
    frame = palette_frame().assign(object_id=[10, 10, 10, 9, 9])
    palettes = read_palettes(frame)
    assert palettes.ids.tolist() == [9, 10]
    assert palettes.sets.mask.sum(1).tolist() == [2, 3]


def test_generic_layout() -> None:
    frame = pd.DataFrame(
        {"item": ["x", "y", "x"], "w": [2.0, 5.0, 6.0], "f1": [1.5, -3.0, 0.0], "f2": [7, 8, 9]}
    )
    palettes = read_palettes(
        frame, id_column="item", weight_column="w", feature_columns=["f1", "f2"]
    )
    assert palettes.feature_names == ("weight", "f1", "f2")
    assert palettes.ids.tolist() == ["x", "y"]
    assert torch.allclose(
        palettes.sets.values[0], torch.tensor([[0.75, 0.0, 9.0], [0.25, 1.5, 7.0]])
    )  # features are used as they are
    assert palettes.num_renormalised == 2


def test_generic_layout_needs_all_three_names() -> None:
    with pytest.raises(UserError, match="missing: weight_column, feature_columns"):
        read_palettes(palette_frame(), id_column="object_id")


def test_generic_layout_refuses_lab() -> None:
    with pytest.raises(UserError, match="palette or color layout"):
        read_palettes(
            palette_frame(),
            id_column="object_id",
            weight_column="ratio",
            feature_columns=["color_r"],
            colour_space="lab",
        )


def test_generic_missing_column() -> None:
    with pytest.raises(UserError, match=r"DataFrame: missing column\(s\) 'no'"):
        read_palettes(
            palette_frame(), id_column="object_id", weight_column="ratio", feature_columns=["no"]
        )


def test_renormalisation_counted() -> None:
    frame = palette_frame()
    frame.loc[frame.object_id == "a", "ratio"] = [0.3, 0.2]  # sums to 0.5
    frame.loc[frame.object_id == "b", "ratio"] = [0.2, 0.5, 0.305]  # within the tolerance
    palettes = read_palettes(frame)
    assert palettes.num_renormalised == 1
    assert torch.allclose(palettes.sets.values[0, :2, 0], torch.tensor([0.6, 0.4]))
    assert read_palettes(frame, tolerance=1e-3).num_renormalised == 2


def test_truncation_keeps_heaviest() -> None:
    palettes = read_palettes(palette_frame(), max_rows=2)
    assert palettes.num_truncated == 1
    assert palettes.sets.values.shape == (2, 2, 4)
    b = palettes.sets.values[1]
    assert torch.allclose(b[:, 0], torch.tensor([0.5 / 0.8, 0.3 / 0.8]))
    assert b[:, 1:].tolist() == [[0, 1, 0], [0, 0, 1]]  # green and blue kept, red dropped


@pytest.mark.parametrize(
    "rgb,lab",
    [
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),
        ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
        ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
        ((0.5, 0.5, 0.5), (53.39, 0.0, 0.0)),
    ],
)
def test_lab_known_values(rgb: tuple[float, ...], lab: tuple[float, ...]) -> None:
    np.testing.assert_allclose(srgb_to_lab(np.array(rgb)), lab, atol=0.01)


def test_lab_features_scaled() -> None:
    palettes = read_palettes(palette_frame(), colour_space="lab")
    assert palettes.feature_names == ("weight", "lab_l", "lab_a", "lab_b")
    red = palettes.sets.values[1, 2, 1:]
    assert torch.allclose(red, torch.tensor([53.24 / 100, 80.09 / 128, 67.20 / 128]), atol=1e-4)


BAD_CSV = [
    # (file text, what the message must contain)
    ("object_id,ratio,color_r\na,1,0\n", ["missing column(s) 'color_g', 'color_b'", "accepted"]),
    ("object_id,hex\na,#000000\n", ["'percentage'", "color layout"]),
    (PALETTE_CSV.replace("0.5,0,255", "abc,0,255"), ["line 3", "'ratio'", "a number", "'abc'"]),
    (PALETTE_CSV.replace("0.5,0,255", ",0,255"), ["line 3", "'ratio'", "empty cell"]),
    (PALETTE_CSV.replace("0.5,0,255", "NaN,0,255"), ["line 3", "'ratio'", "empty cell"]),
    (PALETTE_CSV.replace("0.5,0,255", "inf,0,255"), ["line 3", "'ratio'", "finite"]),
    (PALETTE_CSV.replace("0.3,0,0,255", "0.3,0,0,256"), ["line 4", "'color_b'", "0 and 255"]),
    (PALETTE_CSV.replace("0.9,10,20", "0.9,-1,20"), ["line 5", "'color_r'", "0 and 255", "-1"]),
    (PALETTE_CSV.replace("0.9,", "-0.9,"), ["line 5", "'ratio'", "non-negative weight"]),
    (PALETTE_CSV.replace("0.9,", "35,"), ["line 5", "'ratio'", "share between 0 and 1"]),
    (PALETTE_CSV.replace("0.9,", "0,").replace("0.1,", "0,"), ["line 5", "object 'a'", "is 0"]),
    (PALETTE_CSV.replace(",b\n", ",b\n\n", 1).replace("0.9,10", "x,10"), ["line 6", "'ratio'"]),
    (
        PALETTE_CSV.replace("0.2,255", "p,255").replace("0.1,", "q,"),
        ["line 2", "'p'", "first of 2 such rows"],
    ),
    ("object_id,percentage,hex\na,100,#12345g\n", ["line 2", "'hex'", "6 hex digits", "#12345g"]),
    ("object_id,percentage,hex\na,100,#12345\n", ["line 2", "'hex'", "6 hex digits"]),
    ("object_id,percentage,hex\na,130,#123456\n", ["line 2", "'percentage'", "0-100"]),
    ("", ["empty file"]),
    ("ratio,color_r,color_g,color_b,object_id\n", ["no data rows"]),
]


@pytest.mark.parametrize("text,expected", BAD_CSV)
def test_bad_csv(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        read_palettes(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, message


def test_bad_dataframe_row_is_its_position() -> None:
    frame = palette_frame()
    frame.loc[3, "color_g"] = 300
    with pytest.raises(UserError, match=r"^DataFrame, row 3, column 'color_g': expected a colour"):
        read_palettes(frame)


def test_empty_dataframe() -> None:
    with pytest.raises(UserError, match="DataFrame: no rows"):
        read_palettes(palette_frame().iloc[:0])


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        read_palettes(tmp_path / "missing.csv")
    with pytest.raises(UserError, match="is a directory"):
        read_palettes(tmp_path)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"ratio,color_r,color_g,color_b,object_id\n\xff\xfe,1,2,3,\x80\n")
    with pytest.raises(UserError, match="could not read it"):
        read_palettes(binary)


@pytest.mark.parametrize(
    "option,message",
    [
        ({"colour_space": "hsv"}, "colour_space"),
        ({"max_rows": 0}, "max_rows"),
        ({"tolerance": -1.0}, "tolerance"),
    ],
)
def test_bad_options(option: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_palettes(palette_frame(), **option)


def test_competition_size_is_fast() -> None:
    rows = synthetic_palettes(24_000, seed=0).rows
    start = time.perf_counter()
    palettes = read_palettes(rows)
    elapsed = time.perf_counter() - start
    assert len(palettes) == 24_000
    assert elapsed < 2.0, f"{elapsed:.2f} s"  # ~0.1 s on a laptop core; slack for busy CI
