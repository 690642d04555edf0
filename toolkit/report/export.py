"""Figure export: self-contained HTML always; PNG (300 dpi, tagged), SVG and PDF through one reused browser.

Static images are rendered by kaleido 1.x in a headless Chromium. Starting a browser costs seconds, so a
:class:`FigureExporter` opens one kaleido session and renders every figure of a batch in it. The session runs
on its own event-loop thread, so the exporter works the same from scripts and from a running Jupyter kernel.

The browser is the one kaleido finds (``/usr/bin/chromium`` on Debian), or the binary named by the
``browser_path`` argument or the ``TOOLKIT_BROWSER`` environment variable. Without a browser, exports raise
:class:`StaticExportUnavailable`, whose message says how to enable them; HTML export never needs a browser.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from toolkit.errors import ToolkitError
from toolkit.report.svg_fonts import embed_svg_fonts

__all__ = [
    "BROWSER_ENV",
    "PNG_DPI",
    "STATIC_FORMATS",
    "FigureExporter",
    "StaticExportUnavailable",
    "find_browser",
    "set_png_dpi",
    "write_html",
]

#: environment variable naming the Chromium/Chrome binary used for static export
BROWSER_ENV = "TOOLKIT_BROWSER"
#: resolution of exported PNGs; written into the file's pHYs chunk
PNG_DPI = 300
#: static formats the exporter writes
STATIC_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
_CSS_PX_PER_INCH = 96.0

ENABLE_HINT = (
    "Static export (PNG/SVG/PDF) needs Chromium or Google Chrome: install it with `apt-get install chromium` "
    "(Debian/Ubuntu), or let kaleido fetch one with `python -c \"import kaleido; kaleido.get_chrome_sync()\"`, "
    f"or set {BROWSER_ENV} to a browser binary. HTML figures are written without it."
)


class StaticExportUnavailable(ToolkitError):
    """No usable browser for PNG/SVG/PDF export (HTML export still works)."""


def write_html(fig: go.Figure, path: str | Path, *, plotlyjs: str = "inline") -> Path:
    """Write a figure as an HTML file that opens offline (never a CDN).

    Parameters
    ----------
    fig : Figure
        The figure.
    path : str or Path
        Target file; written to a temporary name first and renamed, so a failure leaves no partial file.
    plotlyjs : {'inline', 'directory'}
        ``inline`` (default): plotly.js inside the file, one self-contained page (about 5 MB).
        ``directory``: the page loads ``plotly.min.js`` from its own folder, written there once; for a
        bundle of many figures that travel together.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    meta = fig.layout.meta
    title = (f"Figure {meta['number']} {meta['title']}" if isinstance(meta, dict) and "number" in meta
             else (fig.layout.title.text or path.stem).replace("<br>", " "))
    if plotlyjs not in ("inline", "directory"):
        raise ToolkitError(f"plotlyjs must be 'inline' or 'directory', got {plotlyjs!r}")
    if plotlyjs == "directory":
        script = path.parent / "plotly.min.js"
        if not script.is_file():
            from plotly.offline import get_plotlyjs

            script.write_text(get_plotlyjs(), encoding="utf-8")
    text = fig.to_html(include_plotlyjs=True if plotlyjs == "inline" else "directory", full_html=True,
                       include_mathjax=False,
                       config={"displaylogo": False, "responsive": False,
                               "toImageButtonOptions": {"format": "svg", "filename": path.stem}},
                       div_id=f"fig-{path.stem}")
    # a document title makes browser tabs and the index readable
    text = text.replace("<head>", f"<head><title>{_html_escape(str(title))}</title>", 1)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def find_browser(browser_path: str | Path | None = None) -> Path:
    """Return the browser binary static export will use.

    Parameters
    ----------
    browser_path : str or Path, optional
        Explicit binary; else ``$TOOLKIT_BROWSER``; else the Chromium/Chrome kaleido finds on this system.

    Raises
    ------
    StaticExportUnavailable
        If the named binary does not exist or no browser is installed; the message says how to enable export.
    """
    explicit = browser_path or os.environ.get(BROWSER_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            origin = "browser_path" if browser_path else f"${BROWSER_ENV}"
            raise StaticExportUnavailable(f"no browser executable at {origin}={str(explicit)!r}. {ENABLE_HINT}")
        return path
    try:
        from choreographer.utils import browser_which

        found = browser_which()
    except Exception:  # a broken choreographer install is reported as "no browser" below
        found = None
    found = found or shutil.which("chromium") or shutil.which("google-chrome") or shutil.which("chrome")
    if not found:
        raise StaticExportUnavailable(f"no Chromium or Chrome found. {ENABLE_HINT}")
    return Path(found)


def set_png_dpi(path: str | Path, dpi: int = PNG_DPI) -> None:
    """Set a PNG's physical resolution (``pHYs`` chunk) to ``dpi`` in place, without re-encoding the pixels.

    Kaleido writes no resolution, so viewers and word processors would assume 72 or 96 dpi.

    Raises
    ------
    ToolkitError
        If the file is not a PNG.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ToolkitError(f"{path}: not a PNG file")
    px_per_m = round(dpi / 0.0254)
    payload = struct.pack(">IIB", px_per_m, px_per_m, 1)  # unit 1 = metre
    phys = struct.pack(">I", len(payload)) + b"pHYs" + payload + struct.pack(">I", zlib.crc32(b"pHYs" + payload))
    out = [data[:8]]
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind != b"pHYs":
            out.append(data[pos:end])
        if kind == b"IHDR":
            out.append(phys)  # the PNG specification wants pHYs before the first IDAT
        pos = end
    tmp = path.with_name(path.name + ".dpi")
    tmp.write_bytes(b"".join(out))
    os.replace(tmp, path)


@dataclass(frozen=True)
class _Job:
    fig: go.Figure
    stem: Path
    formats: tuple[str, ...]


class FigureExporter:
    """One headless browser session that renders many figures to PNG (300 dpi), SVG and PDF.

    Use as a context manager; the browser closes on exit, also after an error::

        with FigureExporter() as exporter:
            exporter.export(fig, "report/figures/fig_14_2_1")          # writes .png .svg .pdf
            exporter.export_many([(fig2, "a"), (fig3, "b")])           # one batch, same browser

    Parameters
    ----------
    browser_path : str or Path, optional
        Chromium/Chrome binary (default: ``$TOOLKIT_BROWSER`` or what kaleido finds).
    formats : sequence of {'png', 'svg', 'pdf'}
        Formats written by :meth:`export` unless overridden.
    dpi : int
        PNG resolution; figure sizes are in CSS pixels (1/96 inch), so PNGs are rendered at ``dpi / 96`` scale.
    timeout_s : float
        Longest time one figure may take to render.
    embed_fonts : bool
        Embed a subset of Liberation Sans in each SVG (PDFs always embed their fonts).

    Raises
    ------
    StaticExportUnavailable
        On entering, if no browser can be started.
    """

    def __init__(
        self,
        *,
        browser_path: str | Path | None = None,
        formats: Sequence[str] = STATIC_FORMATS,
        dpi: int = PNG_DPI,
        timeout_s: float = 90.0,
        embed_fonts: bool = True,
    ) -> None:
        bad = [f for f in formats if f not in STATIC_FORMATS]
        if bad or not formats:
            raise ToolkitError(f"static export formats must be among {list(STATIC_FORMATS)}, got {list(formats)}")
        if dpi < 72 or dpi > 1200:
            raise ToolkitError(f"PNG dpi must be between 72 and 1200, got {dpi}")
        self.browser_path = find_browser(browser_path) if browser_path or os.environ.get(BROWSER_ENV) else None
        self.formats = tuple(formats)
        self.dpi = int(dpi)
        self.timeout_s = float(timeout_s)
        self.embed_fonts = bool(embed_fonts)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._kaleido = None
        #: number of figure files rendered by this session
        self.rendered = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> FigureExporter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Start the browser (done by ``with``)."""
        if self._loop is not None:
            return
        if self.browser_path is None:
            self.browser_path = find_browser()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="toolkit-figure-export", daemon=True)
        self._thread.start()
        try:
            self._run(self._open_kaleido())
        except Exception as exc:
            self.close()
            raise StaticExportUnavailable(f"could not start the browser {self.browser_path}: {exc}. "
                                          f"{ENABLE_HINT}") from None

    async def _open_kaleido(self) -> None:
        import kaleido

        # mathjax=False: the default page would load MathJax from a CDN; figures here use no LaTeX
        k = kaleido.Kaleido(n=1, timeout=self.timeout_s, mathjax=False, path=str(self.browser_path))
        await k.open()
        self._kaleido = k

    def close(self) -> None:
        """Close the browser and stop the session thread (safe to call twice)."""
        if self._loop is None:
            return
        try:
            if self._kaleido is not None:
                self._run(self._kaleido.close(), timeout=30)
        except Exception:  # closing is best effort; the process-level cleanup of choreographer remains
            pass
        finally:
            self._kaleido = None
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop.close()
            self._loop = None
            self._thread = None

    def _run(self, coro, timeout: float | None = None):
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=timeout)

    # -- export ------------------------------------------------------------------------------------
    def export(self, fig: go.Figure, stem: str | Path, formats: Sequence[str] | None = None) -> list[Path]:
        """Render one figure to ``<stem>.png``, ``.svg`` and ``.pdf`` (or ``formats``); return the paths."""
        return self.export_many([(fig, stem)], formats=formats)

    def export_many(
        self, items: Iterable[tuple[go.Figure, str | Path]], formats: Sequence[str] | None = None
    ) -> list[Path]:
        """Render many figures in one batch through the open browser.

        Parameters
        ----------
        items : iterable of (Figure, stem)
            Figures and target paths without suffix.
        formats : sequence of str, optional
            Formats to write (default: the exporter's).

        Returns
        -------
        list of Path
            Files written, in order. Files are written under temporary names and renamed when complete.
        """
        if self._kaleido is None:
            raise ToolkitError("FigureExporter is not open; use it as `with FigureExporter() as exporter:`")
        formats = tuple(formats or self.formats)
        bad = [f for f in formats if f not in STATIC_FORMATS]
        if bad:
            raise ToolkitError(f"static export formats must be among {list(STATIC_FORMATS)}, got {list(formats)}")
        specs, finals = [], []
        for fig, stem in items:
            stem = Path(stem)
            stem.parent.mkdir(parents=True, exist_ok=True)
            width = fig.layout.width or 700
            height = fig.layout.height or 500
            for fmt in formats:
                final = stem.with_name(f"{stem.name}.{fmt}")
                tmp = stem.with_name(f"{stem.name}.part.{fmt}")
                scale = self.dpi / _CSS_PX_PER_INCH if fmt == "png" else 1.0
                specs.append({"fig": fig, "path": tmp,
                              "opts": {"format": fmt, "width": width, "height": height, "scale": scale}})
                finals.append((tmp, final, fmt))
        if not specs:
            return []
        try:
            self._run(self._kaleido.write_fig_from_object(specs, cancel_on_error=True))
        except Exception as exc:
            for tmp, _, _ in finals:
                tmp.unlink(missing_ok=True)
            raise ToolkitError(f"static export failed while rendering {len(specs)} file(s): {exc}") from None
        out = []
        for tmp, final, fmt in finals:
            if fmt == "png":
                set_png_dpi(tmp, self.dpi)
            elif fmt == "svg" and self.embed_fonts:
                embed_svg_fonts(tmp)
            os.replace(tmp, final)
            out.append(final)
        self.rendered += len(out)
        return out
