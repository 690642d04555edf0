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
            "line 2: already stored (ae #1); correct stored records instead",
            "line 3: already stored (ae #2); correct stored records instead",
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
        "subject_id,visit_id,scale,score,assessor\n"
        "S-001,BASELINE,WSRS,4,Dr A\n"
        "S-001,S12,WSRS,2.5,Dr A\n"
        "S-001,W99,WSRS,2,Dr A\n"  # unknown visit
        "S-001,S12,GAIS,7,Dr A\n"  # outside 1–5
        "S-001,S12,LEMPERLE,2,Dr A\n"  # not a scale of this study
        "S-001,S12,WSRS,two,\n"  # not a number, no assessor
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
    ):
        assert expected in err
    good = _write(tmp_path, "good.csv", "\n".join(text.splitlines()[:3]) + "\n")
    code, out, _ = run_cli(
        ["data", "import", str(good), "--study", str(DEMO), "--kind", "assessments"], capsys
    )
    assert code == 0 and "imported 2 assessments row(s)" in out
