"""CSV imports: every bad row reported with its line number, and all rows or none stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import DataError
from toolkit.store import open_store
from toolkit.store.audit import audit_trail, verify_audit
from toolkit.store.imports import import_csv

from .conftest import DEMO, enrol_eligible, run_cli


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_AE = """subject_id,term,soc,severity,serious,relation,onset,resolved
S-001,Erythema,Skin and subcutaneous tissue disorders,mild,N,possible,2026-01-09,2026-01-10
S-002,Muscle twitching,Nervous system disorders,Moderate,y,related,2026-01-10,
"""


def test_good_ae_file_imports_in_one_go_with_audit(db_url, demo_study, tmp_path):
    with open_store(demo_study, url=db_url) as store:
        enrol_eligible(store, "S-001")
        enrol_eligible(store, "S-002")
        result = import_csv(store, "ae", _write(tmp_path, "ae.csv", GOOD_AE))
        assert result.rows == 2
        aes = store.adverse_events()
        assert [(a.subject_id, a.severity, a.serious, a.resolved) for a in aes] == [
            ("S-001", "mild", False, __import__("datetime").date(2026, 1, 10)),
            ("S-002", "moderate", True, None),
        ]
        entries = audit_trail(store, table="adverse_events")
        assert [e["reason"] for e in entries] == ["import ae.csv"] * 2
        assert verify_audit(store).ok


def test_every_bad_row_is_reported_and_nothing_is_imported(demo_study, tmp_path):
    text = (
        "subject_id,term,soc,severity,serious,relation,onset,resolved\n"
        "S-001,Erythema,Skin,mild,N,possible,2026-01-09,\n"  # line 2: fine
        "S-404,Itch,Skin,mild,N,possible,2026-01-09,\n"  # line 3: unknown subject
        "S-001,,Skin,severe,maybe,possible,2026-02-30,\n"  # line 4: three problems
        "S-001,Rash,Skin,mild,N,possible,2026-01-09,2026-01-01\n"  # line 5: resolved before onset
        "S-001,Erythema,Skin,mild,N,possible,2026-01-09,\n"  # line 6: repeats line 2
    )
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        n_before = len(audit_trail(store))
        with pytest.raises(DataError) as info:
            import_csv(store, "ae", _write(tmp_path, "ae.csv", text))
        assert "nothing was imported" in info.value.message
        assert info.value.details == [
            "line 3: subject_id: 'S-404' is not enrolled in study epmc-demo",
            "line 4: term: required, empty",
            "line 4: serious: 'maybe' is not Y or N",
            "line 4: onset: '2026-02-30' is not a date (YYYY-MM-DD)",
            "line 5: resolved 2026-01-01 is before onset 2026-01-09",
            "line 6: repeats line 2",
        ]
        assert store.adverse_events() == []
        assert len(audit_trail(store)) == n_before


def test_header_problems_and_reimport_are_refused(demo_study, tmp_path):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        enrol_eligible(store, "S-002")
        bad_header = _write(tmp_path, "h.csv", "subject,term\nS-001,x\n")
        with pytest.raises(DataError) as info:
            import_csv(store, "ae", bad_header)
        assert info.value.details[0].startswith(
            "line 1: missing required column(s) subject_id, soc, severity"
        )
        assert info.value.details[1].startswith("line 1: unknown column(s) subject")
        path = _write(tmp_path, "ae.csv", GOOD_AE)
        import_csv(store, "ae", path)
        with pytest.raises(DataError) as info:
            import_csv(store, "ae", path)
        assert info.value.details == [
            "line 2: already stored (ae #1); to change it: toolkit data correct --study ... --table adverse_events "
            "--id 1 --set FIELD=VALUE --reason '...'",
            "line 3: already stored (ae #2); to change it: toolkit data correct --study ... --table adverse_events "
            "--id 2 --set FIELD=VALUE --reason '...'",
        ]
        latin1 = tmp_path / "latin1.csv"
        latin1.write_bytes("subject_id,term\nS-001,Érythème\n".encode("latin-1"))
        with pytest.raises(DataError, match="is not UTF-8 text"):
            import_csv(store, "ae", latin1)
        with pytest.raises(DataError, match="accepted: ae, assessments"):
            import_csv(store, "labs", path)
        with pytest.raises(DataError, match="does not exist"):
            import_csv(store, "ae", tmp_path / "missing.csv")


def test_assessments_are_checked_against_the_study(demo_study, tmp_path, capsys):
    text = (
        "subject_id,visit_id,scale,score,assessor,assessed_on\n"
        "S-001,BASELINE,WSRS,4,Dr A,2026-01-06\n"
        "S-001,BASELINE,GAIS,3,Dr A,2026-01-06\n"
        "S-001,W99,WSRS,2,Dr A,2026-01-06\n"  # unknown visit
        "S-001,BASELINE,GAIS,7,Dr B,2026-01-06\n"  # outside 1–5
        "S-001,BASELINE,LEMPERLE,2,Dr A,2026-01-06\n"  # not a scale of this study
        "S-001,BASELINE,WSRS,two,,2026-01-06\n"  # not a number, no assessor
        "S-001,S12,WSRS,2.5,Dr A,2026-01-06\n"  # no session 12 on record
    )
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
    path = _write(tmp_path, "scores.csv", text)
    code, _, err = run_cli(
        ["data", "import", str(path), "--study", str(DEMO), "--kind", "assessments"], capsys
    )
    assert code == 2 and "Traceback" not in err
    for expected in (
        "line 4: visit_id: 'W99' is not accepted; accepted: BASELINE, S4, S8, S12, FU",
        "line 5: GAIS score 7 is outside the scale's range 1–5",
        "line 6: scale: 'LEMPERLE' is not accepted; accepted: WSRS, GAIS",
        "line 7: score: 'two' is not a number",
        "line 7: assessor: required, empty",
        "line 8: subject S-001, visit S12 (After session 12): the visit is not reached, session 12 has not been "
        "given",
    ):
        assert expected in err
    good = _write(tmp_path, "good.csv", "\n".join(text.splitlines()[:3]) + "\n")
    code, out, _ = run_cli(
        ["data", "import", str(good), "--study", str(DEMO), "--kind", "assessments"], capsys
    )
    assert code == 0 and "imported 2 assessments row(s)" in out


def test_scores_carry_the_day_assessed_and_fit_a_visit_reached(demo_study, randomized, tmp_path):
    from datetime import UTC, date, datetime, timedelta

    from toolkit.store.export import build_datasets

    randomized(demo_study, 3)
    first = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    future = (date.today() + timedelta(days=3)).isoformat()
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")  # consent signed 2026-01-05
        arm = store.allocate("S-001").arm_id
        for k in range(1, 5):  # sessions 1-4, weekly from 2026-01-12
            did = store.start_delivery("S-001", session_number=k, arm_id=arm, side=None, prescription={}, bench={},
                                       instruments={}, settings={}, started_at=first + timedelta(days=7 * (k - 1)))
            store.finish_delivery(did, outcome="completed", reason=None, dose={}, verification=[], waveforms=[])
        rows = [
            "S-001,BASELINE,WSRS,4,Dr A,2026-01-10",  # line 2: fine
            "S-001,S4,WSRS,3,Dr A,2026-02-02",  # line 3: the day of session 4: fine
            "S-001,S8,WSRS,3,Dr A,2026-03-02",  # session 8 not given
            "S-001,S4,WSRS,3,Dr B,2026-01-30",  # before session 4
            "S-001,BASELINE,WSRS,4,Dr B,2026-01-20",  # baseline after session 1
            "S-001,BASELINE,WSRS,4,Dr C,2026-01-02",  # before consent
            "S-001,FU,WSRS,2,Dr A,2026-04-01",  # follow-up (study day 106 ± 2) window opens 2026-04-25
            f"S-001,S4,WSRS,2,Dr C,{future}",  # in the future
            "S-001,S4,WSRS,2,Dr D,",  # no day
            "S-001,S4,WSRS,2,Dr E,02/02/2026",  # not ISO 8601
        ]
        path = _write(tmp_path, "scores.csv", "subject_id,visit_id,scale,score,assessor,assessed_on\n"
                      + "\n".join(rows) + "\n")
        with pytest.raises(DataError) as info:
            import_csv(store, "assessments", path)
        assert info.value.details == [
            "line 4: subject S-001, visit S8 (After session 8): the visit is not reached, session 8 has not been "
            "given",
            "line 5: subject S-001, visit S4 (After session 4): assessed_on 2026-01-30 is before session 4, given "
            "on 2026-02-02",
            "line 6: subject S-001, visit BASELINE (Baseline): assessed_on 2026-01-20 is after the first session "
            "(2026-01-12); a baseline score is taken on or before the day of session 1",
            "line 7: subject S-001, visit BASELINE (Baseline): assessed_on 2026-01-02 is before the consent "
            "signed on 2026-01-05",
            "line 8: subject S-001, visit FU (Follow-up 4 weeks): assessed_on 2026-04-01 is before the visit's "
            "window opens on 2026-04-25 (study day 106 − 2 days, counted from session 1 on 2026-01-12)",
            f"line 9: subject S-001, visit S4 (After session 4): assessed_on {future} is in the future",
            "line 10: assessed_on: required, empty",
            "line 11: assessed_on: '02/02/2026' is not a date (YYYY-MM-DD)",
        ]
        no_day = _write(tmp_path, "old.csv", "subject_id,visit_id,scale,score,assessor\nS-001,S4,WSRS,2,Dr A\n")
        with pytest.raises(DataError) as info:
            import_csv(store, "assessments", no_day)
        assert info.value.details[0] == "line 1: missing required column(s) assessed_on"
        with pytest.raises(DataError, match="session 8 has not been given"):
            store.add_assessment("S-001", visit_id="S8", scale="WSRS", score=2, assessor="Dr A",
                                 assessed_on=date(2026, 3, 2))
        good = _write(tmp_path, "good.csv", "subject_id,visit_id,scale,score,assessor,assessed_on\n"
                      + "\n".join(rows[:2]) + "\n")
        assert import_csv(store, "assessments", good).rows == 2
        xf = next(d.frame for d in build_datasets(store) if d.name == "XF")
    scores = xf[xf["XFCAT"] == "CLINICIAN SCALE"].set_index("VISIT")
    assert scores.loc["Baseline", "XFDTC"] == "2026-01-10" and scores.loc["After session 4", "XFDTC"] == "2026-02-02"
