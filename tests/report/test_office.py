"""Report tables as a writer opens them: every cell, title and footnote whole in LibreOffice."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.report.office import convert, open_as_writer, pdf_pages, require_office
from toolkit.report.tables import Table, write_docx, write_rtf

pytestmark = pytest.mark.office


def _tables() -> list[Table]:
    # cell texts that a careless RTF writer turns into control words or parameters: words right after an
    # alignment word, negative numbers, digits, braces, backslashes, non-ASCII units, leading indentation
    cols = pd.MultiIndex.from_tuples([("", "Analysis"), ("Electroporation", "Estimate (SE)"),
                                      ("Electroporation", "95% CI"), ("Microcurrent", "p-value")])
    results = Table(
        number="14.2.1", title="Change from baseline in nasolabial wrinkle length (mm): ANCOVA",
        body=pd.DataFrame([["PRIMARY", "-32.65 (3.133)", "(-39.10, -26.20)", "<0.001"],
                           ["KEY1", "12 (0.5)", "(1.0, 2.0)", "0.046"],
                           ["{braces} and \\back", "µA ≥ 200", "\u2264 2 mA/cm\u00b2", "1.000"]], columns=cols),
        population="Intent-to-treat population",
        footnotes=["ANCOVA of change from baseline with baseline and age group as covariates.",
                   "p-values are two-sided; -1.5 means a reduction."], source="analysis/results")
    listing = Table(
        number="16.2.1", title="Adverse events listing",
        body=pd.DataFrame({"Subject": [f"S-{i:03d}" for i in range(90)],
                           "Preferred term": ["    Erythema", "Paraesthesia", "Muscle twitching"] * 30,
                           "Onset day": [str(-i) if i % 7 == 0 else str(i) for i in range(90)]}),
        population="Safety population", footnotes=["Onset day relative to the first session."])
    return [results, listing]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    require_office()
    folder = tmp_path_factory.mktemp("office")
    files = []
    for table in _tables():
        for writer, suffix in ((write_rtf, "rtf"), (write_docx, "docx")):
            files.append(writer(table, folder / f"{table.slug}.{suffix}", landscape=table.kind == "Listing"))
    return folder, files


def test_every_cell_title_and_footnote_comes_out_whole(written) -> None:
    folder, files = written
    opened = open_as_writer(files, folder / "opened")
    for table in _tables():
        expected_body = [[c.strip() for c in row] for row in table.cell_text()]
        for suffix in ("rtf", "docx"):
            got = opened[f"{table.slug}.{suffix}"]
            body = [[c.strip() for c in row] for row in got.cells]
            headers = body[: len(table.header_rows())]
            assert body[len(headers):] == expected_body, f"{table.slug}.{suffix}: body cells differ"
            for row in table.header_rows():
                texts = [c.text for c in row if c.text]
                assert any(all(t in h for t in texts) for h in headers), f"{suffix}: header row {texts} lost"
            shown = " ".join(got.header)
            assert table.full_title in shown, f"{table.slug}.{suffix}: title {shown!r}"
            assert table.population in shown
            for note in table.footnotes:
                assert any(note in line for line in got.footer), f"{table.slug}.{suffix}: footnote {note!r}"


def test_title_and_column_headers_repeat_on_every_page(written) -> None:
    folder, files = written
    listing = [f for f in files if f.name.startswith("listing_")]
    pdfs = convert(listing, "pdf", folder / "pdf")
    for pdf in pdfs:
        pages = pdf_pages(pdf)
        assert len(pages) >= 2, f"{pdf.name}: the 90-row listing should span pages"
        for k, page in enumerate(pages, 1):
            assert "Listing 16.2.1 Adverse events listing" in page, f"{pdf.name} page {k}: no title"
            assert "Preferred term" in page, f"{pdf.name} page {k}: column headers not repeated"
            assert "Onset day relative to the first session." in page, f"{pdf.name} page {k}: no footnote"
