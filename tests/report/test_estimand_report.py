"""The report shows each estimand: its attributes, main and sensitivity estimates with a forest plot, the
tipping point as a table and a figure, and the intercurrent events by subject."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.stats.conftest import trial_with_disposition
from toolkit.errors import DataError
from toolkit.report import build_report
from toolkit.report import figures as F
from toolkit.report.style import figure_info
from toolkit.stats import run_analysis_plan
from toolkit.study import load_study


@pytest.fixture(scope="module")
def report(repo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("estimands")
    study = load_study(repo_root / "studies" / "epmc-demo")
    bds, adsl = trial_with_disposition(paramcds=("NLFLEN", "LIFTJAW", "NLFDEPTH"))
    folder = root / study.id
    analysis = folder / "analysis"
    analysis.mkdir(parents=True)
    bds.to_csv(analysis / "adeff.csv", index=False)
    adsl.to_csv(analysis / "adsl.csv", index=False)
    run_analysis_plan(study, bds, adsl=adsl, on_error="record", n_jobs=2, progress=False).to_dir(analysis / "results")
    return build_report(folder, static=False)


def test_each_estimand_has_its_table_estimates_tipping_point_and_listing(report) -> None:
    titles = {t.title: t for t in report.tables}
    attributes = titles["Estimand E_NLFLEN: Nasolabial wrinkle length (mm), After session 12"]
    body = pd.read_csv(report.root / attributes.files[2], header=None, dtype=str, keep_default_na=False)
    text = " ".join(body.astype(str).to_numpy().ravel())
    for words in ("Population", "Variable", "Intercurrent events and strategies", "Population-level summary",
                  "Main estimator", "Sensitivity analyses", "treatment discontinuation: hypothetical",
                  "withdrawal for an adverse event: treatment policy (J2R, reference SHAM)", "EP vs SHAM: "):
        assert words in text, words
    assert "Estimand E_NLFLEN: main and sensitivity estimates of Nasolabial wrinkle length (mm), After session 12" \
        in titles
    assert "Estimand E_NLFLEN: tipping-point analysis of Nasolabial wrinkle length (mm), After session 12" in titles
    listing = titles["Intercurrent events of estimand E_NLFLEN by subject"]
    assert listing.number.startswith("16.2")
    rows = pd.read_csv(report.root / listing.files[2], dtype=str, keep_default_na=False, header=None)
    flat = " ".join(rows.astype(str).to_numpy().ravel())
    assert "S0002" in flat and "S0014" in flat and "S0026" in flat and "withdrawal by subject" in flat.lower()
    # the generic results tables leave the estimand tables to their own section
    assert not any(t.startswith("Estimand e nlflen") or t.startswith("Estimands") for t in titles)


def test_forest_and_tipping_point_figures(report) -> None:
    index = report.index.read_text(encoding="utf-8")
    assert "Estimand E_NLFLEN: main and sensitivity estimates" in index
    assert "Estimand E_LIFTJAW: tipping-point analysis" in index
    figures = {item.title: item for item in report.figures}
    forest = figures["Estimand E_NLFLEN: main and sensitivity estimates of Nasolabial wrinkle length (mm), After session 12"]
    html = (report.root / forest.files[0]).read_text(encoding="utf-8")
    for row in ("Main: MI (J2R, MAR)", "J2R, Bayesian MI", "CIR, Bayesian MI", "CR, CMI jackknife"):
        assert row in html, row


def test_tipping_point_figure_draws_the_interval_and_the_tipping_delta() -> None:
    grid = pd.DataFrame({"comparison": "EP vs SHAM", "delta": [0.0, 1.0, 2.0], "estimate": [-3.0, -2.0, -1.0],
                         "ci_low": [-4.0, -3.5, -3.0], "ci_high": [-2.0, -0.5, 1.0], "tipping_delta": 1.4})
    fig = F.fig_tipping_point(grid, number="14.2.9", title="Tipping point")
    assert figure_info(fig).number == "14.2.9"
    assert [t.name for t in fig.data] == ["EP vs SHAM 95% CI", "EP vs SHAM"]
    assert any(getattr(s, "x0", None) == 1.4 for s in fig.layout.shapes)
    with pytest.raises(DataError, match="'delta'"):
        F.fig_tipping_point(grid.drop(columns="delta"))
    with pytest.raises(DataError, match="no rows"):
        F.fig_tipping_point(grid.iloc[0:0])
