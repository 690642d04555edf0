"""Embed the house font in exported SVG files, so they look the same on machines without it.

Browsers export SVG text as ``<text>`` with a ``font-family`` list; a viewer without Liberation Sans picks
another font. Embedding a subset of the font (only the characters the file uses) as a base64 ``@font-face``
keeps the file small (tens of kB) and its typography fixed.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import os
import re
from pathlib import Path

__all__ = ["FONT_FILES", "embed_svg_fonts"]

#: Liberation Sans files by CSS font-weight, as Debian installs them (fonts-liberation)
FONT_FILES: dict[int, tuple[str, ...]] = {
    400: ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
          "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"),
    700: ("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
          "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf"),
}
_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)
_TAG = re.compile(r"<[^>]+>")


#: characters every embedded subset holds, so one cached subset serves most figures
_BASE_CHARSET = "".join(chr(c) for c in range(32, 127)) + "".join(chr(c) for c in range(160, 256)) + "–—‘’“”•…−×µΔ≤≥±²³°"


@functools.lru_cache(maxsize=16)
def _subset_woff(font_path: str, text: str) -> bytes:
    from fontTools import subset

    options = subset.Options()
    options.flavor = None
    options.layout_features = ["*"]
    options.notdef_outline = True
    options.drop_tables = [*options.drop_tables, "FFTM"]  # a FontForge timestamp fontTools cannot subset
    font = subset.load_font(font_path, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    buf = io.BytesIO()
    subset.save_font(font, buf, options)
    return buf.getvalue()


def embed_svg_fonts(path: str | Path, family: str = "Liberation Sans") -> bool:
    """Add ``@font-face`` rules with subsets of ``family`` to an SVG file in place.

    Parameters
    ----------
    path : str or Path
        An SVG written by the exporter.
    family : str
        CSS family name the SVG text uses.

    Returns
    -------
    bool
        ``True`` if fonts were embedded; ``False`` when the font files or fontTools are not installed (the
        SVG is left as it was and still names the family).
    """
    try:
        import fontTools  # noqa: F401  (ships with matplotlib; optional here)
    except ImportError:
        return False
    path = Path(path)
    svg = path.read_text(encoding="utf-8")
    if "@font-face" in svg:
        return True
    used = "".join(html.unescape(_TAG.sub("", m)) for m in _TEXT.findall(svg))
    extra = "".join(sorted(set(used) - set(_BASE_CHARSET)))
    rules = []
    for weight, candidates in FONT_FILES.items():
        font_file = next((c for c in candidates if os.path.isfile(c)), None)
        if font_file is None:
            return False
        data = base64.b64encode(_subset_woff(font_file, _BASE_CHARSET + extra)).decode("ascii")
        rules.append(f'@font-face{{font-family:"{family}";font-weight:{weight};'
                     f'src:url(data:font/ttf;base64,{data}) format("truetype");}}')
    style = "<style>" + "".join(rules) + "</style>"
    end = svg.find(">", svg.find("<svg")) + 1
    tmp = path.with_name(path.name + ".fonts")
    tmp.write_text(svg[:end] + style + svg[end:], encoding="utf-8")
    os.replace(tmp, path)
    return True
