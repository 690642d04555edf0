"""Tables: the Table model, DOCX (repeat header rows), RTF (\\trhdr, header/footer groups), CSV, builders."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import DataError
from toolkit.report.tables import (
    Table,
    ae_table,
    demographics_table,
    format_p_value,
    listing_table,
    results_table,
    rtf_escape,
    to_rtf,
    write_csv,
    write_docx,
    write_rtf,
)


def _two_level() -> Table:
    cols = pd.MultiIndex.from_tuples([("", "Parameter"), ("EP", "n"), ("EP", "Mean"), ("MC", "n"), ("MC", "Mean")])
    body = pd.DataFrame([["Wrinkle area (%)", 20, "−1.2", 19, "−0.8"], ["Brow ratio", 20, "0.03", 19, "0.05"]],
                        columns=cols)
    return Table(number="14.2.1", title="Change from baseline at Week 12 – µ summary", body=body,
                 footnotes=["Means of observed cases.", "Second footnote {with braces} \\ and a backslash."],
                 source="ADEFF", population="Full analysis set")


def test_docx_reopens_with_repeating_header_rows_and_spans(tmp_path) -> None:
    from docx import Document
    from docx.oxml.ns import qn

    table = _two_level()
    path = write_docx(table, tmp_path / "t.docx", landscape=True)
    doc = Document(str(path))
    grid = doc.tables[0]
    header_rows = [r for r in grid.rows if r._tr.trPr is not None and r._tr.trPr.find(qn("w:tblHeader")) is not None]
    assert len(header_rows) == 2 and grid.rows[0] is not None
    assert all(r._tr.trPr.find(qn("w:tblHeader")).get(qn("w:val")) == "true" for r in header_rows)
    assert len(grid.rows) == 2 + 2
    top = grid.rows[0].cells
    assert top[1].text == "EP" and top[2]._tc is top[1]._tc  # "EP" spans two columns
    assert grid.rows[2].cells[0].text == "Wrinkle area (%)"
    section = doc.sections[0]
    assert section.page_width > section.page_height  # landscape
    header_text = "\n".join(p.text for p in section.header.paragraphs)
    assert "Table 14.2.1 Change from baseline at Week 12 – µ summary" in header_text
    assert "Full analysis set" in header_text
    footer_text = "\n".join(p.text for p in section.footer.paragraphs)
    assert "Means of observed cases." in footer_text and "Source: ADEFF" in footer_text


def test_rtf_has_header_rows_title_and_footer(tmp_path) -> None:
    table = _two_level()
    path = write_rtf(table, tmp_path / "t.rtf")
    text = path.read_text(encoding="ascii")
    assert text.startswith("{\\rtf1\\ansi") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}") + text.count("\\{") - text.count("\\}")
    assert text.count("\\trhdr") == 2  # both header rows repeat
    header_group = text[text.index("{\\header"):]
    assert "Table 14.2.1 Change from baseline at Week 12 \\u8211? \\u181? summary" in header_group.split("}")[0]
    footer_group = text[text.index("{\\footer"):text.index("\\pard\\plain")]
    assert "Means of observed cases." in footer_group and "Source: ADEFF" in footer_group
    assert "\\{with braces\\} \\\\ and a backslash" in footer_group
    assert text.count("\\row") == 4
    # cell edges increase and stay inside the 6.5 inch text width
    edges = [int(x) for x in re.findall(r"\\cellx(\d+)", text)]
    assert max(edges) == int(6.5 * 1440)
    land = to_rtf(table, landscape=True)
    assert "\\landscape" in land and "\\lndscpsxn" in land and f"\\cellx{int(9 * 1440)}" in land


def test_rtf_escape_handles_unicode_outside_the_bmp() -> None:
    assert rtf_escape("a{b}\\") == "a\\{b\\}\\\\"
    assert rtf_escape("≤") == "\\u8804?"
    assert rtf_escape("😀") == "\\u-10179?\\u-8704?"  # UTF-16 surrogates as signed 16-bit


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_rtf_escape_is_ascii_and_keeps_groups_balanced(text) -> None:
    out = rtf_escape(text)
    assert out.isascii()
    unescaped = re.sub(r"\\[\\{}]", "", out)
    assert "{" not in unescaped and "}" not in unescaped
    # decoding the escapes in one pass gives the text back
    token = re.compile(r"\\u(-?\d+)\?|\\line |\\tab |\\([\\{}])|(.)", re.S)
    units = []
    for m in token.finditer(out):
        if m.group(1) is not None:
            units.append(int(m.group(1)) % 65536)
        else:
            ch = {"\\line ": "\n", "\\tab ": "\t"}.get(m.group(0)) or m.group(2) or m.group(3)
            units.append(ord(ch))
    decoded = b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", "surrogatepass")
    assert decoded == text


def test_csv_flattens_two_level_headers(tmp_path) -> None:
    path = write_csv(_two_level(), tmp_path / "t.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == ["Parameter", "EP | n", "EP | Mean", "MC | n", "MC | Mean"]
    assert back.iloc[0, 0] == "Wrinkle area (%)" and back.iloc[1, 3] == 19


def test_failed_write_leaves_no_partial_file(tmp_path) -> None:
    table = _two_level()
    target = tmp_path / "x.rtf"

    class Boom(RuntimeError):
        pass

    from toolkit.report.tables._atomic import write_atomically

    def writer(tmp):
        tmp.write_text("half")
        raise Boom

    with pytest.raises(Boom):
        write_atomically(target, writer)
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="cannot"):
        write_rtf(table, blocker / "sub" / "t.rtf")


def test_demographics_reproduce_the_cdisc_pilot_table(reference_dir) -> None:
    adsl = pd.read_sas(reference_dir / "cdisc-pilot" / "adsl.xpt", encoding="latin1")
    arms = ["Placebo", "Xanomeline Low Dose", "Xanomeline High Dose"]
    t = demographics_table(adsl, arm="TRT01P", arm_order=arms, continuous={"AGE": "Age (y)"},
                           categorical={"SEX": "Sex"})
    body = t.body.set_index("Statistic")
    # CDISCPILOT01 Table 14-2.01 (summary of demographic and baseline characteristics)
    assert list(body.columns[1:]) == ["Placebo (N=86)", "Xanomeline Low Dose (N=84)",
                                      "Xanomeline High Dose (N=84)", "Total (N=254)"]
    assert list(body.loc["Mean (SD)"][1:]) == ["75.2 (8.59)", "75.7 (8.29)", "74.4 (7.89)", "75.1 (8.25)"]
    assert list(body.loc["Median"][1:]) == ["76.0", "77.5", "76.0", "77.0"]
    assert list(body.loc["Min, Max"][1:]) == ["52, 89", "51, 88", "56, 88", "51, 89"]
    assert list(body.loc["F"][1:]) == ["53 (62%)", "50 (60%)", "40 (48%)", "143 (56%)"]


def test_ae_table_orders_soc_then_terms(reference_dir) -> None:
    adsl = pd.read_sas(reference_dir / "cdisc-pilot" / "adsl.xpt", encoding="latin1")
    adae = pd.read_sas(reference_dir / "cdisc-pilot" / "adae.xpt", encoding="latin1")
    t = ae_table(adae, population=adsl[adsl["SAFFL"] == "Y"], arm_order=["Placebo", "Xanomeline Low Dose",
                                                                          "Xanomeline High Dose"])
    first = t.body.iloc[0].tolist()
    # CDISCPILOT01 Table 14-5.01 prints whole percentages: 65 (76%), 77 (92%), 76 (90%)
    assert first == ["Any adverse event", "65 (76%)", "77 (92%)", "76 (90%)"]
    labels = t.body.iloc[:, 0].tolist()
    assert labels[1] == "GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS"
    assert labels[2] == "    APPLICATION SITE PRURITUS"


def test_results_table_formats_the_stats_vocabulary() -> None:
    res = pd.DataFrame({"contrast": ["EP - Sham"], "estimate": [-1.2345], "se": [0.41], "df": [57.3],
                        "ci_low": [-2.05], "ci_high": [-0.42], "p_value": [0.0004]})
    t = results_table(res, number="14.2.3")
    row = t.body.iloc[0].to_dict()
    assert row == {"contrast": "EP - Sham", "Estimate (SE)": "-1.23 (0.410)", "95% CI": "(-2.05, -0.42)",
                   "df": "57.3", "p-value": "<0.001"}
    assert format_p_value(0.0456) == "0.046"
    with pytest.raises(DataError, match="'estimate'"):
        results_table(res.drop(columns="estimate"))


def test_percentages_round_half_up_as_sas_prints_them() -> None:
    # 1 of 8 is 12.5 %: SAS prints 13 %, Python's round-half-even would print 12 %
    adsl = pd.DataFrame({"ARM": ["EP"] * 8, "SEX": ["F"] + ["M"] * 7})
    body = demographics_table(adsl, arm="ARM", continuous={}, categorical={"SEX": "Sex"}, total=False).body
    assert body["EP (N=8)"].tolist() == ["1 (13%)", "7 (88%)"]
    adae = pd.DataFrame({"USUBJID": ["1"], "TRTA": ["EP"], "AEBODSYS": ["SKIN"], "AEDECOD": ["Erythema"],
                         "TRTEMFL": ["Y"]})
    t = ae_table(adae, population={"EP": 8})
    assert t.body.iloc[0, 1] == "1 (13%)"


def test_listing_is_section_16() -> None:
    t = listing_table(pd.DataFrame({"USUBJID": ["B", "A"], "AGE": [40, 30]}), columns={"USUBJID": "Subject"})
    assert t.full_title.startswith("Listing 16.2.1") and t.slug == "listing_16_2_1"
    assert t.body["Subject"].tolist() == ["A", "B"]


def test_listing_shows_whole_numbers_read_back_as_floats_as_integers() -> None:
    """A dataset read back from CSV or XPT gives floats where a column has gaps (AGE 52.0, session 3.0): listed
    as 52 and 3, a gap blank; a column with fractions keeps them."""
    data = pd.DataFrame({"USUBJID": ["A", "B", "C"], "AGE": [52.0, np.nan, 40.0], "PCT": [100.0, 91.7, np.nan],
                         "N": [3, 4, 5]})
    t = listing_table(data)
    assert t.body["AGE"].tolist() == ["52", "", "40"]
    assert t.body["PCT"].iloc[:2].tolist() == [100.0, 91.7] and t.body["N"].tolist() == [3, 4, 5]
    csv = t.body.to_csv(index=False)
    assert "52.0" not in csv and "A,52,100.0,3" in csv


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"number": "14-1"}, "dotted digits"),
    ({"title": " "}, "title must not be empty"),
    ({"body": "text"}, "DataFrame"),
    ({"body": pd.DataFrame()}, "no columns"),
])
def test_table_model_refuses_bad_definitions(kwargs, needle) -> None:
    base = {"number": "14.1.1", "title": "T", "body": pd.DataFrame({"a": [1]})}
    with pytest.raises(DataError, match=needle):
        Table(**{**base, **kwargs})
