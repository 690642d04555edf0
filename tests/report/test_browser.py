"""A built report opens in headless Chromium, offline: every figure renders and the console stays clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import chromium

pytestmark = pytest.mark.browser

_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): browser test not run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=_ARGS, headless=True)
        yield b
        b.close()


def _render(browser, path: Path, expected: int) -> tuple[list[tuple[float, float]], list[str], list[str]]:
    """Open ``path`` offline; return the size of each figure's main SVG, console errors and figure titles."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    external: list[str] = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:  # the report must not need the network
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(path.as_uri(), wait_until="load", timeout=60_000)
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                               timeout=60_000)
        sizes = page.eval_on_selector_all(
            ".js-plotly-plot",
            "els => els.map(e => { const r = e.querySelector('.main-svg').getBoundingClientRect();"
            " return [r.width, r.height]; })")
        titles = page.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")
    finally:
        page.close()
    assert external == [], external
    return [tuple(s) for s in sizes], errors, titles


def test_index_renders_every_figure(browser, built) -> None:
    _, bundle = built
    n = len(bundle.figures)
    assert n >= 10
    sizes, errors, titles = _render(browser, bundle.index, n)
    assert len(sizes) == n and all(w > 100 and h > 100 for w, h in sizes), sizes
    assert errors == []
    assert sorted(t.split()[1] for t in titles) == sorted(f.number for f in bundle.figures)
    assert all(t.startswith("Figure 14.") for t in titles)


def test_each_figure_page_renders(browser, built) -> None:
    # one standalone page per kind of figure: pages of one kind differ only in their data, and each page
    # parses the whole inline plotly.js (about 5 MB), so this keeps the test to seconds
    _, bundle = built
    seen: dict[str, object] = {}
    for item in bundle.figures:
        text = (bundle.root / item.files[0]).read_text(encoding="utf-8")
        kind = text.split('"kind":"', 1)[1].split('"', 1)[0]
        seen.setdefault(kind, item)
    assert len(seen) >= 10
    for item in seen.values():
        page = bundle.root / item.files[0]
        sizes, errors, titles = _render(browser, page, 1)
        assert len(sizes) == 1 and sizes[0][0] > 100 and sizes[0][1] > 100, item.number
        assert errors == [], (item.number, errors)
        # wrapped titles render as separate lines, so compare without white space
        assert ["".join(t.split()) for t in titles] == ["".join(f"Figure {item.number} {item.title}".split())]


_OVERLAPS = """() => {
  const box = e => e.getBoundingClientRect();
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const notes = [...plot.querySelectorAll('g.annotation')].filter(a => a.textContent.includes('Program:'));
    const ticks = [...plot.querySelectorAll('.xtick text, .g-xtitle text, .g-x2title text')];
    for (const n of notes) for (const t of ticks)
      if (t.textContent.trim() && hit(box(n), box(t))) out.push([plot.id, t.textContent]);
    if (!notes.length) out.push([plot.id, 'no footnotes']);
  }
  return out;
}"""


def _overlaps(browser, path: Path, expected: int) -> list:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(path.as_uri(), wait_until="load", timeout=60_000)
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                               timeout=60_000)
        return page.evaluate(_OVERLAPS)
    finally:
        page.close()


def test_footnotes_never_cover_axis_labels(browser, built, tmp_path) -> None:
    # long visit names make plotly slant the tick labels; the footnotes must start below them
    import pandas as pd

    from toolkit.report import figures as F
    from toolkit.report.export import write_html

    rows = [{"USUBJID": f"S{i}", "TRT01A": arm, "AVISIT": v, "AVISITN": k, "AVAL": float(i % 7 + k)}
            for i, arm in enumerate(["Electroporation", "Microcurrent", "Sham"] * 4)
            for k, v in enumerate(["Baseline", "After session 4", "After session 8", "After session 12",
                                   "Follow-up 4 weeks"])]
    fig = F.fig_box(pd.DataFrame(rows), arm="TRT01A", visit="AVISIT", visit_num="AVISITN", value="AVAL",
                    parameter="Nasolabial wrinkle length (mm)", number="14.2.2", source="test")
    page = write_html(fig, tmp_path / "box.html")
    assert _overlaps(browser, page, 1) == []
    _, bundle = built
    assert _overlaps(browser, bundle.index, len(bundle.figures)) == []
