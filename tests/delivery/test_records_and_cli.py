"""Delivery records leave the store as the EX domain; the `toolkit deliver` command fails cleanly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toolkit.delivery import run_session

from ._support import FAST, Subjects, short


def test_delivery_records_export_as_ex(demo_study, demo_store, twin):
    from toolkit.store.export import build_datasets

    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-030", "MC")
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    ex = next(d for d in build_datasets(demo_store, blinded=False) if d.name == "EX").frame
    row = ex[ex["EXREFID"] == str(rec.delivery_id)].iloc[0]
    assert row["EXOUTCM"] == "COMPLETED" and row["EXSESS"] == 1
    assert row["EXDOSE"] == pytest.approx(rec.dose.charge_C * 1e3)
    assert row["EXENRGJ"] == pytest.approx(rec.dose.energy_J)
    assert row["EXDURS"] == pytest.approx(rec.dose.duration_s)
    blinded = next(d for d in build_datasets(demo_store, blinded=True) if d.name == "EX").frame
    assert blinded["EXDOSE"].isna().all()  # charge would reveal the arm while blinded


def _toolkit(*args: str, env_root) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "TOOLKIT_DATA_DIR": str(env_root)}
    return subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_cli_refuses_an_unknown_subject_without_a_traceback(repo_root, data_root):
    proc = _toolkit("deliver", "--study", str(repo_root / "studies" / "epmc-demo"), "--subject", "S-404",
                    "--session", "1", "--yes", env_root=data_root)
    assert proc.returncode == 1, proc.stderr
    assert "not enrolled" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_reports_a_bad_bench_file(repo_root, data_root, tmp_path):
    bench = tmp_path / "bench.yaml"
    bench.write_text("name: lab\nstimulator: {driver: nosuch, resource: 'TCPIP0::1.2.3.4::5025::SOCKET', idn: x}\n")
    proc = _toolkit("deliver", "--study", str(repo_root / "studies" / "epmc-demo"), "--subject", "S-001",
                    "--session", "1", "--bench", str(bench), env_root=data_root)
    assert proc.returncode == 2
    assert "bench file" in proc.stderr and "nosuch" in proc.stderr and "Traceback" not in proc.stderr


def test_notebook_panel_runs_in_the_background_and_stops(demo_study, demo_store, twin):
    import time

    from toolkit.delivery.notebook import SessionPanel

    study = short(demo_study, 5.0)
    sid = Subjects(demo_store).add("S-031", "MC")
    panel = SessionPanel(study, sid, 1, store=demo_store, twin=twin, settings=FAST).start()
    deadline = time.monotonic() + 60
    while panel.confirm_button.disabled and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "dummy load" in panel.status.value
    panel.confirm_button.click()
    while panel.confirm_button.disabled and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "electrodes" in panel.status.value.lower()
    panel.confirm_button.click()
    while not panel.plot.figure.data[0].x and time.monotonic() < deadline:
        time.sleep(0.01)
    panel.stop_button.click()
    record = panel.wait(60)
    assert record.treatments[0].abort_reason.value == "operator_stop"
    assert panel.plot.figure.data[0].x  # the live trace received captures
    assert not twin.any_output_on()


def test_cli_deliver_prints_each_note_once(repo_root, demo_store, tmp_path, capsys):
    """With nothing listening the command starts its own twin, says so once, and the session completes."""
    import socket

    import yaml

    from instruments.bench import default_bench_path
    from toolkit.cli import main

    data = yaml.safe_load(default_bench_path("twin").read_text(encoding="utf-8"))
    for role in ("stimulator", "scope", "current_source"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            data[role]["resource"] = f"TCPIP0::127.0.0.1::{s.getsockname()[1]}::SOCKET"
    bench = tmp_path / "twin.yaml"
    bench.write_text(yaml.safe_dump(data), encoding="utf-8")
    sid = Subjects(demo_store).add("S-033", "MC")
    with pytest.raises(SystemExit) as info:
        main(["deliver", "--study", str(repo_root / "studies" / "epmc-demo"), "--subject", sid, "--session", "1",
              "--bench", str(bench), "--yes"])
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), out + err
    text = " ".join((out + err).split())
    assert text.count("no twin was listening") == 1, text
    assert "COMPLETED" in text


def test_a_capture_modified_on_disk_before_the_record_closes_is_refused_at_once(demo_study, demo_store, twin):
    """A capture changed on disk between its write and the record's close fails the record's checksum check;
    the record goes beside the data after one attempt (a changed file does not change back), output off."""
    import json

    from toolkit.errors import StoreError

    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-031", "EP")
    folder = demo_store.study_dir / "waveforms" / sid
    tampered: list = []

    def tamper(event) -> None:
        if event.phase == "capture" and not tampered:
            newest = max(folder.rglob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
            with open(newest, "r+b") as fh:
                fh.seek(200)
                byte = fh.read(1)
                fh.seek(200)
                fh.write(bytes([byte[0] ^ 0xFF]))
            tampered.append(newest)

    attempts: list[int] = []
    finish = demo_store.finish_delivery

    def counted(delivery_id, **kwargs):
        attempts.append(delivery_id)
        return finish(delivery_id, **kwargs)

    demo_store.finish_delivery = counted
    try:
        with pytest.raises(StoreError, match="SHA-256") as info:
            run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST, progress=tamper)
    finally:
        del demo_store.finish_delivery
    assert tampered and len(attempts) == 1
    assert not twin.any_output_on()
    fallback = demo_store.study_dir / "deliveries-unrecorded" / f"delivery-{attempts[0]}.json"
    assert str(fallback) in str(info.value)
    kept = json.loads(fallback.read_text(encoding="utf-8"))
    assert kept["outcome"] == "completed" and kept["dose"]["pulse_count"] > 0
    assert str(tampered[0]) in {path for path, _ in kept["waveforms"]}
    # the store never recorded the session as ended
    assert demo_store.deliveries(sid).iloc[-1]["status"] == "in_progress"
