"""Fixtures of the imaging tests that drive the ``toolkit`` command line on a real study store."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def study_dir(tmp_path: Path, provision) -> Path:
    dest = tmp_path / "epmc-demo"
    shutil.copytree(REPO / "studies" / "epmc-demo", dest)
    from toolkit.store import open_store
    from toolkit.study import load_study

    provision(load_study(dest))
    with open_store(load_study(dest)) as store:
        store.enroll_subject("S-001", age=45, sex="F", fitzpatrick="III", strata={"age_group": "ge45"})
    return dest


@pytest.fixture
def _toolkit(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """Run the ``toolkit`` command line in this process (an interpreter start per call is slow on CI)."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> SimpleNamespace:
        from toolkit.cli import main

        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run
