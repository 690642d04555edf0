"""Disposition: withdrawal and end of treatment (CLI and store), DS and ADSL, and the per-protocol rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from toolkit.errors import DataError
from toolkit.store import open_store
from toolkit.store.disposition import discontinue_treatment, withdraw_subject
from toolkit.store.export import build_datasets, subject_level_dataset

from .conftest import enrol_eligible, run_cli

FIRST = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def _sessions(store, sid: str, arm: str, n: int) -> None:
    for k in range(1, n + 1):
        did = store.start_delivery(sid, session_number=k, arm_id=arm, side=None, prescription={}, bench={},
                                   instruments={}, settings={}, started_at=FIRST + timedelta(days=7 * (k - 1)))
        store.finish_delivery(did, outcome="completed", reason=None, dose={"charge_C": 0.001}, verification=[],
                              waveforms=[], ended_at=FIRST + timedelta(days=7 * (k - 1), minutes=20))


def _photo(store, photo_file, sid: str, visit: str) -> None:
    path, sha = photo_file(f"{sid}-{visit}")
    pid = store.add_photo(sid, visit_id=visit, path=path, sha256=sha)
    store.add_measurements(pid, pd.DataFrame({"region": ["nasolabial_l", "nasolabial_r"],
                                              "metric": ["wrinkle_length_mm"] * 2, "value": [10.0, 11.0]}),
                           algorithm_version="t", qc={})


@pytest.fixture
def cohort(demo_study, randomized, photo_file):
    """Five randomised subjects: PP, too few sessions, no S12 photo, major deviation, withdrawn."""
    randomized(demo_study, 6)
    with open_store(demo_study) as store:
        for sid, n, photo, major in (("S-001", 12, True, False), ("S-002", 9, True, False),
                                     ("S-003", 12, False, False), ("S-004", 10, True, True),
                                     ("S-005", 6, False, False)):
            enrol_eligible(store, sid, age=50)
            arm = store.allocate(sid).arm_id
            _sessions(store, sid, arm, n)
            if photo:
                _photo(store, photo_file, sid, "S12")
            if major:
                store.add_deviation(sid, description="prohibited filler injection", category="major")
    return demo_study


def test_per_protocol_follows_the_rule_of_the_analysis_plan(cohort) -> None:
    with open_store(cohort) as store:
        adsl = subject_level_dataset(store).set_index("SUBJID")
    # rule: >= 10 completed sessions, a measured photo at S12, no major deviation
    assert adsl["PPROTFL"].to_dict() == {"S-001": "Y", "S-002": "N", "S-003": "N", "S-004": "N", "S-005": "N"}
    assert adsl.loc["S-002", "CSESS"] == 9 and adsl.loc["S-002", "NSESSPL"] == 12
    assert adsl.loc["S-002", "COMPLPCT"] == 75.0
    assert adsl.loc["S-001", "TRTDURD"] == 7 * 11 + 1
    assert adsl.loc["S-001", "EOTSTT"] == "COMPLETED" and adsl.loc["S-002", "EOTSTT"] == "ONGOING"


def test_withdrawal_from_the_command_line_reaches_adsl_and_ds(cohort, capsys) -> None:
    code, out, err = run_cli(["subject", "withdraw", "--study", str(cohort.path), "--subject", "S-005",
                              "--reason", "withdrawal by subject", "--on", "2026-02-20",
                              "--detail", "moved away"], capsys)
    assert code == 0, err
    assert "S-005 withdrawn from the study on 2026-02-20 (WITHDRAWAL BY SUBJECT)" in out
    code, out, err = run_cli(["subject", "discontinue-treatment", "--study", str(cohort.path), "--subject",
                              "S-002", "--reason", "adverse_event", "--on", "2026-03-10"], capsys)
    assert code == 0, err
    with open_store(cohort) as store:
        assert not store.subject("S-005").eligible  # no further sessions for a withdrawn subject
        sets = {d.name: d.frame for d in build_datasets(store)}
    adsl = sets["ADSL"].set_index("SUBJID")
    s5 = adsl.loc["S-005"]
    assert (s5["EOSSTT"], s5["DCSREAS"], s5["DCSREASP"], s5["EOTSTT"]) == (
        "DISCONTINUED", "WITHDRAWAL BY SUBJECT", "moved away", "DISCONTINUED")
    assert s5["EOSDT"] == (date(2026, 2, 20) - date(1960, 1, 1)).days  # a SAS date
    s2 = adsl.loc["S-002"]
    assert (s2["EOTSTT"], s2["DCTREAS"], s2["EOSSTT"]) == ("DISCONTINUED", "ADVERSE EVENT", "ONGOING")
    ds = sets["DS"]
    mine = ds[ds["USUBJID"] == "epmc-demo-S-005"]
    assert mine["DSDECOD"].tolist() == ["INFORMED CONSENT OBTAINED", "RANDOMIZED", "WITHDRAWAL BY SUBJECT",
                                        "WITHDRAWAL BY SUBJECT"]
    assert mine["DSSCAT"].tolist()[2:] == ["STUDY TREATMENT", "STUDY PARTICIPATION"]
    assert mine["DSTERM"].iloc[-1] == "MOVED AWAY" and mine["DSSTDTC"].iloc[-1] == "2026-02-20"
    completed = ds[(ds["USUBJID"] == "epmc-demo-S-001") & (ds["DSSCAT"] == "STUDY TREATMENT")]
    assert completed["DSDECOD"].tolist() == ["COMPLETED"]


@pytest.mark.parametrize(("on", "reason", "needle"), [
    (date(2026, 1, 1), "other", "before consent"),
    (date(2026, 7, 1), "other", "after the last scheduled visit"),
    (date(2026, 2, 1), "bored", "accepted: ADVERSE EVENT"),
])
def test_a_withdrawal_outside_the_study_or_with_an_unknown_reason_is_refused(cohort, on, reason, needle) -> None:
    with open_store(cohort) as store:
        with pytest.raises(DataError, match=needle):
            withdraw_subject(store, "S-005", on=on, reason=reason)
        withdraw_subject(store, "S-005", on=date(2026, 2, 1), reason="lost to follow up")
        with pytest.raises(DataError, match="already recorded"):
            withdraw_subject(store, "S-005", on=date(2026, 2, 2), reason="other")
        with pytest.raises(DataError, match="has withdrawn"):
            discontinue_treatment(store, "S-005", on=date(2026, 2, 2), reason="other")
        assert subject_level_dataset(store).set_index("SUBJID").loc["S-005", "DCSREAS"] == "LOST TO FOLLOW-UP"


def test_a_per_protocol_rule_naming_an_unknown_visit_is_refused(tmp_path) -> None:
    from toolkit.errors import ConfigurationError
    from toolkit.study import load_study

    from .conftest import DEMO

    text = (DEMO / "study.yaml").read_text(encoding="utf-8").replace("photos_at: [S12]", "photos_at: [S13]")
    folder = tmp_path / "epmc-demo"
    folder.mkdir()
    (folder / "study.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as err:
        load_study(folder)
    message = str(err.value) + " ".join(map(str, getattr(err.value, "details", [])))
    assert "photos_at" in message and "S13" in message and "study.yaml" in message
    line = next(k for k, t in enumerate(text.splitlines(), 1) if "photos_at: [S13]" in t)
    assert f"line {line}" in message or f":{line}" in message


def test_a_discontinued_treatment_blocks_further_sessions(cohort) -> None:
    from toolkit.delivery import NotEligible
    from toolkit.delivery.eligibility import check_eligibility

    study = cohort
    session_10 = (FIRST + timedelta(days=7 * 9)).date()
    with open_store(cohort) as store:
        assert check_eligibility(study, store, "S-002", 10, today=session_10).session_number == 10
        discontinue_treatment(store, "S-002", on=date(2026, 3, 10), reason="adverse event")
        record = store.subject("S-002")
        assert record.treatment_ended_on == date(2026, 3, 10) and record.withdrawn_on is None
        assert record.unmet == ["treatment not discontinued"]
        with pytest.raises(NotEligible) as err:
            check_eligibility(study, store, "S-002", 10, today=session_10)
    assert "study treatment ended on 2026-03-10" in str(err.value)
