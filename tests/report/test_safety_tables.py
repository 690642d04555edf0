"""Safety tables against the CDISC pilot study's published counts and their own arithmetic."""

from __future__ import annotations

import pandas as pd
import pytest

from toolkit.report import safety_tables as S

ARMS = ["Placebo", "Xanomeline High Dose", "Xanomeline Low Dose"]


@pytest.fixture(scope="module")
def pilot(reference_dir):
    adsl = pd.read_sas(reference_dir / "cdisc-pilot" / "adsl.xpt", encoding="latin1")
    adae = pd.read_sas(reference_dir / "cdisc-pilot" / "adae.xpt", encoding="latin1")
    return adsl, adae


def test_overview_reproduces_the_pilot_incidence_of_teae(pilot) -> None:
    adsl, adae = pilot
    t = S.ae_overview_table(adae, adsl, number="14.3.1.1")
    body = t.body.set_index(t.body.columns[0])
    row = body.loc["Subjects with any treatment-emergent AE"]
    # CDISCPILOT01 Table 14-5.01: any treatment-emergent AE: placebo 65 (76%), low dose 77 (92%), high dose
    # 76 (90%)
    assert row["Placebo (N=86)"] == "65 (76%)"
    assert row["Xanomeline Low Dose (N=84)"] == "77 (92%)"
    assert row["Xanomeline High Dose (N=84)"] == "76 (90%)"


def test_each_subject_counts_once_at_the_maximum_severity(pilot) -> None:
    adsl, adae = pilot
    t = S.ae_severity_table(adae, adsl, number="14.3.1.3")
    any_row = t.body.iloc[0]
    te = adae[(adae["TRTEMFL"] == "Y") & adae["USUBJID"].isin(adsl.loc[adsl["SAFFL"] == "Y", "USUBJID"])]
    for arm in ARMS:
        counts = [int(str(any_row[(f"{arm} (N={int((adsl[(adsl.SAFFL == 'Y')]['TRT01A'] == arm).sum())})", s)])
                      .split()[0]) for s in ("Mild", "Moderate", "Severe")]
        assert sum(counts) == te.loc[te["TRTA"] == arm, "USUBJID"].nunique()
        severe = te[(te["TRTA"] == arm) & (te["AESEV"] == "SEVERE")]["USUBJID"].nunique()
        assert counts[2] == severe


def test_exposure_summarises_per_subject_and_per_session() -> None:
    adsl = pd.DataFrame({"USUBJID": ["1", "2", "3"], "TRT01A": ["EP", "EP", "SHAM"], "SAFFL": "Y",
                         "CSESS": [12, 6, 12], "COMPLPCT": [100.0, 50.0, 100.0], "TRTDURD": [78, 36, 78]})
    adex = pd.DataFrame({"USUBJID": ["1", "1", "2", "3"], "TRTA": ["EP", "EP", "EP", "SHAM"], "ASESSN": [1, 2, 1, 1],
                         "EXOUTCM": ["COMPLETED", "ABORTED", "COMPLETED", "COMPLETED"], "PARAMCD": "CHARGE",
                         "PARAM": "Delivered charge per session (mC)", "AVAL": [1.0, 0.2, 3.0, 0.0]})
    body = S.exposure_table(adex, adsl, number="14.3.2.1").body
    rows = {(r[0] or last, r[1]): r[2:] for r in body.itertuples(index=False) for last in [r[0]]}
    assert rows[("Sessions completed", "n")] == ("2", "1")
    charge = body[body["Exposure"].eq("Delivered charge per session (mC)").cumsum() > 0]
    assert charge.iloc[1, 2] == "2.00 (1.414)"  # the aborted session is left out: mean of 1 and 3
