import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from embedforge.data.palettes import lab_to_srgb, read_palettes, srgb_to_lab
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


def test_lab_to_srgb_inverts_srgb_to_lab() -> None:
    rgb = np.random.default_rng(0).random((500, 3))
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-9)


def test_lab_outside_the_srgb_gamut_is_clipped_into_it() -> None:
    """L* 50 with a* = 150 is no sRGB colour: the nearest displayable red, channel by channel."""
    drawn = lab_to_srgb(np.array([[50.0, 150.0, 0.0], [120.0, 0.0, 0.0]]))
    assert drawn.min() >= 0.0 and drawn.max() <= 1.0
    np.testing.assert_allclose(drawn[0, :2], [1.0, 0.0], atol=1e-12)  # all red, no green
    np.testing.assert_allclose(drawn[1], [1.0, 1.0, 1.0])  # brighter than white: white


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
    (PALETTE_CSV.replace("0.5,0,255", "NaN,0,255"), ["line 3", "'ratio'", "finite", "'NaN'"]),
    (PALETTE_CSV.replace("0.5,0,255", "inf,0,255"), ["line 3", "'ratio'", "finite", "got inf"]),
    (PALETTE_CSV.replace("0.5,0,255", "-inf,0,255"), ["line 3", "'ratio'", "finite", "got -inf"]),
    (PALETTE_CSV.replace("0.5,0,255", "NA,0,255"), ["line 3", "'ratio'", "a number", "'NA'"]),
    (PALETTE_CSV.replace("0.5,0,255", "0.5,nan,255"), ["line 3", "'color_r'", "finite", "'nan'"]),
    (PALETTE_CSV.replace("0.5,0,255", "0.5,0,inf"), ["line 3", "'color_g'", "finite", "got inf"]),
    (PALETTE_CSV.replace("0.3,0,0,255", "0.3,0,0,-inf"), ["line 4", "'color_b'", "finite"]),
    (PALETTE_CSV.replace("0.9,10,20,30,a", "0.9,10,20,30,"), ["line 5", "'object_id'", "empty"]),
    (PALETTE_CSV.replace("0.9,10,20,30,a", "0.9,10,30,a"), ["line 5: 4 fields; expected 5"]),
    (
        PALETTE_CSV.replace("object_id\n", "object_id,notes\n").replace(",a\n", ",a,x\n", 1),
        ["line 2: 5 fields; expected 6"],  # the unread notes column would hide it
    ),
    (PALETTE_CSV.replace("0.9,10,20,30,a", "0.9,10,20,30,  "), ["line 5", "'object_id'", "empty"]),
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
    ("", ["empty file (0 bytes)", "expected a header line"]),
    ("ratio,color_r,color_g,color_b,object_id\n", ["no data rows", "one row per colour"]),
    ("ratio,color_r,color_g,color_b,object_id\n\n\n", ["no data rows"]),
    ("\n\n  \n", ["only blank lines", "expected a header line"]),
    ("\n" + PALETTE_CSV, ["line 1: blank", "expected the header"]),
    (
        PALETTE_CSV.replace(",", ";"),
        ["line 1", "'ratio;color_r;color_g;color_b;object_id'", "looks ';'-separated", "commas"],
    ),
    (PALETTE_CSV.replace(",", "\t"), ["line 1", "looks tab-separated", "expected commas"]),
    (
        PALETTE_CSV.replace("object_id\n", "object_id,ratio\n").replace(",a\n", ",a,0.5\n"),
        ["line 1", "column 'ratio' appears 2 times", "expected each column once"],
    ),
    (PALETTE_CSV.replace("0.9,10,20,30,a", "0.9,10,20,30,a,x"), ["line 5", "6 fields", "5"]),
    (PALETTE_CSV.replace("0.2,255,0,0,b", "0.2,255,0,0,b,x"), ["line 2: 6 fields; expected 5"]),
    (PALETTE_CSV.replace("\n", ",\n").replace("object_id,", "object_id"), ["line 2: 6 fields"]),
    (PALETTE_CSV.replace(",a\n", ',"a\n', 1), ["not readable as CSV"]),
]


