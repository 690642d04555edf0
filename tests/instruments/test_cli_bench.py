"""``toolkit bench check`` against the twin, and ``toolkit bench twin`` serving until interrupted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from instruments.twin import TwinBench


def _bench_file(tmp_path: Path, twin: TwinBench, **changes: object) -> Path:
    data = twin.bench.model_dump(mode="json")
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``toolkit bench ...`` in this process (as the console script does) and capture its output."""
    from toolkit.cli import main

    with pytest.raises(SystemExit) as info:
        main(["bench", *args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else int(code)), out, err


def test_bench_check_passes_on_the_twin(tmp_path: Path, twin: TwinBench, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "check", str(_bench_file(tmp_path, twin)))
    assert code == 0, out + err
    assert "pulse amplitude" in out and "dummy load impedance" in out
    assert "FAIL" not in out
    assert not twin.any_output_on()


def test_bench_check_fails_with_overdue_calibration_and_wrong_identity(
    tmp_path: Path, twin: TwinBench, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _bench_file(tmp_path, twin, scope__calibration_due="2020-01-01", current_source__idn="KEITHLEY.*2400")
    code, out, err = _run(capsys, "check", str(path))
    assert code == 1, out + err
    assert "Traceback" not in err
    assert "scope calibration" in err and "current_source identity" in err
    assert not twin.any_output_on()


def test_bench_check_with_a_broken_bench_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstimulator: {driver: nope}\n", encoding="utf-8")
    code, out, err = _run(capsys, "check", str(bad))
    assert code == 2
    assert "Traceback" not in err and "stimulator.resource" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize(("how", "started_ignoring_sigint"), [("SIGINT", False), ("SIGINT", True), ("SIGTERM", False)])
def test_bench_twin_serves_until_interrupted(how: str, started_ignoring_sigint: bool) -> None:
    """Ctrl+C stops the twin, also when it was started in a script's background (SIGINT ignored on entry);
    SIGTERM stops it as cleanly."""
    ports = [_free_port() for _ in range(3)]
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if started_ignoring_sigint else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "bench", "twin", "--stimulator-port", str(ports[0]),
         "--scope-port", str(ports[1]), "--current-source-port", str(ports[2])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "stimulator" not in line:
            line = proc.stdout.readline() if proc.stdout else ""
        assert f"TCPIP0::127.0.0.1::{ports[0]}::SOCKET" in line
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
            s.sendall(b"*IDN?\n")
            assert s.recv(200).startswith(b"Keysight")
        # the handlers are set before the ports are printed: the signal cannot arrive before them
        proc.send_signal(getattr(signal, how))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "twin stopped" in out


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("ending", ["sigterm", "exit_without_close"])
def test_host_ending_switches_the_output_off(tmp_path: Path, twin: TwinBench, ending: str) -> None:
    """A host killed by SIGTERM, or a script that ends without closing, leaves the output off."""
    script = tmp_path / "host.py"
    wait = "time.sleep(60)" if ending == "sigterm" else "sys.stdin.readline()"
    script.write_text(
        "import sys, time\n"
        "from instruments.bench import connect_bench, load_bench\n"
        f"cb = connect_bench(load_bench({str(_bench_file(tmp_path, twin))!r}))\n"
        "cb.stimulator.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=100,"
        " pulses_per_burst=2, limit_V=2.0)\n"
        "cb.stimulator.arm(1)\n"
        "cb.stimulator.output_on(1)\n"
        "print('on', flush=True)\n"
        f"{wait}\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "on"
        assert twin.true_output_state(1)
        if ending == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (128 + signal.SIGTERM if ending == "sigterm" else 0)
    assert not twin.true_output_state(1)


def _silent_twin_bench(tmp_path: Path, name: str = "twin") -> tuple[Path, list[int]]:
    """The shipped twin bench file moved to free ports on which nothing listens."""
    from instruments.bench import default_bench_path

    data = yaml.safe_load(default_bench_path("twin").read_text(encoding="utf-8"))
    data["name"] = name
    ports = [_free_port() for _ in range(3)]
    for role, port in zip(("stimulator", "scope", "current_source"), ports, strict=True):
        data[role]["resource"] = f"TCPIP0::127.0.0.1::{port}::SOCKET"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path, ports


def test_bench_check_of_the_twin_bench_with_no_twin_checks_an_in_process_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ports = _silent_twin_bench(tmp_path)
    code, out, err = _run(capsys, "check", str(path))
    assert code == 0, out + err
    text = " ".join((out + err).split())
    assert text.count("no twin was listening") == 1
    assert "toolkit bench twin" in text and f"127.0.0.1:{ports[0]}" in text
    assert "all checks passed" in text
    # the in-process twin is gone afterwards
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", ports[0]), timeout=0.5):
        pass


def test_bench_check_with_no_twin_and_no_start_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ports = _silent_twin_bench(tmp_path)
    code, out, err = _run(capsys, "check", str(path), "--no-start-twin")
    assert code == 2
    text = " ".join(err.split())
    assert "Traceback" not in err and "Connection refused" not in text
    assert "nothing is listening" in text
    assert (f"toolkit bench twin --stimulator-port {ports[0]} --scope-port {ports[1]} "
            f"--current-source-port {ports[2]}") in text


def test_bench_check_of_a_silent_lab_bench_names_the_address_in_each_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ports = _silent_twin_bench(tmp_path, name="lab")
    code, out, err = _run(capsys, "check", str(path))
    assert code == 1
    assert "no twin was listening" not in out + err  # a real bench is never replaced by a twin
    assert "stimulator identity" in err and "scope identity" in err
    from instruments.bench import load_bench
    from instruments.check import run_bench_check

    rows = {r.item: r for r in run_bench_check(load_bench(path), timeout_s=1.0).rows}
    for role, port in zip(("stimulator", "scope", "current_source"), ports, strict=True):
        row = rows[f"{role} identity"]
        assert not row.passed
        assert f"nothing is listening at TCPIP0::127.0.0.1::{port}::SOCKET" in row.measured
        assert "switched on" in row.measured and "Errno" not in row.measured
