"""A host that dies mid-session stops stimulation within one burst: checked on the twin's TRUE state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

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
