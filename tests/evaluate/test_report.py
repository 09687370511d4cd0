"""The HTML report, rendered by a real browser (Debian's chromium, headless)."""

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embedforge.cli import main
from embedforge.errors import UserError
from embedforge.evaluate.neighbour_rows import NEIGHBOURS, QUERIES, sample_queries
from embedforge.evaluate.palette_swatches import palette_colours
from embedforge.evaluate.report import OPEN_SET_SECTIONS, REPORT, SECTIONS, write_report
from embedforge.run_items import load_run_embeddings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI installs it)"
)
WINDOW = (1100, 3000)

# Appended to a copy of the page: after load, record which images failed to decode, how tall
# each section was drawn and where each neighbour tile, swatch colour and thumbnail lies on the
# page (CSS pixels from its top left), where --dump-dom can read it.
PROBE = """<script>
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  const heights = {};
  for (const s of document.querySelectorAll("section")) heights[s.id] = s.offsetHeight;
  const box = e => {
    const r = e.getBoundingClientRect();
    return [r.left + scrollX, r.top + scrollY, r.width, r.height];
  };
  const tiles = [...document.querySelectorAll(".tile")].map(t => ({
    section: t.closest("section").id, classes: t.className, text: t.innerText, box: box(t),
    swatch: [...t.querySelectorAll(".swatch")].map(box),
    colours: [...t.querySelectorAll(".swatch span")].map(box),
    images: [...t.querySelectorAll("img")].map(box)}));
  document.body.dataset.broken = JSON.stringify(broken.map(i => i.alt));
  document.body.dataset.heights = JSON.stringify(heights);
  document.body.dataset.tiles = JSON.stringify(tiles);
  document.body.dataset.height = JSON.stringify(document.documentElement.scrollHeight);
});
</script>"""


def _chromium(*arguments: str) -> subprocess.CompletedProcess:
    # sRGB output, so a swatch's colour is the pixel the screenshot holds; no scroll bar, so the
    # screenshot and the probe lay the page out at the same width
    flags = ["--force-color-profile=srgb", "--hide-scrollbars"]
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *flags, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def render(page: Path, screenshot: Path, *, height: int = WINDOW[1]) -> dict:
    """What chromium made of ``page``: console messages, broken images, section heights, the
    neighbour tiles (see PROBE) and the page's height, with a screenshot of its top
    ``height`` pixels."""
    window = f"--window-size={WINDOW[0]},{height}"
    logged = _chromium(
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={screenshot}",
        window,
        page.resolve().as_uri(),
    )
    probed = page.with_name(f"probed_{page.name}")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(
        "--virtual-time-budget=5000", window, "--dump-dom", probed.resolve().as_uri()
    ).stdout
    body = dom[dom.index("<body") : dom.index(">", dom.index("<body"))]
    attribute = {
        name: json.loads(html.unescape(_attribute(body, f"data-{name}")))
        for name in ("broken", "heights", "tiles", "height")
    }
    console = [line for line in logged.stderr.splitlines() if ":CONSOLE" in line]
    return {"console": console, **attribute}


def _attribute(tag: str, name: str) -> str:
    start = tag.index(f'{name}="') + len(name) + 2
    return tag[start : tag.index('"', start)]


@needs_chromium
def test_the_browser_check_catches_script_errors_and_broken_images(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><section id='a'><img alt='x' src='data:image/png;base64,AA'>"
        "</section><script>undefinedFunction();</script></body></html>"
    )
    seen = render(page, tmp_path / "bad.png")
    assert any("undefinedFunction" in line for line in seen["console"])
    assert seen["broken"] == ["x"]


@needs_chromium
def test_a_palette_report_renders_every_section_without_errors(
    run_dir: Path, tmp_path: Path
) -> None:
    page = write_report(run_dir, out=tmp_path / REPORT)
    html = page.read_text()
    assert "<script" not in html and "http" not in html  # self-contained, nothing to fetch
    seen = render(page, tmp_path / "report.png")
    assert seen["console"] == []
    assert seen["broken"] == []
    assert set(seen["heights"]) == set(SECTIONS)
    assert all(height > 50 for height in seen["heights"].values())
    shot = np.asarray(Image.open(tmp_path / "report.png").convert("L"), dtype=float)
    assert shot.shape == (WINDOW[1], WINDOW[0]) and shot.std() > 10  # drawn, not blank


@needs_chromium
def test_a_reid_report_adds_the_threshold_curve(reid_run: Path, tmp_path: Path) -> None:
    page = tmp_path / REPORT
    assert main(["report", str(reid_run), "--out", str(page)]) == 0
    seen = render(page, tmp_path / "report.png")
    assert seen["console"] == [] and seen["broken"] == []
    assert set(seen["heights"]) == {*SECTIONS, *OPEN_SET_SECTIONS}


TALL = 9000  # screenshot height that holds every section of the small runs' reports
BORDER = {"right": (0x1A, 0x7F, 0x37), "wrong": (0xCF, 0x22, 0x2E)}  # html_page.STYLE


