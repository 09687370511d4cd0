"""Pieces of a self-contained HTML page: sections, embedded PNGs, notes and tables.

Reports are meant to be opened anywhere, without network: the style sheet is inline,
images are ``data:`` URIs, and no script runs. Every text is HTML-escaped.
"""

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
pre { background: #f5f5f5; padding: 1rem; overflow-x: auto; font-size: .85rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: .5rem 0; }
.note { color: #555; font-size: .9rem; }
.row { display: flex; gap: .6rem; align-items: flex-start; margin: .6rem 0; }
.tile { width: 128px; font-size: .75rem; overflow-wrap: anywhere; padding: 3px;
  border: 3px solid transparent; }
.tile.query { border-color: #555; background: #f2f2f2; }
.tile.right { border-color: #1a7f37; } .tile.wrong { border-color: #cf222e; }
.tile img { width: 96px; height: 96px; margin: 0 0 .2rem; image-rendering: pixelated; }
.swatch { display: flex; width: 120px; height: 48px; margin: 0 0 .2rem; }
.swatch span { display: block; flex: none; height: 100%; }
"""


def page(title: str, sections: Iterable[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def section(anchor: str, heading: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{html.escape(heading)}</h2>\n{body}\n</section>"


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def table(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column table: a name, then its value."""
    cells = "".join(
        f"<tr><th>{html.escape(name)}</th><td class='num'>{number(value)}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def grid(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table with a header row; numbers are right-aligned."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    kind = " class='num'" if isinstance(value, int | float) else ""
    return f"<td{kind}>{number(value)}</td>"


def number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))
