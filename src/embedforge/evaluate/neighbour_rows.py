"""A query beside its nearest neighbours: the report's rows of palettes and of images.

Numbers say how good an embedding is; a few examples say what it gets right and wrong, which
is what a reader checks first. Each row is a query tile, then its neighbours' tiles, nearest
first; a tile is a picture (a palette's swatch, an image's thumbnail) over a few lines of
caption. A neighbour can be marked right or wrong (same label as the query or not) with a
green or red border *and* a ✓ or ✗ in its caption, so the mark does not rest on colour alone
(WCAG 2.2, success criterion 1.4.1, "Use of Color"). Every caption is HTML-escaped: ids and
labels come from the user's files.
"""

import html
from collections.abc import Sequence

import numpy as np

QUERIES = 6
"""Query rows a section shows."""
NEIGHBOURS = 5
"""Neighbours beside each query."""
SAME_LABEL = ("same label", "other label")
"""What ✓ and ✗ say on a neighbour by default."""


def sample_queries(n: int, *, count: int = QUERIES, seed: int = 0) -> np.ndarray:
    """``count`` of ``n`` query positions (all when fewer), drawn by ``seed``, ascending.

    >>> sample_queries(3, count=6).tolist()
    [0, 1, 2]
    >>> len(sample_queries(100, count=6, seed=1))
    6
    """
    return np.sort(np.random.default_rng(seed).permutation(n)[:count])


def tile(
    picture: str,
    caption: Sequence[str],
    *,
    query: bool = False,
    right: bool | None = None,
    why: tuple[str, str] = SAME_LABEL,
) -> str:
    """One tile: ``picture`` (HTML, drawn as given) over ``caption`` (lines, escaped).

    ``query`` shades the row's query; ``right`` (True / False) marks the tile right or wrong
    with a green / red border and a last line "✓ why[0]" / "✗ why[1]"; None leaves it
    unmarked.

    >>> tile("<b>x</b>", ["a<b"], right=False)
    "<div class='tile wrong'><b>x</b><div>a&lt;b</div><div>✗ other label</div></div>"
    """
    classes = ["tile", *(["query"] if query else [])]
    lines = list(caption)
    if right is not None:
        classes.append("right" if right else "wrong")
        lines.append(f"✓ {why[0]}" if right else f"✗ {why[1]}")
    text = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    return f"<div class='{' '.join(classes)}'>{picture}{text}</div>"


def row(tiles: Sequence[str]) -> str:
    """Tiles side by side: the query's first, then its neighbours'."""
    return "<div class='row'>" + "".join(tiles) + "</div>"
