"""Estimands on analysis data: intercurrent events from ADSL and deviations, strategies applied to the
post-event records, and the main estimator and sensitivity analyses against the functions they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.stats.conftest import FIRST_DOSE, trial_with_disposition
from toolkit.errors import DataError
from toolkit.stats import mmrm, reference_based_mi
from toolkit.stats.estimands import run_estimand
from toolkit.stats.intercurrent import apply_strategies, intercurrent_events
from toolkit.stats.plan import _arm_ids, run_analysis_plan
from toolkit.study import load_study
from toolkit.study.estimands import Estimand


@pytest.fixture(scope="module")
def study(repo_root):
    return load_study(repo_root / "studies" / "epmc-demo")


@pytest.fixture(scope="module")
def trial() -> tuple[pd.DataFrame, pd.DataFrame]:
    return trial_with_disposition()


def _estimand(**events: dict) -> Estimand:
    return Estimand(id="E_TEST", analysis="KEY1",
                    intercurrent_events=[{"event": k, **v} for k, v in events.items()])


def test_events_come_from_adsl_and_deviations(trial) -> None:
    _, adsl = trial
    dv = pd.DataFrame({"USUBJID": ["S0005", "S0006"], "DVTERM": ["Hyaluronic FILLER injected in the nasolabial fold",
                                                                 "visit out of window"],
                       "DVSTDTC": [f"{(FIRST_DOSE + pd.Timedelta(days=40)).date()}T10:00", "2026-04-01"]})
    events = intercurrent_events(adsl, deviations=dv, procedure_terms=("filler",)).set_index("USUBJID")
    assert events.loc["S0002", "event"] == "treatment_discontinuation"
    assert events.loc["S0002", "study_day"] == 30 and events.loc["S0002", "source"] == "ADSL.EOTDT"
    assert events.loc["S0014", "event"] == "ae_withdrawal" and events.loc["S0014", "reason"] == "ADVERSE EVENT"
    assert events.loc["S0005", "event"] == "prohibited_procedure" and events.loc["S0005", "study_day"] == 41
    assert "S0006" not in events.index  # a deviation that is no prohibited procedure
    # without the ae_withdrawal event in the estimand, an AE discontinuation is a treatment discontinuation
    plain = intercurrent_events(adsl, ae_events=False).set_index("USUBJID")
    assert plain.loc["S0014", "event"] == "treatment_discontinuation"
    with pytest.raises(DataError, match="EOTSTT"):
        intercurrent_events(adsl.drop(columns=["EOTSTT", "EOSSTT"]))


def test_strategies_change_only_the_post_event_records(trial, study) -> None:
    bds, adsl = trial
    records = bds[bds["AVISITN"] > 0]
    baseline = bds[bds["AVISITN"] == 0]
    events = intercurrent_events(adsl)
    hyp = apply_strategies(records, events, _estimand(ae_withdrawal={"strategy": "hypothetical"},
                                                      treatment_discontinuation={"strategy": "hypothetical"}),
                           study=study, subjects=baseline)
    # S0014 stopped on day 60: S12 (day 78) is removed, S4 and S8 stay
    kept = hyp.records[hyp.records.USUBJID == "S0014"]
    assert sorted(kept["AVISITN"]) == [4.0, 8.0]
    flags = hyp.flags.set_index(["USUBJID", "AVISITN"])
    assert flags.loc[("S0014", 12.0), "ICEFL"] == "Y" and "removed" in flags.loc[("S0014", 12.0), "HANDLING"]
    assert flags.loc[("S0002", 8.0), "HANDLING"] == "missing after the event: MAR"
    assert flags.loc[("S0001", 12.0), "ICEFL"] == ""
    ev = hyp.events.set_index("USUBJID")
    assert ev.loc["S0014", "first_visit_affected"] == "After session 12"
    assert ev.loc["S0026", "first_visit_affected"] == "After session 4" and ev.loc["S0026", "missing_after_event"] == 3
    # while on treatment: every post-event visit takes the last value before the event (added when missing)
    wot = apply_strategies(records, events, _estimand(treatment_discontinuation={"strategy": "while_on_treatment"}),
                           study=study, subjects=baseline)
    s2 = wot.records[wot.records.USUBJID == "S0002"].set_index("AVISITN")["CHG"]
    assert s2.loc[8.0] == s2.loc[12.0] == s2.loc[4.0]
    assert "S0026" not in set(wot.records.USUBJID)  # no value on treatment to carry
    # composite: no improvement (0), or the least favourable change seen at that visit
    comp = apply_strategies(records, events, _estimand(ae_withdrawal={"strategy": "composite"}), study=study, subjects=baseline)
    assert comp.records.set_index(["USUBJID", "AVISITN"]).loc[("S0014", 12.0), "CHG"] == 0.0
    worst = apply_strategies(records, events, _estimand(ae_withdrawal={"strategy": "composite", "value": "worst"}),
                             study=study, subjects=baseline)
    at12 = records[records.AVISITN == 12]["CHG"].max()
    assert worst.records.set_index(["USUBJID", "AVISITN"]).loc[("S0014", 12.0), "CHG"] == at12
    # treatment policy keeps what was observed after the event
    tp = apply_strategies(records, events, _estimand(ae_withdrawal={"strategy": "treatment_policy"}), study=study, subjects=baseline)
    assert len(tp.records[tp.records.USUBJID == "S0014"]) == 3


def test_the_main_estimator_is_the_planned_mmrm_on_the_strategy_records(trial, study) -> None:
    bds, adsl = trial
    bds = _arm_ids(study, bds)
    est = Estimand(id="E_TEST", analysis="KEY1", intercurrent_events=[
        {"event": "ae_withdrawal", "strategy": "hypothetical"},
        {"event": "treatment_discontinuation", "strategy": "hypothetical"}], sensitivity=[
        {"method": "reference_based", "assumption": "J2R", "reference": "SHAM", "inference": "conditional_mean"}])
    out = run_estimand(study, bds, est, adsl=adsl, n_jobs=1, progress=False)
    estimates = out.tables["estimand_E_TEST_estimates"].set_index(["role", "comparison"])
    data = bds[(bds.AVISITN > 0) & ~((bds.USUBJID == "S0014") & (bds.AVISITN == 12))]
    direct = mmrm(data, outcome="CHG", treatment="TRTP", visit="AVISIT", subject="USUBJID", baseline="BASE",
                  covariates=["AGEGROUP"], reference="SHAM", contrasts="pairwise")
    want = direct.contrasts.set_index(["visit", "contrast"]).loc[("After session 12", "EP - SHAM")]
    assert estimates.loc[("main", "EP vs SHAM"), "estimate"] == pytest.approx(want.estimate, rel=1e-9)
    assert estimates.loc[("main", "EP vs SHAM"), "se"] == pytest.approx(want.se, rel=1e-9)
    # the sensitivity analysis is reference_based_mi with the events' first affected visits; S0026, who
    # left before the first visit, is imputed throughout
    absent = bds[(bds.USUBJID == "S0026")].assign(AVISIT="After session 4", AVISITN=4.0, CHG=np.nan)
    data = pd.concat([data, absent], ignore_index=True)
    events = pd.DataFrame({"USUBJID": ["S0002", "S0014", "S0026"],
                           "AVISIT": ["After session 8", "After session 12", "After session 4"], "strategy": "J2R"})
    mi = reference_based_mi(data, outcome="CHG", treatment="TRTP", visit="AVISIT", subject="USUBJID",
                            baseline="BASE", covariates=["AGEGROUP"], reference="SHAM", events=events,
                            method="conditional-mean", n_jobs=1, progress=False)
    row = mi.contrasts.set_index(["visit", "contrast"]).loc[("After session 12", "EP - SHAM")]
    assert estimates.loc[("sensitivity", "EP vs SHAM"), "estimate"] == pytest.approx(row.estimate, rel=1e-9)
    assert estimates.loc[("sensitivity", "EP vs SHAM"), "se"] == pytest.approx(row.se, rel=1e-9)


def test_the_plan_reports_its_estimands(trial, study) -> None:
    bds, adsl = trial
    lift = bds.assign(PARAMCD="LIFTJAW", CHG=-bds["CHG"] / 10)
    res = run_analysis_plan(study, pd.concat([bds, lift], ignore_index=True), adsl=adsl, on_error="record",
                            n_jobs=2, progress=False)
    words = res.tables["estimands"]
    assert set(words["estimand"]) == {"E_NLFLEN", "E_LIFTJAW"}
    assert set(words["attribute"]) >= {"population", "variable", "intercurrent_events", "summary_measure"}
    est = res.tables["estimand_E_NLFLEN_estimates"]
    assert list(est["role"]).count("main") == 2 and (est["role"] == "sensitivity").sum() == 6
    assert np.all(est["ci_low"] <= est["estimate"]) and np.all(est["estimate"] <= est["ci_high"])
    tipping = res.tables["estimand_E_NLFLEN_tipping_point"]
    assert set(tipping["comparison"]) <= {"EP vs SHAM", "MC vs SHAM"} and tipping["tipping_delta"].notna().any()
    assert [e["id"] for e in res.estimands] == ["E_NLFLEN", "E_LIFTJAW"]
    # without ADSL the estimands cannot find their events: said in the notes, the plan still runs
    res = run_analysis_plan(study, pd.concat([bds, lift], ignore_index=True), on_error="record", progress=False)
    assert any("E_NLFLEN not estimated" in n and "ADSL" in n for n in res.notes)
    assert "PRIMARY_contrasts" in res.tables
