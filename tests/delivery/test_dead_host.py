"""A host that dies mid-session stops stimulation within one burst: checked on the twin's TRUE state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest

from toolkit.errors import DataError, StoreError
from toolkit.store.audit import verify_audit
from toolkit.store.datasets import StudyRecords

from ._support import Subjects

_HOST = textwrap.dedent(
    """
    import sys
    from instruments.bench import Bench
    from toolkit.delivery import DeliverySettings, WallClock, run_session
    from toolkit.study import load_study

    study_dir, subject, bench_json = sys.argv[1:4]
    study = load_study(study_dir)
    arms = tuple(a.model_copy(update={"prescription": a.prescription.model_copy(update={"duration_min": 2.0})})
                 for a in study.arms)
    study = study.model_copy(update={"arms": arms})
    bench = Bench.model_validate_json(bench_json)
    print("host ready", flush=True)
    run_session(study, subject, 1, bench=bench, clock=WallClock(), confirm=lambda request: True,
                settings=DeliverySettings(burst_interval_s=1.0, capture_every_s=30.0, io_timeout_s=2.0))
    """
)


def test_killed_host_stops_delivery_within_one_burst(demo_study, demo_store, twin, repo_root, data_root):
    sid = Subjects(demo_store).add("S-020", "MC")
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOST, str(repo_root / "studies" / "epmc-demo"), sid, twin.bench.model_dump_json()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        delivering_since = None
        # wait until the host has delivered a few bursts on the skin side of the session
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"host exited early: {proc.stderr.read()[-2000:]}")
            if twin.delivering(1, "current_source"):
                delivering_since = delivering_since or time.monotonic()
                if time.monotonic() - delivering_since > 1.5 and twin.model.load == "dummy":
                    break
            time.sleep(0.01)
        assert delivering_since is not None, "the host never started delivering"
        proc.kill()
        proc.wait(timeout=10)
        killed = time.monotonic()
        while twin.delivering(1, "current_source") and time.monotonic() - killed < 5.0:
            time.sleep(0.005)
        stopped_after = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert stopped_after <= 2.0, f"delivery went on {stopped_after:.2f} s after the host died"
    # nobody switched the output off: the bursts simply ran out, as designed
    assert twin.true_output_state(1, "current_source")
    # the record was opened before any output and stays visibly open for the operator to resolve
    assert list(demo_store.deliveries(sid)["status"]) == ["in_progress"]

    # The operator closes it once it cannot be running any more: not before its prescribed end (with a
    # margin), with a reason, counted as treated from then on, and never twice.
    env = {**os.environ, "TOOLKIT_DATA_DIR": str(data_root), "COLUMNS": "200"}
    cli = [sys.executable, "-m", "toolkit", "data"]
    study = str(repo_root / "studies" / "epmc-demo")
    listing = subprocess.run([*cli, "open-sessions", "--study", study], capture_output=True, text=True, env=env,
                             timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "1 session(s) in progress" in listing.stdout and "may be running" in listing.stdout
    record = demo_store.deliveries(sid).iloc[0]
    early = subprocess.run([*cli, "close-session", "--study", study, "--delivery", str(record.delivery_id),
                            "--reason", "host killed"], capture_output=True, text=True, env=env, timeout=120)
    assert early.returncode == 2 and "may still be running" in early.stderr and "Traceback" not in early.stderr
    with pytest.raises(DataError, match="needs a reason"):
        demo_store.close_interrupted_delivery(int(record.delivery_id), reason="  ",
                                              now=record.started_at + timedelta(hours=1))
    later = record.started_at + timedelta(minutes=2.0 + 10.0 + 1.0)
    demo_store.close_interrupted_delivery(int(record.delivery_id), reason="host killed", now=later)
    closed = demo_store.deliveries(sid).iloc[0]
    assert closed.status == "aborted" and closed.reason == "interrupted: host killed" and closed.ended_at == later
    assert closed.dose == {} and closed.prescription == record.prescription
    assert sid in StudyRecords(demo_store).treated_subjects()
    with pytest.raises(StoreError, match="not open: it ended aborted"):
        demo_store.close_interrupted_delivery(int(record.delivery_id), reason="again", now=later)
    # the closing is in the audit trail, and the chain still verifies
    report = verify_audit(demo_store, check_files=False)
    assert report.ok, report.problems()
