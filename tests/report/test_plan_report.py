"""Efficacy tables follow the analysis plan: primary first, titled in words, with footnotes and HTML copies."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.stats.conftest import simulate_parallel_bds
from toolkit.report import build_report
from toolkit.stats import run_analysis_plan
from toolkit.stats.adtte import time_to_improvement_dataset, write_time_to_improvement
from toolkit.study import load_study


@pytest.fixture(scope="module")
def planned(repo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("planned")
    study = load_study(repo_root / "studies" / "epmc-demo")
    bds = simulate_parallel_bds(arms={"SHAM": 0.0, "EP": -3.0, "MC": -2.0}, n_per_arm=12,
                                paramcds=("NLFLEN", "LIFTJAW", "NLFDEPTH"), seed=5)
    bds["BASE"] = bds["BASE"] + 40.0  # fold length in mm: a percent change needs a positive baseline
    bds["AVAL"] = bds["BASE"] + bds["CHG"]
    bds["PCHG"] = 100 * bds["CHG"] / bds["BASE"]
    folder = root / study.id
    analysis = folder / "analysis"
    analysis.mkdir(parents=True)
    bds.to_csv(analysis / "adeff.csv", index=False)
    bds.to_parquet(analysis / "adeff.parquet", index=False)  # the same data twice: drawn once
    run_analysis_plan(study, bds, on_error="record").to_dir(analysis / "results")
    write_time_to_improvement(time_to_improvement_dataset(study, bds), analysis, analysis / "results")
    return build_report(folder, static=False)


def test_the_primary_analysis_is_table_14_2_1_with_words_not_codes(planned) -> None:
    first = next(t for t in planned.tables if t.number == "14.2.1")
    assert first.title == ("Change from baseline in Nasolabial wrinkle length (mm) at After session 12: ANCOVA, "
                           "ITT population")
    body = pd.read_csv(planned.root / first.files[2], header=None, dtype=str, keep_default_na=False)
    text = " ".join(body.astype(str).to_numpy().ravel())
    assert "Comparison" in text and "Estimate (SE)" in text and "95% CI" in text
    assert "PRIMARY" not in text.split("Source")[0] and "NLFLEN" not in text and "S12" not in text
    titles = [t.title for t in planned.tables]
    assert titles.index("Multiplicity: hypotheses tested, raw and adjusted p-values") > 0
    assert any("Kaplan–Meier median by arm" in t for t in titles)
    order = [t.title.split(": ")[1] for t in planned.tables if t.number.startswith("14.2") and
             t.title.startswith("Change from baseline")]
    assert order == ["ANCOVA, ITT population", "MMRM, ITT population", "ANCOVA, ITT population",
                     "ANCOVA, ITT population", "ANCOVA, PP population"]


def test_tables_carry_model_and_multiplicity_footnotes_and_render_in_the_index(planned) -> None:
    first = next(t for t in planned.tables if t.number == "14.2.1")
    rtf = (planned.root / first.files[1]).read_text(encoding="ascii")
    assert "baseline value, age_group (stratification factor)" in rtf
    assert "serial gatekeeping" in rtf and "residual degrees of freedom" in rtf
    key1 = next(t for t in planned.tables if "MMRM" in t.title and t.title.startswith("Change"))
    assert "Satterthwaite degrees of freedom" in (planned.root / key1.files[1]).read_text(encoding="ascii")
    index = planned.index.read_text(encoding="utf-8")
    assert index.count("<figure class='table'") == len(planned.tables)
    assert "<th>Comparison</th>" in index


def test_no_figure_twice_and_km_in_sessions(planned) -> None:
    titles = [f.title for f in planned.figures]
    assert len(titles) == len(set(titles)), titles
    km = next(f for f in planned.figures if "Kaplan" in f.title)
    assert km.title == "Time to first visible improvement in sessions (Kaplan–Meier)"
    assert (planned.root / "datasets" / "adtte.xpt").is_file()
    mean_change = [t for t in titles if t.startswith("Mean change from baseline")]
    assert mean_change[0].startswith("Mean change from baseline in NLFLEN")  # primary endpoint first
