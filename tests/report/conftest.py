"""Fixtures of the report tests: synthetic tidy data with known truth, a sample study, one browser session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ARMS = ("EP", "MC", "Sham")
VISITS = ("Baseline", "Week 4", "Week 8", "Week 12")
#: true mean change at each visit index, per arm (linear in time)
TRUE_SLOPE = {"EP": -1.0, "MC": -0.6, "Sham": 0.0}


def chromium() -> str | None:
    """The browser the export and browser tests use, if installed."""
    return shutil.which("chromium") or shutil.which("google-chrome") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.fixture(scope="session")
def bds() -> pd.DataFrame:
    """BDS rows: 3 arms × 40 subjects × 4 visits, change = slope × visit + N(0, 1)."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(120):
        arm = ARMS[i % 3]
        base = rng.normal(10, 1)
        for v, visit in enumerate(VISITS):
            chg = 0.0 if v == 0 else TRUE_SLOPE[arm] * v + rng.normal(0, 1)
            rows.append({"USUBJID": f"S{i:03d}", "TRT01A": arm, "AVISIT": visit, "AVISITN": v,
                         "AVAL": base + chg, "BASE": base, "CHG": chg})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def sample_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic study data folder (``<root>/DEMO-R``) written once for the session (read-only use)."""
    from toolkit.report.synthetic import write_sample_study

    folder = tmp_path_factory.mktemp("sample") / "DEMO-R"
    write_sample_study(folder, n_per_arm=12, seed=3)
    return folder


@pytest.fixture(scope="session")
def built(sample_study, tmp_path_factory):
    """One HTML-only build of the full sample study (study folder, bundle), shared read-only."""
    from toolkit.report import build_report

    study = tmp_path_factory.mktemp("built") / sample_study.name
    shutil.copytree(sample_study, study)
    return study, build_report(study, static=False)


@pytest.fixture(scope="module")
def exporter():
    """One kaleido browser session shared by a test module."""
    if chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): static export not tested")
    from toolkit.report.export import FigureExporter

    with FigureExporter() as ex:
        yield ex
