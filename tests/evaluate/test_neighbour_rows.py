"""Rows of a query beside its neighbours: the seeded sample, the tiles and their marks."""

import numpy as np
import pytest

from embedforge.evaluate.neighbour_rows import row, sample_queries, tile


@pytest.mark.parametrize("n,count", [(0, 6), (3, 6), (6, 6), (100, 6), (100, 1)])
def test_sample_queries_is_distinct_sorted_and_all_when_few(n: int, count: int) -> None:
    drawn = sample_queries(n, count=count, seed=3)
    assert len(drawn) == min(n, count)
    assert len(set(drawn.tolist())) == len(drawn) and (np.diff(drawn) > 0).all()
    assert ((drawn >= 0) & (drawn < n)).all()


def test_sample_queries_is_reproducible_and_depends_on_the_seed() -> None:
    assert sample_queries(1000, seed=1).tolist() == sample_queries(1000, seed=1).tolist()
    assert sample_queries(1000, seed=1).tolist() != sample_queries(1000, seed=2).tolist()


def test_a_tile_escapes_its_caption_but_draws_its_picture() -> None:
    text = tile("<i>picture</i>", ["<script>alert(1)</script>", "a & b"])
    assert "<i>picture</i>" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a &amp; b" in text


@pytest.mark.parametrize(
    "right,kind,line", [(True, "right", "✓ same label"), (False, "wrong", "✗ other label")]
)
def test_a_mark_is_a_border_class_and_a_line_of_text(right: bool, kind: str, line: str) -> None:
    text = tile("", ["x"], right=right)
    assert text.startswith(f"<div class='tile {kind}'>") and f"<div>{line}</div>" in text


def test_an_unmarked_tile_has_neither_and_a_query_is_shaded() -> None:
    assert tile("", ["x"]) == "<div class='tile'><div>x</div></div>"
    marked = tile("", ["x"], query=True, right=True, why=("new", "seen"))
    assert marked.startswith("<div class='tile query right'>") and "✓ new" in marked


def test_a_row_holds_its_tiles_in_order() -> None:
    assert row(["<a>", "<b>"]) == "<div class='row'><a><b></div>"
