"""The HTML report, rendered by a real browser (Debian's chromium, headless)."""

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
from embedforge.evaluate.report import REPORT, SECTIONS, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI installs it)"
)
WINDOW = (1100, 3000)

# Appended to a copy of the page: after load, record which images failed to decode and how
# tall each section was drawn, where --dump-dom can read it.
PROBE = """<script>
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  const heights = {};
  for (const s of document.querySelectorAll("section")) heights[s.id] = s.offsetHeight;
  document.body.dataset.broken = JSON.stringify(broken.map(i => i.alt));
  document.body.dataset.heights = JSON.stringify(heights);
});
</script>"""


def _chromium(*arguments: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def render(page: Path, screenshot: Path) -> dict:
    """What chromium made of ``page``: console messages, broken images, section heights."""
    logged = _chromium(
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={screenshot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        page.resolve().as_uri(),
    )
    probed = page.with_name(f"probed_{page.name}")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.resolve().as_uri()).stdout
    body = dom[dom.index("<body") : dom.index(">", dom.index("<body"))]
    attribute = {
        name: json.loads(_attribute(body, f"data-{name}").replace("&quot;", '"'))
        for name in ("broken", "heights")
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
    assert set(seen["heights"]) == {*SECTIONS, "threshold"}


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
