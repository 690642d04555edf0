"""Report tables with ICH E3 numbering, written as DOCX, RTF and CSV."""

from toolkit.report.tables.builders import (
    ae_table,
    demographics_table,
    format_p_value,
    listing_table,
    results_table,
)
from toolkit.report.tables.csv_writer import write_csv
from toolkit.report.tables.docx_writer import write_docx
from toolkit.report.tables.html_writer import to_html
from toolkit.report.tables.model import HeaderCell, Table
from toolkit.report.tables.rtf_writer import rtf_escape, to_rtf, write_rtf

__all__ = [
    "HeaderCell",
    "Table",
    "ae_table",
    "demographics_table",
    "format_p_value",
    "listing_table",
    "results_table",
    "rtf_escape",
    "to_html",
    "to_rtf",
    "write_csv",
    "write_docx",
    "write_rtf",
]
