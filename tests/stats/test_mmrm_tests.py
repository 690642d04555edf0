"""F tests of MMRM fixed effects: Type III tables (Satterthwaite and Kenward–Roger) and multi-row contrasts,
against R (``anova`` of ``nlme::gls``) and against exact small-sample answers known in closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.stats.conftest import fev_mmrm
from tests.stats.rref import r_reference
from toolkit.errors import DataError
from toolkit.stats import mmrm


def _term_key(term: str) -> str:
    return ":".join(sorted(term.split(":")))


def test_type3_f_statistics_match_r_gls_anova() -> None:
    frames, source = r_reference("mmrm_anova")
    data, expected = frames["data"], frames["results"]
    res = mmrm(
        data,
        outcome="CHG",
        treatment="TRTP",
        visit="AVISIT",
        subject="USUBJID",
        covariates=["STRAT"],
        baseline="BASE",
        reference="SHAM",
    )
    ours = res.anova.assign(key=res.anova["term"].map(_term_key)).set_index("key")
    assert len(ours) == len(expected)
    for row in expected.itertuples(index=False):
        got = ours.loc[_term_key(row.term)]
        assert got.df_num == row.df_num, row.term
        # nlme stops its optimiser a little earlier than ours: five significant digits
        assert got.f_value == pytest.approx(row.f_value, rel=2e-5), f"{row.term} ({source})"


@pytest.fixture(scope="module")
def complete_two_arm() -> tuple[pd.DataFrame, np.ndarray, int, int]:
    """Complete multivariate normal data, two arms, four visits (where exact tests exist)."""
    rng = np.random.default_rng(5)
    t, n1, n2 = 4, 14, 17
    cov = 0.5 * np.ones((t, t)) + np.diag([1.0, 1.5, 2.0, 2.5])
    y = rng.multivariate_normal(np.zeros(t), cov, n1 + n2)
    y[:n1] += [0.2, 0.5, 0.9, 1.0]
    arm = np.r_[["A"] * n1, ["B"] * n2]
    frame = pd.DataFrame(
        {
            "USUBJID": np.repeat(np.arange(n1 + n2), t),
            "TRT": np.repeat(arm, t),
            "AVISIT": np.tile([f"V{k + 1}" for k in range(t)], n1 + n2),
            "Y": y.ravel(),
        }
    )
    return frame, y, n1, n2


def test_kenward_roger_reproduces_hotellings_t2_for_parallel_profiles(complete_two_arm) -> None:
    # Kenward & Roger (1997): for complete multivariate normal data with an unstructured covariance their
    # scaled F and df are those of Hotelling's T^2, an exact test
    frame, y, n1, n2 = complete_two_arm
    t, n = y.shape[1], n1 + n2
    diff = np.diff(np.eye(t), axis=0)
    pooled = ((n1 - 1) * np.cov(y[:n1].T) + (n2 - 1) * np.cov(y[n1:].T)) / (n - 2)
    d = diff @ (y[:n1].mean(0) - y[n1:].mean(0))
    t2 = n1 * n2 / n * d @ np.linalg.solve(diff @ pooled @ diff.T, d)
    ell, nu = t - 1, n - 2
    exact_f = (nu - ell + 1) / (nu * ell) * t2
    res = mmrm(
        frame, outcome="Y", treatment="TRT", visit="AVISIT", subject="USUBJID", df_method="kenward-roger"
    )
    row = res.anova.set_index("term").loc["TRT:AVISIT"]
    assert row.df_num == ell
    assert row.df_den == pytest.approx(nu - ell + 1, rel=1e-6)
    assert row.f_value == pytest.approx(exact_f, rel=1e-6)
    assert row.p_value == pytest.approx(stats.f.sf(exact_f, ell, nu - ell + 1), rel=1e-5)


@pytest.mark.parametrize("df_method", ["satterthwaite", "kenward-roger"])
def test_arm_main_effect_is_the_t_test_of_subject_means(complete_two_arm, df_method: str) -> None:
    # the Type III arm effect averages the visits equally: with complete data it is the two-sample t test
    # of each subject's mean over visits, F(1, N - 2) exactly
    frame, y, n1, n2 = complete_two_arm
    t_test = stats.ttest_ind(y[:n1].mean(1), y[n1:].mean(1))
    res = mmrm(frame, outcome="Y", treatment="TRT", visit="AVISIT", subject="USUBJID", df_method=df_method)
    row = res.anova.set_index("term").loc["TRT"]
    assert row.f_value == pytest.approx(t_test.statistic**2, rel=1e-6)
    assert row.df_den == pytest.approx(n1 + n2 - 2, rel=1e-6)


@pytest.mark.parametrize("df_method", ["satterthwaite", "kenward-roger"])
def test_compound_symmetry_gives_the_split_plot_anova(complete_two_arm, df_method: str) -> None:
    # balanced complete data with compound symmetry: the within-subject F tests of the split-plot ANOVA,
    # with (T - 1)(N - 2) error df, are exact
    frame, y, n1, n2 = complete_two_arm
    t, n = y.shape[1], n1 + n2
    res = mmrm(
        frame,
        outcome="Y",
        treatment="TRT",
        visit="AVISIT",
        subject="USUBJID",
        covariance="cs",
        df_method=df_method,
    )
    table = res.anova.set_index("term")
    # the within-subject part of the split-plot ANOVA: project each subject on T - 1 orthonormal visit
    # contrasts; under compound symmetry the projections are independent with a common variance
    q, _ = np.linalg.qr(np.diff(np.eye(t), axis=0).T)
    z = y @ q
    z1, z2 = z[:n1], z[n1:]
    err_df = (t - 1) * (n - 2)
    mse = (((z1 - z1.mean(0)) ** 2).sum() + ((z2 - z2.mean(0)) ** 2).sum()) / err_df
    harmonic = 1 / n1 + 1 / n2
    f_inter = float(((z1.mean(0) - z2.mean(0)) ** 2).sum() / harmonic / (t - 1) / mse)
    f_visit = float((((z1.mean(0) + z2.mean(0)) / 2) ** 2).sum() / (harmonic / 4) / (t - 1) / mse)
    assert table.loc["AVISIT", "f_value"] == pytest.approx(f_visit, rel=1e-6)
    assert table.loc["TRT:AVISIT", "f_value"] == pytest.approx(f_inter, rel=1e-6)
    assert table.loc["AVISIT", "df_den"] == pytest.approx(err_df, rel=1e-6)
    assert table.loc["TRT:AVISIT", "df_den"] == pytest.approx(err_df, rel=1e-6)


@pytest.mark.parametrize("df_method", ["satterthwaite", "kenward-roger"])
def test_a_single_row_test_equals_the_contrast_t_test(fev_data: pd.DataFrame, df_method: str) -> None:
    res = fev_mmrm(fev_data, df_method=df_method)
    terms = list(res.fixed_effects["term"])
    row = np.zeros(len(terms))
    row[terms.index("ARMCD[TRT]")] = 1.0
    row[terms.index("ARMCD[TRT]:AVISIT[VIS4]")] = 1.0
    test = res.test(row, label="TRT - PBO at VIS4").iloc[0]
    contrast = res.contrasts.set_index("visit").loc["VIS4"]
    assert test.df_num == 1
    assert test.f_value == pytest.approx(contrast.statistic**2, rel=1e-8)
    assert test.df_den == pytest.approx(contrast.df, rel=1e-8)
    assert test.p_value == pytest.approx(contrast.p_value, rel=1e-6)
    # two rows: the treatment difference at VIS3 and VIS4 jointly; a repeated row does not add a df
    second = np.zeros(len(terms))
    second[terms.index("ARMCD[TRT]")] = 1.0
    second[terms.index("ARMCD[TRT]:AVISIT[VIS3]")] = 1.0
    joint = res.test(np.vstack([row, second, row]), label="VIS3 and VIS4").iloc[0]
    assert joint.df_num == 2 and joint.p_value < 1e-4


def test_test_refuses_a_matrix_of_the_wrong_width(fev_data: pd.DataFrame) -> None:
    res = mmrm(
        fev_data, outcome="FEV1", treatment="ARMCD", visit="AVISIT", subject="USUBJID", reference="PBO"
    )
    with pytest.raises(DataError, match="fixed effects"):
        res.test(np.ones(3))
    with pytest.raises(DataError, match="rank 0"):
        res.test(np.zeros(len(res.fixed_effects)))