@pytest.mark.parametrize("text,expected", BAD_CSV)
def test_bad_csv(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        read_palettes(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
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
    with pytest.raises(UserError, match=r"binary\.csv, line 2: byte 0xff is not UTF-8"):
        read_palettes(binary)
    with pytest.raises(UserError, match=r"missing\.parquet: file not found"):
        read_palettes(tmp_path / "missing.parquet")
    palette_frame().iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(UserError, match=r"empty\.parquet: no rows; expected one row per colour"):
        read_palettes(tmp_path / "empty.parquet")


def test_latin_1_is_refused_naming_the_line(tmp_path: Path) -> None:
    """Decoding by a guess (latin-1? cp1252?) could change ids silently, so it is refused."""
    path = tmp_path / "latin-1.csv"
    path.write_bytes(
        PALETTE_CSV.replace("0.1,255,255,255,a", "0.1,255,255,255,café").encode("latin-1")
    )
    with pytest.raises(UserError) as caught:
        read_palettes(path)
    assert str(caught.value).startswith(f"{path}, line 6: byte 0xe9 is not UTF-8; expected a UTF-8")


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


TEXT_IDS = ["007", "0x1F", "1e3", "NA", "null", "鯨-07", "café", " 42", "0012", "7"]
"""Ids pandas would turn into numbers or NaN, or that only look numeric, as written in a file."""


def text_id_csv(ids: list[str]) -> str:
    return "ratio,color_r,color_g,color_b,object_id\n" + "".join(
        f"1.0,{i},0,0,{object_id}\n" for i, object_id in enumerate(ids)
    )


def test_csv_ids_are_the_text_as_written(tmp_path: Path) -> None:
    palettes = read_palettes(write(tmp_path, text_id_csv(TEXT_IDS)))
    assert palettes.ids.tolist() == sorted(TEXT_IDS)  # strings, sorted as strings
    assert all(isinstance(object_id, str) for object_id in palettes.ids)
    red = palettes.sets.values[:, 0, 1] * 255  # each object's red channel: its id's position
    assert red.round().tolist() == [float(TEXT_IDS.index(i)) for i in sorted(TEXT_IDS)]


def test_generic_csv_id_column_is_text(tmp_path: Path) -> None:
    path = write(tmp_path, "item,w,f\n010,1,0.5\n10,1,0.25\n1e1,1,2\n")
    palettes = read_palettes(path, id_column="item", weight_column="w", feature_columns=["f"])
    assert palettes.ids.tolist() == ["010", "10", "1e1"]
    assert palettes.sets.values[:, 0, 1].tolist() == [0.5, 0.25, 2.0]


def test_csv_numeric_ids_sort_as_text(tmp_path: Path) -> None:
    frame = palette_frame().assign(object_id=[10, 10, 10, 9, 9])
    frame.to_csv(tmp_path / "numbers.csv", index=False)
    palettes = read_palettes(tmp_path / "numbers.csv")
    assert palettes.ids.tolist() == ["10", "9"]
    assert palettes.sets.mask.sum(1).tolist() == [3, 2]


@pytest.mark.parametrize(
    "ids,expected",
    [(["b", "a", "a", "c", "c"], ["a", "b", "c"]), ([10, 9, 9, 100, 100], [9, 10, 100])],
    ids=["strings", "int64"],
)
def test_parquet_ids_keep_their_type(tmp_path: Path, ids: list, expected: list) -> None:
    path = tmp_path / "palette.parquet"
    palette_frame().assign(object_id=ids).to_parquet(path, index=False)
    palettes = read_palettes(path)
    assert palettes.ids.tolist() == expected
    assert {type(object_id) for object_id in palettes.ids.tolist()} == {type(expected[0])}


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + PALETTE_CSV.replace("\n", "\r\n").encode())
    from_file = read_palettes(path)
    expected = read_palettes(palette_frame())
    assert from_file.ids.tolist() == ["a", "b"]
    assert torch.equal(from_file.sets.values, expected.sets.values)
    generic = read_palettes(
        path, id_column="object_id", weight_column="ratio", feature_columns=["color_r"]
    )  # the first column is named "ratio", not "\ufeffratio"
    assert torch.allclose(generic.sets.values[0, :, 0], torch.tensor([0.9, 0.1, 0.0]))


def test_quoted_numbers_are_numbers(tmp_path: Path) -> None:
    quoted = '"ratio","color_r","color_g","color_b","object_id"\n' + "".join(
        ",".join(f'"{cell}"' for cell in line.split(",")) + "\n"
        for line in PALETTE_CSV.splitlines()[1:]
    )
    palettes = read_palettes(write(tmp_path, quoted))
    assert torch.equal(palettes.sets.values, read_palettes(palette_frame()).sets.values)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_csv(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"palette.csv{suffix}"
    rows = pd.DataFrame({"ratio": 1.0, "color_r": 0, "color_g": 0, "color_b": 0}, index=TEXT_IDS)
    rows.rename_axis("object_id").reset_index().to_csv(path, index=False)  # compressed by suffix
    assert read_palettes(path).ids.tolist() == sorted(TEXT_IDS)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("palette.csv.gz", "cannot decompress it as .gz"),
        ("palette.csv.zip", "cannot decompress it as .zip"),
        ("palette.parquet", "could not read it as Parquet"),
    ],
)
def test_truncated_file_is_one_error(tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / name
    rows = synthetic_palettes(200, seed=0).rows
    if name.endswith(".parquet"):
        rows.to_parquet(path, index=False)
    else:
        rows.to_csv(path, index=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError) as caught:
        read_palettes(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {expected}") and "\n" not in message
    assert caught.value.__cause__ is None  # no pyarrow or zlib traceback chained


def test_parquet_rows_are_positions(tmp_path: Path) -> None:
    path = tmp_path / "palette.parquet"
    frame = palette_frame()
    frame.loc[3, "color_g"] = 300
    frame.to_parquet(path, index=False)
    with pytest.raises(UserError, match=r"palette\.parquet, row 3, column 'color_g': expected a"):
        read_palettes(path)


def test_one_object_with_ten_thousand_rows(tmp_path: Path) -> None:
    ratio = np.arange(1, 10_001) / 50_005_000  # sums to 1; the heaviest rows are the last
    big = pd.DataFrame({"ratio": ratio, "color_r": 0, "color_g": 0, "color_b": 0})
    big = big.assign(color_r=np.arange(10_000) % 256, object_id="big")
    small = palette_frame().assign(object_id="small")
    pd.concat([big, small]).to_csv(tmp_path / "big.csv", index=False)
    start = time.perf_counter()
    palettes = read_palettes(tmp_path / "big.csv")
    elapsed = time.perf_counter() - start
    assert palettes.ids.tolist() == ["big", "small"] and palettes.num_truncated == 1
    assert palettes.sets.values.shape == (2, 64, 4)
    kept = ratio[::-1][:64]
    assert torch.allclose(palettes.sets.values[0, :, 0], torch.tensor(kept / kept.sum()).float())
    assert (palettes.sets.values[0, :, 1] * 255).round().tolist() == [
        float(r % 256) for r in range(9_999, 9_935, -1)
    ]
    assert elapsed < 2.0, f"{elapsed:.2f} s"  # ~0.05 s on a laptop core