def _pixel(shot: np.ndarray, x: float, y: float) -> np.ndarray:
    return shot[int(y), int(x)].astype(int)


def _inside(box: list[float], seen: dict) -> bool:
    return box[1] + box[3] <= min(TALL, seen["height"])


@needs_chromium
def test_the_palette_swatches_are_drawn_in_the_palettes_colours_and_ratios(
    run_dir: Path, tmp_path: Path
) -> None:
    """Each query's swatch, as the browser drew it: one box per colour, as wide as its ratio,
    whose middle pixel in the screenshot is that colour."""
    page = write_report(run_dir, out=tmp_path / REPORT, seed=3)
    seen = render(page, tmp_path / "report.png", height=TALL)
    shot = np.asarray(Image.open(tmp_path / "report.png").convert("RGB"))
    tiles = [tile for tile in seen["tiles"] if tile["section"] == "neighbours"]
    assert len(tiles) == QUERIES * (1 + NEIGHBOURS) and all(len(t["swatch"]) == 1 for t in tiles)
    queries = [tile for tile in tiles if "query" in tile["classes"].split()]
    run = load_run_embeddings(run_dir)
    chosen = sample_queries(len(run.query), seed=3)
    palettes = palette_colours(run.query_sets[chosen], run.feature_names)
    assert len(queries) == len(palettes) == QUERIES
    sampled = 0
    for tile, (weights, rgb), position in zip(queries, palettes, chosen, strict=True):
        assert str(run.query_ids[position]) in tile["text"]
        (swatch,) = tile["swatch"]
        assert _inside(swatch, seen) and len(tile["colours"]) == len(weights)
        widths = [box[2] for box in tile["colours"]]
        np.testing.assert_allclose(widths, swatch[2] * weights / weights.sum(), atol=0.5)
        for box, colour in zip(tile["colours"], rgb, strict=True):
            if box[2] >= 3:  # a box under 3 px wide has no pixel of its colour alone
                drawn = _pixel(shot, box[0] + box[2] / 2, box[1] + box[3] / 2)
                np.testing.assert_allclose(drawn, np.rint(colour * 255), atol=2)
                sampled += 1
    assert sampled >= QUERIES * 2


@needs_chromium
def test_the_image_sections_draw_every_thumbnail_and_mark_it_in_colour_and_text(
    reid_run: Path, tmp_path: Path
) -> None:
    """Every thumbnail decodes and shows the image (not a blank box); every mark is a green
    or red border in the screenshot and a ✓ or ✗ in the text."""
    page = write_report(reid_run, out=tmp_path / REPORT)
    seen = render(page, tmp_path / "report.png", height=TALL)
    assert seen["console"] == [] and seen["broken"] == []
    assert set(seen["heights"]) == {*SECTIONS, *OPEN_SET_SECTIONS}
    shot = np.asarray(Image.open(tmp_path / "report.png").convert("RGB"))
    by_section = {
        name: [t for t in seen["tiles"] if t["section"] == name] for name in ("neighbours", "new")
    }
    assert len(by_section["neighbours"]) == QUERIES * (1 + NEIGHBOURS)
    assert by_section["new"] and len(by_section["new"]) % 2 == 0  # a query, its nearest
    marked = 0
    for tile in by_section["neighbours"] + by_section["new"]:
        (box,) = tile["images"]
        assert _inside(tile["box"], seen) and box[2] == box[3] == 96
        x, y, w, h = (int(v) for v in box)
        assert shot[y : y + h, x : x + w].std() > 20  # the noisy colour pattern, drawn
        classes = tile["classes"].split()
        for kind, symbol in (("right", "✓"), ("wrong", "✗")):
            if kind in classes:
                assert symbol in tile["text"]
                left, top, _, height = tile["box"]
                np.testing.assert_allclose(
                    _pixel(shot, left + 1.5, top + height / 2), BORDER[kind], atol=2
                )
                marked += 1
    assert marked == QUERIES * NEIGHBOURS + len(by_section["new"]) // 2


def test_report_of_a_missing_run_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


MISSING = {
    "matplotlib": "the report draws its plots with matplotlib",
    "umap": "the map of the embeddings is computed with umap",
}


@pytest.mark.parametrize("package", MISSING)
def test_without_the_report_extra_nothing_is_written(
    package: str, run_dir: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line naming the extra, exit 2, before any work: no report.html, no metrics.json."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "metrics.json").unlink(missing_ok=True)  # else the report would evaluate and write it
    before = _files(run)
    monkeypatch.setitem(sys.modules, package, None)  # import raises ModuleNotFoundError
    message = f"{MISSING[package]}, which is not installed: pip install embedforge[report]"
    with pytest.raises(UserError) as raised:
        write_report(run)
    assert str(raised.value) == message
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"embedforge: error: {message}"]
    assert _files(run) == before and not (run / REPORT).exists()
