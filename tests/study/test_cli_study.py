"""``toolkit study validate | show | randomize`` as a user runs them (a subprocess, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DEMO, SPLITFACE, replace_once


def run(*args: str, data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOOLKIT_DATA_DIR": str(data_root), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", "study", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize("folder", [DEMO, SPLITFACE], ids=["demo", "splitface"])
def test_validate_prints_figures_against_limits(folder: Path, data_root: Path) -> None:
    proc = run("validate", str(folder), data_root=data_root)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "OK:" in out and "is valid" in out
    assert "r.m.s. current density (mA/cm²)" in out
    assert "computed figures vs safety envelope" in out
    assert "After session 12" in out and "NLFLEN" in out


def test_validate_reports_every_error_with_lines(write_study, demo_text, data_root: Path) -> None:
    text = replace_once(demo_text, "      current_uA: 200 ", '      current_uA: "200 V" ')
    text = replace_once(text, "number: 8, after_session: 8}", "number: 8, after_session: 14}")
    text = replace_once(text, "  microcurrent_max_uA: 500", "  microcurrent_max_uA: 1500")
    folder = write_study(text)
    proc = run("validate", str(folder / "study.yaml"), data_root=data_root)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "3 problems found" in proc.stderr
    line = text[: text.index('current_uA: "200 V"')].count("\n") + 1
    assert f"study.yaml:{line}:" in proc.stderr
    assert "arms[1].prescription.current_uA" in proc.stderr
    assert "after session 14 of 12" in proc.stderr
    assert "loosens the default limit 1000 µA" in proc.stderr


def test_validate_missing_folder_as_json(tmp_path: Path, data_root: Path) -> None:
    proc = run("validate", "--json", str(tmp_path), data_root=data_root)
    assert proc.returncode == 2
    result = json.loads(proc.stdout)
    assert result["valid"] is False
    assert "has no study.yaml" in result["issues"][0]["message"] and "Traceback" not in proc.stderr


def test_show_and_randomize(data_root: Path) -> None:
    show = run("show", str(DEMO), data_root=data_root)
    assert show.returncode == 0, show.stderr
    assert "Eligibility" in show.stdout and "ITT:" in show.stdout and "Safety envelope" in show.stdout

    first = run("randomize", str(DEMO), "--subjects", "30", data_root=data_root)
    assert first.returncode == 0, first.stderr
    csv_path = data_root / "epmc-demo" / "allocation.csv"
    record = json.loads(csv_path.with_name("allocation.json").read_text())
    assert record["subjects_requested"] == 30
    assert record["csv_sha256"] in first.stdout

    # blinding codes stay in the JSON: neither show nor randomize prints the arm → code map
    codes = record["blinding_codes"]
    for output in (show.stdout, first.stdout):
        for arm, code in codes.items():
            assert f"{arm}: {code}" not in output and f"'{arm}': '{code}'" not in output

    before = csv_path.read_bytes()
    again = run("randomize", str(DEMO), data_root=data_root)
    assert again.returncode == 2
    assert "never overwritten" in again.stderr and "Traceback" not in again.stderr
    assert csv_path.read_bytes() == before
