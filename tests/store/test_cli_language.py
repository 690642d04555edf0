"""The command line speaks as the forms do: the study named either way on every command, readable sides of a
split-face allocation, one audited command that corrects a stored record."""

from __future__ import annotations

from datetime import date, timedelta

from toolkit.store import open_store

from .conftest import DEMO, SPLITFACE, run_cli

CONSENT = date.today() - timedelta(days=10)


def _allocated(study, sid="S-001", **strata):
    with open_store(study) as store:
        store.enroll_subject(sid, age=50, sex="F", fitzpatrick="III", strata=strata or None,
                             consent_signed_on=CONSENT, checklist=store.info.eligibility.all_met(),
                             checked_on=CONSENT)
        store.record_patch_test(sid, passed=True, read_on=CONSENT + timedelta(days=2))


def test_the_study_is_named_either_way_on_every_command(demo_study, randomized, capsys):
    randomized(demo_study, 3)
    _allocated(demo_study)
    # commands that took --study take the study as their first argument
    code, out, err = run_cli(["subject", "list", str(DEMO)], capsys)
    assert code == 0 and "S-001" in out, err
    code, out, err = run_cli(["--user", "tester", "subject", "allocate", str(DEMO), "--subject", "S-001"], capsys)
    assert code == 0 and "randomisation number" in out, err
    # commands that took the study as their argument take --study (before or after other options)
    code, out, err = run_cli(["study", "validate", "--study", str(DEMO)], capsys)
    assert code == 0, err
    code, out2, err = run_cli(["study", "validate", str(DEMO)], capsys)
    assert code == 0 and out2 == out
    code, out, err = run_cli(["study", "show", f"--study={DEMO}"], capsys)
    assert code == 0 and "Eligibility checklist" in out, err
    code, _, err = run_cli(["study", "unblind", "--reason", "final analysis", "--study", str(DEMO)], capsys)
    assert code != 0 and "Traceback" not in err and "Missing argument" not in err
    # both forms at once on an option command: the study given with --study wins, the rest is left to the command
    code, _, err = run_cli(["subject", "list", "--study", str(DEMO), "extra"], capsys)
    assert code == 2 and "Got unexpected extra argument" in err


def test_split_face_allocation_names_each_side(splitface_study, randomized, capsys):
    randomized(splitface_study, 2)
    _allocated(splitface_study, fitzpatrick_group="III-IV")
    code, out, err = run_cli(["subject", "allocate", "--study", str(SPLITFACE), "--subject", "S-001"], capsys)
    assert code == 0, err
    assert "{" not in out and "'" not in out
    assert "left side: " in out and "right side: " in out


def test_data_correct_changes_a_record_with_a_reason(demo_study, randomized, capsys):
    randomized(demo_study, 3)
    _allocated(demo_study)
    with open_store(demo_study) as store:
        ae_id = store.add_adverse_event("S-001", term="Redness", soc="General disorders and administration site "
                                        "conditions", severity="mild", serious=False, relation="possible",
                                        onset=date.today() - timedelta(days=2))
    study = ["--study", str(DEMO), "--table", "adverse_events", "--id", str(ae_id)]
    code, _, err = run_cli(["data", "correct", *study, "--set", "resolved=2026-13-01", "--reason", "letter"], capsys)
    assert code == 2 and "accepted: a date YYYY-MM-DD" in err and "Traceback" not in err
    code, _, err = run_cli(["data", "correct", *study, "--set", "resolved", "--reason", "letter"], capsys)
    assert code == 2 and "must be FIELD=VALUE" in err
    code, _, err = run_cli(["data", "correct", *study, "--set", f"resolved={date.today()}", "--reason", " "], capsys)
    assert code == 2 and "a reason is required" in err
    code, _, err = run_cli(["data", "correct", *study, "--set", f"resolved={date.today() - timedelta(days=5)}",
                            "--reason", "letter"], capsys)
    assert code == 2 and "before" in err  # an end before the onset, checked as at first entry
    with open_store(demo_study) as store:
        assert store.adverse_events("S-001")[0].resolved is None  # nothing written by any refusal
    code, out, err = run_cli(["data", "correct", *study, "--set", f"resolved={date.today()}",
                              "--set", "outcome=recovered/resolved", "--reason", "discharge letter"], capsys)
    assert code == 0 and f"adverse_events #{ae_id} corrected" in out, err
    with open_store(demo_study) as store:
        (event,) = store.adverse_events("S-001")
        assert event.resolved == date.today() and event.outcome == "recovered/resolved"
        from toolkit.store.audit import audit_trail

        last = audit_trail(store, table="adverse_events")[-1]
    assert last["actor"] == "tester" and "discharge letter" in str(last)


def test_an_empty_report_is_an_error(data_root, capsys):
    (data_root / "EMPTY-1").mkdir()
    code, out, err = run_cli(["report", "EMPTY-1", "--no-static"], capsys)
    assert code == 1 and "0 figures, 0 tables, 0 datasets" in out
    assert "the report of EMPTY-1 is empty" in err and "toolkit data export" in err
