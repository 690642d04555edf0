"""Write a :class:`~toolkit.report.tables.model.Table` as an HTML fragment for the report's index page."""

from __future__ import annotations

import html

from toolkit.report.tables.model import Table

__all__ = ["to_html"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def to_html(table: Table) -> str:
    """A ``<figure>`` with the title and population as caption, header rows, body and footnotes.

    The first column (row labels) is left-aligned, the others centred, as in the RTF and DOCX files.
    """
    parts = [f"<figure class='table' id='{_e(table.slug)}'><figcaption><b>{_e(table.full_title)}</b>"]
    if table.population:
        parts.append(f"<br>{_e(table.population)}")
    parts.append("</figcaption><table class='data'><thead>")
    for row in table.header_rows():
        parts.append("<tr>" + "".join(
            f"<th{f' colspan={c.span}' if c.span > 1 else ''}>{_e(c.text)}</th>" for c in row) + "</tr>")
    parts.append("</thead><tbody>")
    for values in table.cell_text():
        cells = []
        for k, v in enumerate(values):
            indent = len(v) - len(v.lstrip(" "))
            style = f" style='padding-left:{0.5 + indent * 0.3:.1f}em'" if k == 0 and indent else ""
            cells.append(f"<td{style}>{_e(v.strip()) if k == 0 else _e(v)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    notes = [*table.footnotes, table.provenance]
    parts.append("<div class='footnotes'>" + "".join(f"<p>{_e(n)}</p>" for n in notes) + "</div></figure>")
    return "".join(parts)
