"""Write a :class:`~toolkit.report.tables.model.Table` as a Word document (python-docx).

The title and population sit in the page header and the footnotes and provenance in the page footer, so
both repeat on every page; the column header rows are marked ``w:tblHeader`` so Word repeats them too.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.report.tables._atomic import write_atomically
from toolkit.report.tables.model import Table

__all__ = ["write_docx"]

_FONT = "Arial"  # metric-compatible with Liberation Sans, which LibreOffice substitutes
_BODY_PT = 9
_TITLE_PT = 10


def write_docx(table: Table, path: str | Path, *, landscape: bool = False) -> Path:
    """Write ``table`` to a ``.docx`` file.

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
    return write_atomically(path, lambda tmp: _build(table, landscape).save(str(tmp)))


def _build(table: Table, landscape: bool):
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Inches, Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = _FONT
    style.font.size = Pt(_BODY_PT)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), _FONT)
    section = doc.sections[0]
    section.page_width, section.page_height = Inches(8.5), Inches(11)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Inches(11), Inches(8.5)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Inches(1))

    header = section.header
    title_par = header.paragraphs[0]
    title_par.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title_par.add_run(table.full_title)
    run.bold = True
    run.font.size = Pt(_TITLE_PT)
    if table.population:
        pop = header.add_paragraph(table.population)
        pop.alignment = WD_ALIGN_PARAGRAPH.CENTER

    footer = section.footer
    lines = [*table.footnotes, table.provenance]
    footer.paragraphs[0].text = lines[0]
    for line in lines[1:]:
        footer.add_paragraph(line)
    for par in footer.paragraphs:
        for r in par.runs:
            r.font.size = Pt(8)

    header_rows = table.header_rows()
    cells = table.cell_text()
    n_cols = len(table.body.columns)
    grid = doc.add_table(rows=len(header_rows) + len(cells), cols=n_cols)
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    grid.style = doc.styles["Table Grid"]
    for r, hrow in enumerate(header_rows):
        row = grid.rows[r]
        # repeat this row at the top of every page the table runs onto
        tr_pr = row._tr.get_or_add_trPr()
        flag = OxmlElement("w:tblHeader")
        flag.set(qn("w:val"), "true")
        tr_pr.append(flag)
        col = 0
        for hcell in hrow:
            cell = row.cells[col]
            if hcell.span > 1:
                cell = cell.merge(row.cells[col + hcell.span - 1])
            cell.text = hcell.text
            for par in cell.paragraphs:
                par.alignment = WD_ALIGN_PARAGRAPH.CENTER
                for r_ in par.runs:
                    r_.bold = True
            col += hcell.span
    offset = len(header_rows)
    for i, values in enumerate(cells):
        row = grid.rows[offset + i]
        for j, text in enumerate(values):
            row.cells[j].text = text
            if j > 0:
                row.cells[j].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    return doc
