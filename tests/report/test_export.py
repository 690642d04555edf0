"""Figure export: self-contained HTML; PNG 300 dpi, SVG and PDF through one reused browser; no browser."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from toolkit.report import figures as F
from toolkit.report.export import (
    BROWSER_ENV,
    FigureExporter,
    StaticExportUnavailable,
    find_browser,
    set_png_dpi,
    write_html,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fig(bds):
    return F.fig_mean_change(bds)


def test_html_is_self_contained(tmp_path, fig) -> None:
    path = write_html(fig, tmp_path / "f.html")
    text = path.read_text(encoding="utf-8")
    assert "<title>Figure 14.2.1 Mean change" in text
    assert not re.search(r"<script[^>]+src=", text)  # no CDN or other external script
    assert len(text) > 3_000_000 and "Plotly" in text  # plotly.js inline (its own code names its CDN)
    assert not list(tmp_path.glob("*.part"))


def test_static_export_png_svg_pdf(tmp_path, fig, exporter) -> None:
    from PIL import Image

    before = exporter.rendered
    files = exporter.export(fig, tmp_path / "fig_14_2_1")
    assert [p.suffix for p in files] == [".png", ".svg", ".pdf"] and all(p.stat().st_size > 1000 for p in files)
    assert exporter.rendered == before + 3
    with Image.open(files[0]) as im:
        assert round(im.info["dpi"][0]) == 300 and round(im.info["dpi"][1]) == 300
        # 6.5 in × 4.5 in at 300 dpi
        assert im.size == (round(fig.layout.width / 96 * 300), round(fig.layout.height / 96 * 300)) == (1950, 1350)
    root = ET.parse(files[1]).getroot()
    assert root.tag.endswith("svg") and root.get("width") == str(fig.layout.width)
    svg = files[1].read_text(encoding="utf-8")
    assert "@font-face" in svg and "Liberation Sans" in svg and "Figure 14.2.1" in svg
    pdf = files[2].read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/FontFile2" in pdf or b"/FontFile3" in pdf  # fonts embedded
    assert re.search(rb"/BaseFont\s*/[A-Z]{6}\+LiberationSans", pdf)  # the house font, subset


def test_one_session_renders_a_batch(tmp_path, bds, exporter) -> None:
    figs = [(F.fig_box(bds), tmp_path / "a"), (F.fig_trajectories(bds), tmp_path / "b")]
    files = exporter.export_many(figs, formats=["png"])
    assert [p.name for p in files] == ["a.png", "b.png"]
    assert not list(tmp_path.glob("*.part.*"))


def test_missing_browser_says_how_to_enable(monkeypatch, tmp_path, fig) -> None:
    monkeypatch.setenv(BROWSER_ENV, str(tmp_path / "no-such-chromium"))
    with pytest.raises(StaticExportUnavailable) as err:
        FigureExporter()
    text = str(err.value)
    assert "no-such-chromium" in text and "apt-get install chromium" in text and "get_chrome" in text
    with pytest.raises(StaticExportUnavailable):
        find_browser(tmp_path)  # a folder is no browser


def test_bad_export_arguments(tmp_path) -> None:
    from toolkit.errors import ToolkitError

    with pytest.raises(ToolkitError, match="formats"):
        FigureExporter(formats=["jpg"])
    with pytest.raises(ToolkitError, match="not a PNG"):
        (tmp_path / "x.png").write_bytes(b"GIF89a")
        set_png_dpi(tmp_path / "x.png")
