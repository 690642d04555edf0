"""Write a :class:`~toolkit.report.tables.model.Table` as hand-written RTF (Rich Text Format 1.9).

Title and population go into ``{\\header …}`` and footnotes with provenance into ``{\\footer …}`` so they
repeat on every page; the column header rows carry ``\\trhdr`` so word processors repeat them after a page
break. Text outside 7-bit ASCII is written as ``\\uN?`` escapes.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.report.tables._atomic import write_atomically
from toolkit.report.tables.model import HeaderCell, Table

__all__ = ["rtf_escape", "to_rtf", "write_rtf"]

_TWIPS_PER_INCH = 1440
_MARGIN_IN = 1.0


def rtf_escape(text: str) -> str:
    r"""Escape ``\ { }``, write newlines and tabs as ``\line`` and ``\tab``, and encode control and non-ASCII
    characters as ``\uN?`` (signed 16-bit, as RTF requires), so raw control bytes never reach the file."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\line ")
        elif ch == "\t":
            out.append("\\tab ")
        elif 32 <= code < 127:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code - 65536 if code > 32767 else code}?")
        else:  # outside the BMP: a UTF-16 surrogate pair
            code -= 0x10000
            for unit in (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)):
                out.append(f"\\u{unit - 65536}?")
    return "".join(out)


#: room for one character of the 9 pt Arial text (twips: 0.78 em, enough for capitals and bold headers; lower-
#: case text averages about 0.55 em), and a cell's padding (``\\trgaph108`` on either side)
_CHAR_TWIPS = 140
_PAD_TWIPS = 2 * 108
#: a text this short (and of at most three words) is kept on one line: "0.80 to 0.93", "12 (50%)", "Rater 1"
_SHORT_TEXT = 14
#: a word longer than this may be broken rather than widen its column further
_LONGEST_WORD = 24


def _unbroken(text: str) -> int:
    """Characters of ``text`` that must stay on one line: all of a short text, else its longest word."""
    words = str(text).split()
    if len(text) <= _SHORT_TEXT and len(words) <= 3:
        return len(text)
    return min(max((len(w) for w in words), default=1), _LONGEST_WORD)


