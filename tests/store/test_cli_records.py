"""The records commands: a newcomer walks one subject through, and mistakes get messages, not tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from toolkit.store import open_store

from .conftest import DEMO, run_cli


def test_walk_one_subject_through_the_command_line(demo_study, randomized, capsys):
    randomized(demo_study, 3)
    study = ["--study", str(DEMO)]
    steps = [
        ["subject", "enroll", *study, "--subject", "S-001", "--age", "45", "--sex", "F", "--fitzpatrick", "III",
         "--stratum", "age_group=ge45"],
        ["subject", "consent", *study, "--subject", "S-001", "--signed-on", "2026-01-05"],
        ["subject", "checklist", *study, "--subject", "S-001", "--on", "2026-01-05", "--all-met"],
        ["subject", "patch-test", *study, "--subject", "S-001", "--result", "pass", "--read-on", "2026-01-07"],
        ["subject", "allocate", *study, "--subject", "S-001"],
    ]  # fmt: skip
    outputs = []
    for argv in steps:
        code, out, err = run_cli(argv, capsys)
        assert code == 0, err
        outputs.append(out)
    assert "enrolled S-001 in epmc-demo" in outputs[0]
    assert "next: toolkit subject checklist" in outputs[1]
    assert "12 criteria answered" in outputs[2]
    assert "eligible" in outputs[3] and "not eligible" not in outputs[3]
    assert "randomisation number" in outputs[4]
    code, out, _ = run_cli(["subject", "list", *study], capsys)
    assert code == 0 and "S-001" in out and "1 subject(s)" in out
    with open_store(demo_study) as store:
        rec = store.subject("S-001")
        assert rec.eligible and rec.allocation is not None
        from toolkit.store.audit import audit_trail

        assert audit_trail(store, table="subjects")[0]["actor"] == "tester"
    code, out, _ = run_cli(["audit", "verify", *study], capsys)
    assert code == 0 and "chain intact" in out


def test_mistakes_get_messages(demo_study, capsys):
    study = ["--study", str(DEMO)]
    code, _, err = run_cli(
        ["subject", "consent", *study, "--subject", "S-9", "--signed-on", "5/1/2026"], capsys
    )
    assert code == 2 and "--signed-on '5/1/2026' is not a date; accepted: YYYY-MM-DD" in err
    code, _, err = run_cli(
        ["subject", "enroll", *study, "--subject", "S-1", "--age", "50", "--sex", "F", "--fitzpatrick", "II",
         "--stratum", "ge45"], capsys
    )  # fmt: skip
    assert code == 2 and "must be FACTOR=LEVEL" in err
    code, _, err = run_cli(
        ["subject", "consent", *study, "--subject", "S-9", "--signed-on", "2026-01-01"], capsys
    )
    assert code == 2 and "'S-9' is not enrolled" in err
    code, _, err = run_cli(["subject", "checklist", *study, "--subject", "S-9"], capsys)
    assert code == 2 and "answer every criterion" in err and "epilepsy (exclusion): Epilepsy" in err
    code, _, err = run_cli(["subject", "checklist", *study, "--subject", "S-9", "--answer", "epilepsy"], capsys)
    assert code == 2 and "must be CRITERION=yes or CRITERION=no" in err
    code, _, err = run_cli(["audit", "verify", "--study", "no-such-study"], capsys)
    assert code == 2 and "study 'no-such-study' not found" in err
    code, _, err = run_cli(["data", "export", *study, "--format", "xls"], capsys)
    assert code == 2 and "accepted: csv, parquet, xpt" in err


def test_real_process_exit_code_and_no_traceback(data_root):
    env = {**os.environ, "TOOLKIT_DATA_DIR": str(data_root)}
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "subject", "enroll", "--study", str(DEMO), "--subject", "S-1",
         "--age", "50", "--sex", "X", "--fitzpatrick", "II", "--stratum", "age_group=ge45"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "sex 'X' is not accepted; accepted: F, M, U" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_commands_use_toolkit_db_url(postgres_url, monkeypatch, capsys, tmp_path, provision, demo_study):
    monkeypatch.setenv("TOOLKIT_DB_URL", postgres_url)
    provision(demo_study)
    study = ["--study", str(DEMO)]
    code, out, err = run_cli(
        ["subject", "enroll", *study, "--subject", "P-1", "--age", "40", "--sex", "M", "--fitzpatrick", "2",
         "--stratum", "age_group=lt45"], capsys
    )  # fmt: skip
    assert code == 0 and postgres_url.rsplit("/", 1)[1] in out, err
    code, out, _ = run_cli(
        ["data", "export", *study, "--format", "csv", "--out", str(tmp_path / "x")], capsys
    )
    assert code == 0 and (tmp_path / "x" / "dm.csv").read_text().count("P-1") == 2  # USUBJID and SUBJID
    code, out, _ = run_cli(["audit", "verify", *study], capsys)
    assert code == 0 and "chain intact" in out


@pytest.mark.no_users
def test_a_study_without_a_database_is_not_created_by_reading_it(data_root, capsys, tmp_path):
    """Only adding a study's first user creates its database; every other command says how to begin and
    leaves the data folder without a database."""
    db = data_root / "epmc-demo" / "study.db"
    for argv in (
        ["subject", "list", "--study", str(DEMO)],
        ["audit", "verify", "--study", str(DEMO)],
        ["study", "unblind", str(DEMO), "--reason", "curious"],
        ["photos", "qc", str(DEMO)],
    ):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and "has no database yet" in err and "toolkit user add" in err, (argv, out, err)
        assert "Traceback" not in err
        assert not db.exists(), argv
    password = tmp_path / "pw"
    password.write_text("a long enough password\n")
    code, out, err = run_cli(["user", "add", "admin", "--study", str(DEMO), "--full-name", "Ada Admin", "--role",
                              "administrator", "--password-file", str(password)], capsys)  # fmt: skip
    assert code == 0 and db.is_file(), err
    with open_store(DEMO, login=False, create=False) as store:
        assert [u.username for u in store.users()] == ["admin"]
