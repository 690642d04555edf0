"""MMRM against SAS PROC MIXED on the mmrm package's fev_data (values in ../shared/reference/README.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.stats.conftest import fev_mmrm
from toolkit.stats import mmrm
from toolkit.stats._covariance import make_structure
from toolkit.stats._reml import RemlProblem, build_patterns

# SAS PROC MIXED, FEV1 ~ RACE + SEX + ARMCD * AVISIT, TYPE=UN, REML, DDFM=SATTERTHWAITE (README)
SAS_NEG2_REML = 3386.4499
SAS_COV = np.array(
    [
        [40.5509, 14.3982, 4.9744, 13.3731],
        [14.3982, 26.5692, 2.7851, 7.4790],
        [4.9744, 2.7851, 14.8970, 0.9017],
        [13.3731, 7.4790, 0.9017, 95.5528],
    ]
)
SAS_DIFFS = {  # visit: (estimate, SE, df (integer in SAS's listing), p)
    "VIS1": (3.7745, 1.0741, 146, 0.0006),
    "VIS2": (3.7322, 0.8588, 145, 0.0000),
    "VIS3": (3.0806, 0.6896, 131, 0.0000),
    "VIS4": (4.3985, 1.6805, 133, 0.0099),
}


@pytest.fixture(scope="module")
def fev_fit(fev_data: pd.DataFrame):
    return fev_mmrm(fev_data)


def test_neg2_reml_matches_sas(fev_fit) -> None:
    assert fev_fit.neg2_reml == pytest.approx(SAS_NEG2_REML, abs=5e-4)


def test_fixed_effects_match_sas(fev_fit) -> None:
    fe = fev_fit.fixed_effects.set_index("term")
    assert fe.loc["(Intercept)", "estimate"] == pytest.approx(30.7774, rel=2e-5)
    assert fe.loc["(Intercept)", "se"] == pytest.approx(0.8865, rel=2e-4)
    assert fe.loc["ARMCD[TRT]", "estimate"] == pytest.approx(3.7745, rel=5e-5)
    assert fe.loc["ARMCD[TRT]", "se"] == pytest.approx(1.0741, rel=1e-4)
    assert round(fe.loc["ARMCD[TRT]", "df"]) == 146


def test_covariance_matches_sas_to_four_digits(fev_fit) -> None:
    # SAS stops its Newton-Raphson slightly before the optimum: the fourth digit of a few covariances
    # differs by up to 2 units (0.2 %), and our optimum has the lower -2 REML (checked below)
    np.testing.assert_allclose(fev_fit.covariance.to_numpy(), SAS_COV, rtol=2.5e-3, atol=2e-3)
    np.testing.assert_allclose(np.diag(fev_fit.covariance.to_numpy()), np.diag(SAS_COV), rtol=1e-4)


def test_our_optimum_is_at_least_as_good_as_sas(fev_data: pd.DataFrame, fev_fit) -> None:
    frame = fev_data.dropna(subset=["FEV1"])
    x = fev_fit.design.matrix(frame)
    y = frame["FEV1"].to_numpy(float)
    subj = pd.factorize(frame["USUBJID"])[0]
    vis = pd.Categorical(frame["AVISIT"], categories=["VIS1", "VIS2", "VIS3", "VIS4"]).codes.astype(int)
    structure = make_structure("unstructured", 4)
    problem = RemlProblem(build_patterns(x, y, subj, vis), structure, len(y), x.shape[1])
    at_sas, _ = problem.objective(structure.theta_from_sigma(SAS_COV))
    assert fev_fit.neg2_reml <= at_sas + 1e-9
    assert at_sas - fev_fit.neg2_reml < 1e-3  # the two points are equally good to SAS's printed precision


@pytest.mark.parametrize("visit", list(SAS_DIFFS))
def test_lsmean_differences_match_sas(fev_fit, visit: str) -> None:
    est, se, df, p = SAS_DIFFS[visit]
    row = fev_fit.contrasts.set_index("visit").loc[visit]
    assert row["contrast"] == "TRT - PBO"
    assert row["estimate"] == pytest.approx(est, rel=5e-5)
    assert row["se"] == pytest.approx(se, rel=1e-4)
    assert round(row["df"]) == df  # SAS lists integer df
    assert row["p_value"] == pytest.approx(p, abs=5e-5)


def test_kenward_roger_matches_sas(fev_data: pd.DataFrame) -> None:
    res = mmrm(
        fev_data,
        outcome="FEV1",
        treatment="ARMCD",
        visit="AVISIT",
        subject="USUBJID",
        reference="PBO",
        df_method="kenward-roger",
        visit_effects=False,
    )
    row = res.contrasts.iloc[0]
    assert row["estimate"] == pytest.approx(3.81972, rel=2e-5)
    assert row["se"] == pytest.approx(0.66124, rel=2e-4)
    assert row["df"] == pytest.approx(160.73, abs=0.1)
    sat = mmrm(
        fev_data,
        outcome="FEV1",
        treatment="ARMCD",
        visit="AVISIT",
        subject="USUBJID",
        reference="PBO",
        visit_effects=False,
    )
    assert res.contrasts.iloc[0]["se"] > sat.contrasts.iloc[0]["se"]  # KR inflates the model-based SE


def test_tidy_outputs_for_figures(fev_fit) -> None:
    assert list(fev_fit.lsmeans.columns) == [
        "treatment",
        "visit",
        "estimate",
        "se",
        "df",
        "ci_low",
        "ci_high",
    ]
    assert len(fev_fit.lsmeans) == 8
    assert {"contrast", "estimate", "se", "df", "ci_low", "ci_high", "p_value"} <= set(
        fev_fit.contrasts.columns
    )
    html = fev_fit._repr_html_()
    assert "<table" in html and "lsmeans" in html
    assert "TRT - PBO" in fev_fit.summary()


@pytest.mark.parametrize("structure", ["cs", "ar1h"])
def test_other_structures_fit_and_nest(fev_data: pd.DataFrame, fev_fit, structure: str) -> None:
    res = fev_mmrm(fev_data, covariance=structure)
    # both are special cases of the unstructured matrix: their REML optimum cannot be better
    assert res.neg2_reml > fev_fit.neg2_reml
    sigma = res.covariance.to_numpy()
    if structure == "cs":
        off = sigma[~np.eye(4, dtype=bool)]
        assert np.ptp(off) < 1e-8 and np.ptp(np.diag(sigma)) < 1e-8
    else:
        sd = np.sqrt(np.diag(sigma))
        corr = sigma / np.outer(sd, sd)
        assert corr[0, 2] == pytest.approx(corr[0, 1] ** 2, rel=1e-6)
    assert np.all(np.isfinite(res.contrasts["df"]))


def test_compound_symmetry_equals_statsmodels_random_intercept(fev_data: pd.DataFrame) -> None:
    """With a non-negative within-subject covariance, CS is the random-intercept model MixedLM fits."""
    import statsmodels.formula.api as smf

    res = mmrm(
        fev_data,
        outcome="FEV1",
        treatment="ARMCD",
        visit="AVISIT",
        subject="USUBJID",
        reference="PBO",
        covariance="cs",
    )
    peer = smf.mixedlm("FEV1 ~ ARMCD * AVISIT", fev_data.dropna(subset=["FEV1"]), groups="USUBJID").fit(
        reml=True
    )
    assert res.neg2_reml == pytest.approx(-2 * peer.llf, abs=1e-4)
    params = res.covariance_parameters.set_index("parameter").estimate
    assert params["cs_covariance"] == pytest.approx(float(peer.cov_re.iloc[0, 0]), rel=1e-4)
    assert params["residual"] == pytest.approx(peer.scale, rel=1e-4)
    np.testing.assert_allclose(res.fixed_effects.estimate, peer.fe_params, rtol=1e-5)


# SAS PROC MIXED, same model: "Type 3 Tests of Fixed Effects" (the mmrm package's design/SAS/sas_log_reml.txt)
SAS_TYPE3 = {  # term: (num df, den df as printed, F as printed, Pr > F)
    "ARMCD": (1, 169, 31.67, None),
    "AVISIT": (3, 148, 142.11, None),
    "ARMCD:AVISIT": (3, 148, 0.26, 0.8555),
    "RACE": (2, 166, 36.92, None),
    "SEX": (1, 166, 0.38, 0.5406),
}


@pytest.mark.parametrize("term", list(SAS_TYPE3))
def test_type3_tests_match_sas(fev_fit, term: str) -> None:
    num, den, f_value, p_value = SAS_TYPE3[term]
    row = fev_fit.anova.set_index("term").loc[term]
    assert row.df_num == num
    assert round(row.df_den) == den
    # SAS stops its optimisation slightly early (see above): F agrees to 3e-4
    assert row.f_value == pytest.approx(f_value, rel=3e-4, abs=5e-3)
    if p_value is not None:
        assert row.p_value == pytest.approx(p_value, abs=3e-4)