def _widths(table: Table, total_twips: int) -> list[int]:
    """Column widths in twips: each column first gets room for what must not be broken (short texts whole,
    else the longest word, so "GAIS" or "Agreement" never splits); the rest of the line goes to the columns
    whose texts are longer than that, in proportion to what they lack; a line with room to spare is shared in
    proportion to each column's longest text."""
    cells = table.cell_text()
    flat = table.flat_columns()
    needed, floors = [], []
    for j in range(len(flat)):
        longest = max([len(flat[j]) // 2 + 1, *(len(row[j]) for row in cells)])
        floor = max([_unbroken(w) for w in str(flat[j]).split()] + [_unbroken(row[j]) for row in cells])
        floors.append(floor * _CHAR_TWIPS + _PAD_TWIPS)
        needed.append(max(min(longest, 60) * _CHAR_TWIPS + _PAD_TWIPS, floors[-1]))
    if sum(needed) <= total_twips:
        widths = [int(total_twips * n / sum(needed)) for n in needed]
    elif sum(floors) >= total_twips:  # not even the words fit: share the line by them
        widths = [int(total_twips * f / sum(floors)) for f in floors]
    else:
        lack = [n - f for n, f in zip(needed, floors, strict=True)]
        rest = total_twips - sum(floors)
        widths = [f + int(rest * x / sum(lack)) for f, x in zip(floors, lack, strict=True)]
    widths[-1] += total_twips - sum(widths)
    return widths


def _row(cells: list[tuple[str, int]], *, header: bool, bottom_border: bool, top_border: bool) -> str:
    """One table row: cells as (escaped text, right edge in twips)."""
    parts = ["\\trowd\\trgaph108\\trqc"]
    if header:
        parts.append("\\trhdr")
    for _, right in cells:
        if top_border:
            parts.append("\\clbrdrt\\brdrs\\brdrw10")
        if bottom_border:
            parts.append("\\clbrdrb\\brdrs\\brdrw10")
        parts.append(f"\\clvertalb\\cellx{right}")
    parts.append("\n")
    for k, (text, _) in enumerate(cells):
        align = "\\ql" if (k == 0 and not header) else "\\qc"
        # A control word ends at the first character that is not a letter or digit; the space that ends it
        # is part of the word. Without it, "\\qlPRIMARY" reads as an unknown word and "\\qc-32.65" as \\qc
        # with parameter -32, and a word processor drops the cell's text.
        bold, unbold = ("\\b", "\\b0") if header else ("", "")
        parts.append(f"\\pard\\intbl{align}{bold} {text}{unbold}\\cell\n")
    parts.append("\\row\n")
    return "".join(parts)


def to_rtf(table: Table, *, landscape: bool = False) -> str:
    """Return the RTF document text of ``table`` (see :func:`write_rtf`)."""
    page_w, page_h = (11.0, 8.5) if landscape else (8.5, 11.0)
    text_twips = int((page_w - 2 * _MARGIN_IN) * _TWIPS_PER_INCH)
    widths = _widths(table, text_twips)
    edges = [sum(widths[: i + 1]) for i in range(len(widths))]
    margin = int(_MARGIN_IN * _TWIPS_PER_INCH)
    paper_flag, section_flag = ("\\landscape", "\\lndscpsxn") if landscape else ("", "")
    out = [
        "{\\rtf1\\ansi\\ansicpg1252\\deff0\\uc1\n",
        "{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}}\n",
        "{\\colortbl;\\red0\\green0\\blue0;}\n",
        f"{{\\info{{\\title {rtf_escape(table.full_title)}}}}}\n",
        f"\\paperw{int(page_w * _TWIPS_PER_INCH)}\\paperh{int(page_h * _TWIPS_PER_INCH)}"
        f"\\margl{margin}\\margr{margin}\\margt{margin}\\margb{margin}{paper_flag}\n",
        f"\\sectd{section_flag}\\headery720\\footery720\n",
        "{\\header\\pard\\qc\\f0\\fs20\\b " + rtf_escape(table.full_title) + "\\b0\\par\n",
    ]
    if table.population:
        out.append("\\pard\\qc\\fs18 " + rtf_escape(table.population) + "\\par\n")
    out.append("}\n{\\footer")
    for line in [*table.footnotes, table.provenance]:
        out.append("\\pard\\ql\\f0\\fs16 " + rtf_escape(line) + "\\par\n")
    out.append("}\n\\pard\\plain\\f0\\fs18\n")
    header_rows = table.header_rows()
    for r, hrow in enumerate(header_rows):
        cells = []
        col = 0
        for hcell in hrow:
            col += hcell.span
            cells.append((rtf_escape(hcell.text), edges[col - 1]))
        out.append(_row(cells, header=True, top_border=r == 0, bottom_border=r == len(header_rows) - 1
                        or _spans(hrow)))
    body = table.cell_text()
    for i, values in enumerate(body):
        cells = [(rtf_escape(v), edges[j]) for j, v in enumerate(values)]
        out.append(_row(cells, header=False, top_border=False, bottom_border=i == len(body) - 1))
    out.append("\\pard\\par\n}\n")
    return "".join(out)


def _spans(row: list[HeaderCell]) -> bool:
    return any(c.span > 1 for c in row)


def write_rtf(table: Table, path: str | Path, *, landscape: bool = False) -> Path:
    """Write ``table`` as an RTF file whose title, footnotes and header rows repeat on every page.

    Parameters
    ----------
    table : Table
        The table.
    path : str or Path
        Target file (written under a temporary name, then renamed).
    landscape : bool
        Landscape US Letter instead of portrait.

    Returns
    -------
    Path
    """
    text = to_rtf(table, landscape=landscape)
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="ascii"))
