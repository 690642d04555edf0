"""The CDISC pilot study (CDISCPILOT01): the published tables reproduced from its ADaM datasets.

Published numbers:
- Table 14-3.01 (primary ANCOVA of ADAS-Cog(11) change to week 24, LOCF): the original SAS output
  (rtf_eff1.sas, 2006) as reproduced in public CDISC pilot replications, e.g. the R Consortium
  submissions-pilot1/pilot3 test suites: Low - Placebo -0.5 (0.82), 95 % CI (-2.1; 1.1), p 0.569;
  High - Placebo -1.0 (0.84), (-2.7; 0.7), p 0.233; High - Low -0.5 (0.84), (-2.2; 1.1), p 0.520.
- Table 14-2.01 (demographics) and Table 14-5.01 (AE incidence): means (SD) and percentages as listed in
  public target files of CDISC pilot replications (e.g. Age 75.2 (8.59) / 75.7 (8.29) / 74.4 (7.89),
  application-site pruritus 7.0 % / 26.2 % / 26.2 %).
Where the report's p-values were not found, the test compares with an independent computation (noted).
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from toolkit.stats import ae_incidence, ancova, demographics, freeman_halton, mmrm

PBO, LOW, HIGH = "Placebo", "Xanomeline Low Dose", "Xanomeline High Dose"


@pytest.fixture(scope="module")
def week24(adadas: pd.DataFrame) -> pd.DataFrame:
    sel = (
        (adadas.PARAMCD == "ACTOT")
        & (adadas.ANL01FL == "Y")
        & (adadas.EFFFL == "Y")
        & (adadas.AVISIT == "Week 24")
    )
    return adadas[sel]


def test_primary_ancova_reproduces_table_14_3_01(week24: pd.DataFrame) -> None:
    assert week24.TRTP.value_counts().to_dict() == {LOW: 81, PBO: 79, HIGH: 74}
    res = ancova(
        week24,
        outcome="CHG",
        treatment="TRTP",
        baseline="BASE",
        strata=["SITEGR1"],
        reference=PBO,
        contrasts="pairwise",
    )
    c = res.contrasts.set_index("contrast")
    published = {  # contrast: (estimate, se, ci_low, ci_high, p) as printed (1-2 decimals, p 3 decimals)
        f"{LOW} - {PBO}": (-0.5, 0.82, -2.1, 1.1, 0.569),
        f"{HIGH} - {PBO}": (-1.0, 0.84, -2.7, 0.7, 0.233),
    }
    for name, (est, se, lo, hi, p) in published.items():
        row = c.loc[name]
        assert round(row.estimate, 1) == est
        assert round(row.se, 2) == se
        assert (round(row.ci_low, 1), round(row.ci_high, 1)) == (lo, hi)
        assert round(row.p_value, 3) == p
    high_low = c.loc[f"{LOW} - {HIGH}"]  # the table prints High - Low
    assert round(-high_low.estimate, 1) == -0.5 and round(high_low.se, 2) == 0.84
    assert (round(-high_low.ci_high, 1), round(-high_low.ci_low, 1)) == (-2.2, 1.1)
    assert round(high_low.p_value, 3) == 0.520
    assert res.details["n"] == 234 and res.contrasts["df"].iloc[0] == 234 - 14


def test_ancova_equals_ols_and_type3(week24: pd.DataFrame) -> None:
    import statsmodels.formula.api as smf

    res = ancova(week24, outcome="CHG", treatment="TRTP", baseline="BASE", strata=["SITEGR1"], reference=PBO)
    data = week24.assign(SITEGR1=week24.SITEGR1.astype(str))
    ols = smf.ols("CHG ~ C(TRTP, Treatment('Placebo')) + C(SITEGR1) + BASE", data=data).fit()
    coef = ols.params[f"C(TRTP, Treatment('Placebo'))[T.{HIGH}]"]
    assert res.contrasts.set_index("contrast").loc[f"{HIGH} - {PBO}", "estimate"] == pytest.approx(
        coef, rel=1e-10
    )
    # Type III treatment test: F from the residual sums of squares of the model with and without TRTP
    reduced = smf.ols("CHG ~ C(SITEGR1) + BASE", data=data).fit()
    f_value = ((reduced.ssr - ols.ssr) / 2) / (ols.ssr / ols.df_resid)
    assert res.anova.set_index("term").loc["TRTP", "f_value"] == pytest.approx(f_value, rel=1e-9)
    # dose response (published p 0.245): treatment dose as a number in the same model
    dose = smf.ols("CHG ~ TRTPN + C(SITEGR1) + BASE", data=data).fit()
    assert round(dose.pvalues["TRTPN"], 3) == 0.245


def test_lsmeans_observed_margins_average_predictions(week24: pd.DataFrame) -> None:
    res = ancova(week24, outcome="CHG", treatment="TRTP", baseline="BASE", strata=["SITEGR1"], reference=PBO)
    fitted = res.model
    x = np.asarray(fitted.model.exog)
    # OM LS mean of an arm = mean prediction over all subjects with the treatment set to that arm
    base = x.copy()
    base[:, 1:3] = 0.0  # treatment dummies (High, Low) off -> Placebo
    assert res.lsmeans.set_index("treatment").loc[PBO, "estimate"] == pytest.approx(
        float((base @ fitted.params).mean())
    )
    equal = ancova(
        week24,
        outcome="CHG",
        treatment="TRTP",
        baseline="BASE",
        strata=["SITEGR1"],
        reference=PBO,
        weights="equal",
    )
    # the weights move the LS means but never the differences
    assert equal.lsmeans.estimate.iloc[0] != pytest.approx(res.lsmeans.estimate.iloc[0], abs=1e-3)
    np.testing.assert_allclose(equal.contrasts.estimate, res.contrasts.estimate, rtol=1e-10)


def test_robust_standard_errors(week24: pd.DataFrame) -> None:
    import statsmodels.formula.api as smf

    res = ancova(
        week24,
        outcome="CHG",
        treatment="TRTP",
        baseline="BASE",
        strata=["SITEGR1"],
        reference=PBO,
        robust="HC3",
    )
    data = week24.assign(SITEGR1=week24.SITEGR1.astype(str))
    ols = smf.ols("CHG ~ C(TRTP, Treatment('Placebo')) + C(SITEGR1) + BASE", data=data).fit(cov_type="HC3")
    se = ols.bse[f"C(TRTP, Treatment('Placebo'))[T.{LOW}]"]
    assert res.contrasts.set_index("contrast").loc[f"{LOW} - {PBO}", "se"] == pytest.approx(se, rel=1e-10)
    assert res.details["standard_errors"] == "HC3"


def test_mmrm_weeks_8_16_24(adadas: pd.DataFrame) -> None:
    """Observed (not LOCF) ADAS-Cog over weeks 8/16/24. Independent truth: on subjects complete at all
    three visits with the model CHG ~ TRTP * AVISIT + BASE * AVISIT, GLS with identical regressors at every
    visit equals per-visit OLS, so estimate, SE and df equal the per-visit ANCOVA exactly."""
    obs = adadas[
        (adadas.PARAMCD == "ACTOT")
        & (adadas.EFFFL == "Y")
        & (adadas.ANL01FL == "Y")
        & adadas.DTYPE.isna()
        & adadas.AVISIT.isin(["Week 8", "Week 16", "Week 24"])
    ]
    complete = obs.groupby("USUBJID").AVISIT.nunique()
    completers = obs[obs.USUBJID.isin(complete[complete == 3].index)]
    res = mmrm(
        completers,
        outcome="CHG",
        treatment="TRTP",
        visit="AVISIT",
        subject="USUBJID",
        baseline="BASE",
        reference=PBO,
    )
    assert res.details["visits"] == ["Week 8", "Week 16", "Week 24"]  # ordered by AVISITN
    for visit in ("Week 8", "Week 16", "Week 24"):
        one = completers[completers["AVISIT"] == visit]
        ols = ancova(one, outcome="CHG", treatment="TRTP", baseline="BASE", reference=PBO)
        got = res.contrasts[res.contrasts.visit == visit].set_index("contrast")
        want = ols.contrasts.set_index("contrast")
        np.testing.assert_allclose(got.estimate, want.estimate, rtol=1e-6)
        np.testing.assert_allclose(got.se, want.se, rtol=1e-5)
        np.testing.assert_allclose(got.df, want.df, rtol=1e-4)
    # the full MAR analysis with site group: every subject with any post-baseline value contributes
    full = mmrm(
        obs,
        outcome="CHG",
        treatment="TRTP",
        visit="AVISIT",
        subject="USUBJID",
        baseline="BASE",
        covariates=["SITEGR1"],
        reference=PBO,
    )
    assert full.details["n_subjects"] == obs.USUBJID.nunique() and full.details["n_patterns"] > 1
    wk24 = full.contrasts[full.contrasts.visit == "Week 24"]
    assert np.all(wk24.se > 0) and np.all((wk24.df > 50) & (wk24.df < len(obs)))


def test_demographics_reproduce_table_14_2_01(adsl: pd.DataFrame) -> None:
    res = demographics(
        adsl,
        treatment="TRT01P",
        variables=["AGE", "SEX", "RACE", "MMSETOT", "WEIGHTBL"],
        population_flag="ITTFL",
    )
    t = res.table.set_index(["variable", "level", "treatment"])
    published = {
        ("AGE", PBO): (75.2, 8.59),
        ("AGE", LOW): (75.7, 8.29),
        ("AGE", HIGH): (74.4, 7.89),
        ("AGE", "Total"): (75.1, 8.25),
        ("MMSETOT", "Total"): (18.1, 4.21),
        ("WEIGHTBL", PBO): (62.8, 12.77),
        ("WEIGHTBL", LOW): (67.3, 14.12),
        ("WEIGHTBL", HIGH): (70.0, 14.65),
    }
    for (var, arm), (mean, sd) in published.items():
        row = t.loc[(var, "", arm)]
        assert round(row["mean"], 1) == mean and round(row["sd"], 2) == sd
    assert t.loc[("AGE", "", "Total"), "min"] == 51 and t.loc[("AGE", "", "Total"), "max"] == 89
    assert round(t.loc[("SEX", "M", "Total"), "pct"]) == 44
    # p-values: independent computation (ANOVA F from the OLS fit; chi-square from the counts)
    tests = res.tests.set_index("variable")
    data = adsl[adsl.ITTFL == "Y"]
    groups = [g.AGE.to_numpy() for _, g in data.groupby("TRT01P")]
    grand = data.AGE.mean()
    ssb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    ssw = sum(((g - g.mean()) ** 2).sum() for g in groups)
    f = (ssb / 2) / (ssw / (len(data) - 3))
    assert tests.loc["AGE", "p_value"] == pytest.approx(stats.f.sf(f, 2, len(data) - 3), rel=1e-9)
    observed = pd.crosstab(data.TRT01P, data.SEX).to_numpy()
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert tests.loc["SEX", "p_value"] == pytest.approx(stats.chi2.sf(chi2, 2), rel=1e-9)
    assert "Mean (SD)" in set(res.display.statistic)


def test_ae_incidence_reproduces_table_14_5_01(adae: pd.DataFrame, adsl: pd.DataFrame) -> None:
    res = ae_incidence(adae, adsl, treatment="TRT01A", reference=PBO)
    assert res.big_n.set_index("treatment").n.to_dict() == {PBO: 86, HIGH: 84, LOW: 84}
    inc = res.incidence.set_index(["soc", "term"])
    published = {  # Table 14-5.01 percentages (Placebo, Low, High)
        ("ANY TREATMENT-EMERGENT EVENT", ""): (75.6, 91.7, 90.5),
        ("GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS", "APPLICATION SITE PRURITUS"): (
            7.0,
            26.2,
            26.2,
        ),
        ("GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS", "APPLICATION SITE ERYTHEMA"): (
            3.5,
            14.3,
            17.9,
        ),
        ("SKIN AND SUBCUTANEOUS TISSUE DISORDERS", ""): (23.3, 46.4, 47.6),
        ("NERVOUS SYSTEM DISORDERS", "DIZZINESS"): (2.3, 9.5, 13.1),
    }
    for key, pcts in published.items():
        row = inc.loc[key]
        got = (row[f"pct_{PBO}"], row[f"pct_{LOW}"], row[f"pct_{HIGH}"])
        assert tuple(round(v, 1) for v in got) == pcts, key
    pruritus = inc.loc[("GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS", "APPLICATION SITE PRURITUS")]
    assert (pruritus[f"n_{PBO}"], pruritus[f"events_{PBO}"]) == (6, 10)
    # 3-arm exact p-value against an independent brute-force enumeration with exact integers
    counts, totals = (6, 22, 22), (86, 84, 84)
    assert pruritus.p_value == pytest.approx(_brute_force_exact(counts, totals), rel=1e-9)
    pairwise = ae_incidence(adae, adsl, treatment="TRT01A", reference=PBO, test="pairwise").incidence
    row = pairwise.set_index(["soc", "term"]).loc[
        ("GENERAL DISORDERS AND ADMINISTRATION SITE CONDITIONS", "APPLICATION SITE PRURITUS")
    ]
    assert row[f"p_value_{LOW}_vs_{PBO}"] == pytest.approx(stats.fisher_exact([[22, 62], [6, 80]])[1])


def _brute_force_exact(counts: tuple[int, ...], totals: tuple[int, ...]) -> float:
    r = sum(counts)
    denom = math.comb(sum(totals), r)

    def prob(xs):
        return math.prod(math.comb(n, x) for n, x in zip(totals, xs, strict=True)) / denom

    p_obs = prob(counts)
    total = 0.0
    for xs in product(*(range(n + 1) for n in totals[:-1])):
        last = r - sum(xs)
        if 0 <= last <= totals[-1]:
            p = prob((*xs, last))
            if p <= p_obs * (1 + 1e-7):
                total += p
    return total


def test_freeman_halton_two_arms_is_fisher() -> None:
    for table in ([3, 17, 7, 13], [0, 10, 5, 5], [12, 3, 4, 11]):
        a, b, c, d = table
        assert freeman_halton([a, c], [a + b, c + d]) == pytest.approx(
            stats.fisher_exact([[a, b], [c, d]])[1], rel=1e-9
        )
