"""Reliability: writers killed mid-write, two writers at once, busy, unreachable and damaged databases."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import func, select

from toolkit.errors import StoreError
from toolkit.store import models as m
from toolkit.store import open_store
from toolkit.store.audit import verify_audit

from .conftest import enrol_eligible

ROWS_PER_RUN = 40
# fork: the writer starts with the modules already imported, so it writes within milliseconds of starting
_fork = multiprocessing.get_context("fork")


def _writer(study_id: str, photo_id: int, started, tag: str) -> None:
    store = open_store(study_id)
    frame = pd.DataFrame(
        {
            "region": [f"r{i}" for i in range(ROWS_PER_RUN)],
            "metric": "wrinkle_count",
            "value": range(ROWS_PER_RUN),
        }
    )
    started.set()
    n = 0
    while True:
        n += 1
        # two kinds of logical write: a measurement run (run + 40 rows + 41 audit entries), an enrolment
        store.add_measurements(photo_id, frame, algorithm_version=f"{tag}-{n}", qc={"n": n})
        store.enroll_subject(f"K{tag}-{n}", age=50, sex="F", fitzpatrick="III", strata={"age_group": "ge45"})


def test_sigkill_at_random_points_leaves_a_consistent_database(demo_study, photo_file):
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        path, sha = photo_file("p")
        photo_id = store.add_photo("S-001", visit_id="BASELINE", path=path, sha256=sha)
        db = store.url.database
    rng = random.Random(20261121)
    deadline = time.monotonic() + 60
    kills = 0
    while kills < 20 and time.monotonic() < deadline:
        started = _fork.Event()
        proc = _fork.Process(target=_writer, args=("epmc-demo", photo_id, started, str(kills)))
        proc.start()
        assert started.wait(20), "writer did not start"
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        kills += 1
    assert kills == 20

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()
    with open_store(demo_study) as store:
        report = verify_audit(store)
        assert report.ok, report.problems()
        with store.session() as s:
            runs = s.execute(
                select(m.MeasurementRunRow.id, func.count(m.MeasurementRow.id))
                .outerjoin(m.MeasurementRow, m.MeasurementRow.run_id == m.MeasurementRunRow.id)
                .group_by(m.MeasurementRunRow.id)
            ).all()
        # every run that exists is complete: all 40 rows or none of the run
        assert runs and {count for _, count in runs} == {ROWS_PER_RUN}
        # each run is two entries at least: the run row, and one entry listing its measurement rows
        assert report.entries > len(runs) * 2


def _enrol_many(study_id: str, prefix: str, n: int, results) -> None:
    try:
        with open_store(study_id, busy_timeout_s=30) as store:
            for i in range(n):
                store.enroll_subject(
                    f"{prefix}-{i}", age=40, sex="M", fitzpatrick="II", strata={"age_group": "lt45"}
                )
                store.record_consent(f"{prefix}-{i}", signed_on=date(2026, 1, 2))
                store.record_checklist(f"{prefix}-{i}", store.info.eligibility.all_met(), checked_on=date(2026, 1, 2))
        results.put((prefix, "ok"))
    except StoreError as exc:
        results.put((prefix, str(exc)))


def test_two_writers_at_once_both_succeed(demo_study):
    with open_store(demo_study):
        pass
    results = _fork.Queue()
    procs = [_fork.Process(target=_enrol_many, args=("epmc-demo", p, 15, results)) for p in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    outcome = dict(results.get(timeout=5) for _ in procs)
    # both succeed (the busy timeout queues them) or one says "database busy" plainly
    assert all(v == "ok" or v.startswith("database busy") for v in outcome.values()), outcome
    with open_store(demo_study) as store:
        ids = {s.subject_id for s in store.subjects()}
        for prefix, status in outcome.items():
            if status == "ok":
                assert {f"{prefix}-{i}" for i in range(15)} <= ids
        assert verify_audit(store).ok


def test_busy_database_gives_a_clear_message_after_a_bounded_wait(demo_study):
    with open_store(demo_study, busy_timeout_s=0.3) as store:
        holder = sqlite3.connect(store.url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.monotonic()
            with pytest.raises(StoreError) as info:
                store.enroll_subject(
                    "S-001", age=50, sex="F", fitzpatrick="III", strata={"age_group": "ge45"}
                )
            waited = time.monotonic() - t0
            # readers do not wait for the writer (WAL)
            t0 = time.monotonic()
            assert store.subjects() == []
            assert time.monotonic() - t0 < 0.25
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert str(info.value).startswith(f"database busy: {store.url.database} is being written by another")
        assert 0.25 <= waited < 5
        # the refused write left nothing; the next one goes through
        store.enroll_subject("S-001", age=50, sex="F", fitzpatrick="III", strata={"age_group": "ge45"})
        assert [s.subject_id for s in store.subjects()] == ["S-001"]


def test_unreachable_server_is_named_without_its_password(demo_study):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://toolkit:s3cret@127.0.0.1:{port}/records"
    with pytest.raises(StoreError) as info:
        open_store(demo_study, url=url)
    message = str(info.value)
    assert message.startswith(
        f"cannot reach database postgresql+psycopg://toolkit:***@127.0.0.1:{port}/records"
    )
    assert "s3cret" not in message and "TOOLKIT_DB_URL" in message


def test_env_url_is_used_and_a_missing_database_is_explained(postgres_server, demo_study, monkeypatch, provision):
    monkeypatch.setenv("TOOLKIT_DB_URL", postgres_server.url("no_such_db"))
    with pytest.raises(StoreError, match=r"cannot reach database .*/no_such_db: .*does not exist"):
        open_store(demo_study)
    monkeypatch.setenv("TOOLKIT_DB_URL", postgres_server.create_database())
    provision(demo_study)
    with open_store(demo_study) as store:
        assert store.url.get_backend_name() == "postgresql"
        enrol_eligible(store, "S-001")


@pytest.mark.no_users
def test_damaged_sqlite_file_is_reported(demo_study, data_root):
    db = data_root / "epmc-demo" / "study.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(StoreError, match=f"database {db} is damaged or not a SQLite file"):
        open_store(demo_study)


def test_bad_url_is_explained(demo_study):
    with pytest.raises(StoreError, match="not a SQLAlchemy URL"):
        open_store(demo_study, url="not a url at all")
    with pytest.raises(StoreError, match="supported: SQLite"):
        open_store(demo_study, url="oracle+nodriver://x@y/z")
