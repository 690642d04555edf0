"""The analysis-plan runner and `toolkit analyze` on synthetic BDS data with known treatment effects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import DataError
from toolkit.stats import run_analysis_plan
from toolkit.study import load_study

from .conftest import simulate_parallel_bds

TRUE = {"SHAM": 0.0, "EP": -3.0, "MC": -2.0}


@pytest.fixture(scope="module")
def demo_study(repo_root: Path):
    return load_study(repo_root / "studies" / "epmc-demo")


@pytest.fixture(scope="module")
def demo_bds() -> pd.DataFrame:
    return simulate_parallel_bds(arms=TRUE, n_per_arm=40, paramcds=("NLFLEN", "LIFTJAW", "NLFDEPTH"), seed=12)


@pytest.fixture(scope="module")
def demo_results(demo_study, demo_bds):
    return run_analysis_plan(demo_study, demo_bds)


def test_plan_tables_and_known_effects(demo_results) -> None:
    assert {
        "PRIMARY_lsmeans",
        "PRIMARY_contrasts",
        "PRIMARY_anova",
        "KEY1_contrasts",
        "KEY1_covariance",
        "KEY2_contrasts",
        "HEAD2HEAD_margins",
        "hypotheses",
    } <= set(demo_results)
    primary = demo_results["PRIMARY_contrasts"].set_index("contrast")
    for arm in ("EP", "MC"):
        row = primary.loc[f"{arm} - SHAM"]
        assert row.ci_low < TRUE[arm] < row.ci_high  # the truth of the simulation is inside the 95 % CI
    key1 = demo_results["KEY1_contrasts"].set_index("contrast")
    assert key1.loc["EP - SHAM", "estimate"] == pytest.approx(TRUE["EP"], abs=1.0)
    assert demo_results.models["PRIMARY"]["model"] == "CHG ~ TRTP + AGEGROUP + BASE"


def test_head_to_head_margin_and_gatekeeping(demo_results) -> None:
    margin = demo_results["HEAD2HEAD_margins"].iloc[0]
    # lower is better for NLFLEN: non-inferiority of EP vs MC means EP - MC < +3 mm
    assert margin.contrast == "EP - MC" and margin.margin == 3.0
    assert bool(margin.noninferior) == (margin.ci_high < 3.0)
    hyp = demo_results["hypotheses"].set_index("hypothesis")
    assert hyp.loc["PRIMARY: EP vs SHAM", "procedure"].startswith("serial gatekeeping")
    gate = hyp.loc[["PRIMARY: EP vs SHAM", "PRIMARY: MC vs SHAM"], "adjusted_p_value"].max()
    assert (hyp.loc[["KEY1: EP vs SHAM", "KEY2: MC vs SHAM"], "adjusted_p_value"] >= gate).all()
    assert hyp.loc["HEAD2HEAD: EP vs MC", "family"] == "supportive"


def test_results_to_dir(demo_results, tmp_path: Path) -> None:
    out = demo_results.to_dir(tmp_path / "results")
    meta = json.loads((out / "results.json").read_text())
    assert meta["study_id"] == "epmc-demo" and "statsmodels" in meta["software"]
    assert meta["models"]["KEY1"]["covariance"] == "unstructured"
    table = pd.read_csv(out / "PRIMARY_contrasts.csv")
    pd.testing.assert_frame_equal(
        table, demo_results["PRIMARY_contrasts"].reset_index(drop=True), check_dtype=False
    )
    # a second run replaces the folder as a whole
    demo_results.to_dir(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_plan_names_the_failing_analysis(demo_study, demo_bds) -> None:
    with pytest.raises(DataError, match=r"arm\(s\) MC, SHAM .* not in TRTP"):
        run_analysis_plan(
            demo_study, demo_bds.assign(TRTP=demo_bds.TRTP.map({"EP": "EP", "MC": "B", "SHAM": "C"}))
        )
    with pytest.raises(DataError, match="analysis PRIMARY .*stratification factor 'age_group'"):
        run_analysis_plan(demo_study, demo_bds.drop(columns="AGEGROUP"))


def test_splitface_plan(repo_root: Path) -> None:
    study = load_study(repo_root / "studies" / "epmc-splitface")
    rng = np.random.default_rng(21)
    rows = []
    for i in range(30):
        subject_effect = rng.normal(0, 3)
        left = "EP" if i % 2 else "MC"
        for side, arm in (("LEFT", left), ("RIGHT", "MC" if left == "EP" else "EP")):
            for code in ("NLFLEN", "LIFTJAW"):
                base = 40 + subject_effect + rng.normal(0, 1)
                chg = (-2.0 if arm == "EP" else -1.0) + 0.5 * subject_effect + rng.normal(0, 1)
                common = {
                    "USUBJID": f"P{i:03d}",
                    "TRTP": arm,
                    "SIDE": side,
                    "PARAMCD": code,
                    "BASE": base,
                    "ITTFL": "Y",
                    "SAFFL": "Y",
                    "PPROTFL": "Y",
                    "FITZPATR": "I-II",
                }
                rows.append(
                    {
                        **common,
                        "AVISIT": "Baseline",
                        "AVISITN": 0.0,
                        "AVAL": base,
                        "CHG": np.nan,
                        "ABLFL": "Y",
                    }
                )
                rows.append(
                    {
                        **common,
                        "AVISIT": "After session 12",
                        "AVISITN": 12.0,
                        "AVAL": base + chg,
                        "CHG": chg,
                        "ABLFL": "",
                    }
                )
    res = run_analysis_plan(study, pd.DataFrame(rows))
    row = res["PRIMARY_contrasts"].iloc[0]
    assert row.contrast == "EP - MC" and row.ci_low < -1.0 < row.ci_high
    assert res["hypotheses"].procedure.iloc[0] == "fixed-sequence"
    assert "PRIMARY_variance_components" in res


def test_cli_analyze(
    tmp_path: Path, repo_root: Path, demo_bds: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    from toolkit.cli import main

    data = tmp_path / "adeff.csv"
    demo_bds.to_csv(data, index=False)
    out = tmp_path / "out"
    study = str(repo_root / "studies" / "epmc-demo")
    with pytest.raises(SystemExit) as done:
        main(["analyze", "--study", study, "--data", str(data), "--out", str(out)])
    captured = capsys.readouterr()
    assert done.value.code == 0, captured.err
    assert "PRIMARY: EP vs SHAM" in captured.out
    assert (out / "results.json").is_file() and (out / "KEY1_lsmeans.csv").is_file()
    with pytest.raises(SystemExit) as failed:
        main(["analyze", "--study", study, "--data", str(tmp_path / "missing.csv")])
    captured = capsys.readouterr()
    assert failed.value.code == 2 and "not found" in captured.err and "Traceback" not in captured.err


def test_cli_default_output_folder(data_root: Path, repo_root: Path, demo_bds: pd.DataFrame) -> None:
    from toolkit.cli import main

    data = data_root / "adeff.parquet"
    demo_bds.to_parquet(data)
    with pytest.raises(SystemExit) as done:
        main(["analyze", "--study", str(repo_root / "studies" / "epmc-demo"), "--data", str(data)])
    assert done.value.code == 0
    assert (data_root / "epmc-demo" / "analysis" / "results" / "hypotheses.csv").is_file()


def test_equivalence_margin_from_the_plan(demo_study, demo_bds) -> None:
    from toolkit.study import Comparison, Margin

    plan = demo_study.analysis
    head = plan.analysis("HEAD2HEAD")
    comparison = Comparison(treatment="EP", control="MC", margin=Margin(type="equivalence", value=3.0))
    analyses = tuple(a if a.id != "HEAD2HEAD" else head.model_copy(update={"comparisons": (comparison,)})
                     for a in plan.analyses)  # fmt: skip
    study = demo_study.model_copy(update={"analysis": plan.model_copy(update={"analyses": analyses})})
    res = run_analysis_plan(study, demo_bds)
    row = res["HEAD2HEAD_margins"].iloc[0]
    assert row.test == "equivalence (TOST)" and row.ci_level == pytest.approx(0.90)
    assert bool(row.equivalent) == (row.ci_low > -3.0 and row.ci_high < 3.0)
    contrast = res["HEAD2HEAD_contrasts"].iloc[0]
    assert row.estimate == pytest.approx(contrast.estimate)


def test_an_analysis_that_cannot_run_leaves_its_p_values_empty_and_says_why(demo_study, demo_bds) -> None:
    # LIFTJAW missing: KEY2 cannot run
    res = run_analysis_plan(demo_study, demo_bds[demo_bds["PARAMCD"] != "LIFTJAW"], on_error="record")
    assert "KEY2" in res.failures
    hyp = res["hypotheses"].set_index("hypothesis")
    failed = hyp.loc[[h for h in hyp.index if h.startswith("KEY2:")]]
    assert len(failed) == 2
    assert failed["p_value"].isna().all() and failed["adjusted_p_value"].isna().all()
    assert not failed["rejected"].any()
    assert failed["note"].str.contains("not run").all() and failed["note"].str.contains("LIFTJAW").all()
    ran = hyp.loc["PRIMARY: EP vs SHAM"]
    assert ran["p_value"] < 0.05 and ran["note"] == ""


def test_results_name_the_plan_in_words(demo_results, tmp_path) -> None:
    plan = demo_results.plan
    assert [p["id"] for p in plan] == ["PRIMARY", "KEY1", "KEY2", "DEPTH", "HEAD2HEAD"]
    first = plan[0]
    assert first["endpoint_label"] == "Nasolabial wrinkle length (mm)"
    assert first["visit_name"] == "After session 12" and first["model_label"] == "ANCOVA"
    assert first["role"] == "primary"
    assert plan[4]["margins"] == {"EP vs MC": "non-inferiority margin 3"}
    assert "serial gatekeeping" in demo_results.multiplicity
    saved = json.loads((demo_results.to_dir(tmp_path / "r") / "results.json").read_text())
    assert saved["plan"] == plan
