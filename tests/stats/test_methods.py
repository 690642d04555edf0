"""Split-face, rank tests, responders, equivalence, multiplicity, power and time to improvement, each
checked against an outside truth: published values, an independent library, or a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from toolkit.stats import (
    ancova_power,
    ancova_sample_size,
    fixed_sequence,
    hochberg,
    hodges_lehmann,
    holm,
    kaplan_meier,
    logrank,
    mann_whitney,
    mmrm_power_simulation,
    noninferiority,
    responder_analysis,
    risk_difference,
    serial_gatekeeping,
    splitface,
    time_to_improvement,
    tost,
    wilcoxon_signed_rank,
)


def _pairs(n: int = 30, shift: float = 0.8, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    subject = rng.normal(0, 2, n)
    ep = subject + rng.normal(0, 1, n)
    mc = subject + shift + rng.normal(0, 1, n)
    frame = pd.DataFrame(
        {
            "USUBJID": np.r_[np.arange(n), np.arange(n)],
            "SIDE": ["LEFT"] * n + ["RIGHT"] * n,
            "TRTP": ["EP"] * n + ["MC"] * n,
            "CHG": np.r_[ep, mc],
        }
    )
    return frame, ep, mc


def test_splitface_equals_paired_t_test() -> None:
    frame, ep, mc = _pairs()
    res = splitface(frame, outcome="CHG", treatment="TRTP", subject="USUBJID")
    row = res.contrasts.iloc[0]
    t = stats.ttest_rel(mc, ep)
    assert row.contrast == "MC - EP"
    assert row.estimate == pytest.approx((mc - ep).mean(), rel=1e-9)
    assert row.se == pytest.approx((mc - ep).std(ddof=1) / np.sqrt(len(ep)), rel=1e-6)
    assert row.df == pytest.approx(len(ep) - 1, rel=1e-6)
    assert row.p_value == pytest.approx(t.pvalue, rel=1e-5)
    assert res.details["within_subject_correlation"] > 0.5
    assert "variance_components" in res._repr_html_()


def test_splitface_keeps_unpaired_subjects_and_adjusts_for_baseline() -> None:
    frame, _, _ = _pairs(n=40, seed=5)
    rng = np.random.default_rng(9)
    frame["BASE"] = rng.normal(20, 3, len(frame))
    frame["CHG"] = frame["CHG"] - 0.5 * (frame["BASE"] - 20)
    frame = frame.drop(index=[0, 41])  # one side missing in two subjects
    res = splitface(frame, outcome="CHG", treatment="TRTP", subject="USUBJID", baseline="BASE")
    assert res.details["n_complete_pairs"] == 38
    fe = res.fixed_effects.set_index("term")
    assert fe.loc["BASE", "estimate"] == pytest.approx(-0.5, abs=0.15)
    assert res.contrasts.iloc[0].ci_low < 0.8 < res.contrasts.iloc[0].ci_high


def test_hodges_lehmann_matches_r_wilcox_test_example() -> None:
    # R: wilcox.test(x, y, paired = TRUE, conf.int = TRUE) on these pairs prints V = 24, p = 0.1094,
    # 95 % CI (-2.5, 15.0)
    x = np.array([23, 45, 12, 67, 34, 89, 56.0])
    y = np.array([19, 38, 22, 51, 29, 74, 44.0])
    est, low, high, method = hodges_lehmann(x - y)
    assert (low, high, method) == (-2.5, 15.0, "exact")
    assert est == np.median([(a + b) / 2 for i, a in enumerate(x - y) for b in (x - y)[i:]])
    frame = pd.DataFrame(
        {"ID": np.r_[np.arange(7), np.arange(7)], "ARM": ["A"] * 7 + ["B"] * 7, "Y": np.r_[y, x]}
    )
    res = wilcoxon_signed_rank(frame, outcome="Y", treatment="ARM", subject="ID")
    assert res.contrasts.iloc[0].p_value == pytest.approx(0.1094, abs=5e-5)


def test_mann_whitney_shift_and_interval_properties() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.normal(1.0, 1, 25), rng.normal(0.0, 1, 30)
    est, low, high, method = hodges_lehmann(x, y)
    assert est == pytest.approx(np.median(np.subtract.outer(x, y)))
    assert method == "exact" and low < est < high
    # shifting one sample shifts estimate and interval by the same amount (equivariance)
    est2, low2, high2, _ = hodges_lehmann(x + 3.0, y)
    assert (est2, low2, high2) == pytest.approx((est + 3, low + 3, high + 3))
    frame = pd.DataFrame({"TRTP": ["SHAM"] * 30 + ["EP"] * 25, "CHG": np.r_[y, x]})
    res = mann_whitney(frame, outcome="CHG", treatment="TRTP", reference="SHAM")
    # below 50 per arm the p-value is exact, as R's wilcox.test (scipy's exact distribution as a peer)
    assert res.contrasts.iloc[0].p_value == pytest.approx(stats.mannwhitneyu(x, y, method="exact").pvalue)
    assert res.contrasts.iloc[0].method == "exact"


def test_hodges_lehmann_interval_covers_at_nominal_rate() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(200):
        _, low, high, _ = hodges_lehmann(rng.normal(0.5, 1, 12), rng.normal(0, 1, 10))
        hits += low <= 0.5 <= high
    assert 0.91 <= hits / 200 <= 0.99


@pytest.mark.parametrize(
    ("counts", "newcombe", "mn"),
    [  # Newcombe (1998), Stat Med 17:873, Table II: method 10 (hybrid score) and MN score interval
        ((56, 70, 48, 80), (0.0524, 0.3339), (0.0528, 0.3382)),
        ((9, 10, 3, 10), (0.1705, 0.8090), (0.1700, 0.8406)),
        ((5, 56, 0, 29), (-0.0381, 0.1926), (-0.0326, 0.1933)),
        ((0, 10, 0, 20), (-0.1611, 0.2775), (-0.1658, 0.2844)),
    ],
)
def test_risk_difference_intervals_match_newcombe_1998(counts, newcombe, mn) -> None:
    nc = risk_difference(*counts, method="newcombe")
    assert (round(nc["ci_low"], 4), round(nc["ci_high"], 4)) == newcombe
    m = risk_difference(*counts, method="mn")
    assert (round(m["ci_low"], 4), round(m["ci_high"], 4)) == mn


def test_responder_analysis_tables() -> None:
    frame = pd.DataFrame(
        {
            "TRTP": ["SHAM"] * 80 + ["EP"] * 70,
            "RESPFL": ["Y"] * 48 + ["N"] * 32 + ["Y"] * 56 + ["N"] * 14,
            "AGE": np.tile([30.0, 50.0], 75),
        }
    )
    res = responder_analysis(frame, response="RESPFL", treatment="TRTP", reference="SHAM", covariates=["AGE"])
    rd = res.risk_differences.iloc[0]
    assert rd.estimate == pytest.approx(0.2) and round(rd.ci_low, 4) == 0.0524
    orow = res.odds_ratios.iloc[0]
    assert orow.estimate == pytest.approx((56 * 32) / (14 * 48))
    assert orow.p_value == pytest.approx(stats.fisher_exact([[56, 14], [48, 32]])[1])
    lg = res.logistic.iloc[0]
    assert lg.estimate == pytest.approx(orow.estimate, rel=0.05)  # AGE is balanced: adjusted ~ crude


def test_tost_matches_statsmodels_two_sample() -> None:
    from statsmodels.stats.weightstats import ttost_ind

    rng = np.random.default_rng(4)
    a, b = rng.normal(0.1, 1, 40), rng.normal(0, 1, 45)
    n1, n2 = len(a), len(b)
    sp = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    row = pd.DataFrame(
        {
            "contrast": ["A - B"],
            "estimate": [a.mean() - b.mean()],
            "se": [sp * np.sqrt(1 / n1 + 1 / n2)],
            "df": [n1 + n2 - 2.0],
        }
    )
    got = tost(row, lower=-0.6, upper=0.6)
    p, lower, upper = ttost_ind(a, b, -0.6, 0.6)
    assert got.p_value.iloc[0] == pytest.approx(p, rel=1e-9)
    assert got.ci_level.iloc[0] == pytest.approx(0.90)
    assert bool(got.equivalent.iloc[0]) == (got.ci_low.iloc[0] > -0.6 and got.ci_high.iloc[0] < 0.6)
    ni = noninferiority(row, margin=0.6, higher_is_better=True)
    assert ni.p_value.iloc[0] == pytest.approx(lower[1], rel=1e-9)


def test_multiplicity_against_statsmodels_and_by_hand() -> None:
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    np.testing.assert_allclose(hochberg(p), multipletests(p, method="simes-hochberg")[1])
    np.testing.assert_allclose(fixed_sequence([0.01, 0.04, 0.03, 0.2, 0.001]), [0.01, 0.04, 0.04, 0.2, 0.2])
    gk = serial_gatekeeping(
        {"primary": {"P1": 0.01}, "key": {"K1": 0.02, "K2": 0.04}, "other": {"O1": 0.001}}
    )
    adj = gk.set_index("hypothesis").adjusted_p_value
    assert adj["P1"] == 0.01 and adj["K1"] == pytest.approx(0.04) and adj["K2"] == pytest.approx(0.04)
    assert adj["O1"] == pytest.approx(0.04)  # gated by the key family
    failed_gate = serial_gatekeeping({"primary": {"P1": 0.2}, "key": {"K1": 0.0001}})
    assert not failed_gate.rejected.any()


def test_ancova_power_and_sample_size() -> None:
    from statsmodels.stats.power import TTestIndPower

    # without covariates the ANCOVA formula is the two-sample t-test
    n = ancova_sample_size(delta=1.0, sd=2.0, rho=0.0, n_covariates=0)
    assert n["n_reference"] == int(
        np.ceil(TTestIndPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8))
    )
    assert ancova_power(64, delta=1.0, sd=2.0, n_covariates=0) == pytest.approx(
        TTestIndPower().power(effect_size=0.5, nobs1=64, alpha=0.05), rel=1e-6
    )
    # a baseline correlation of 0.6 leaves 64 % of the variance: about 36 % fewer subjects
    adj = ancova_sample_size(delta=1.0, sd=2.0, rho=0.6)
    assert adj["sd_adjusted"] == pytest.approx(1.6)
    assert 0.6 < adj["n_reference"] / n["n_reference"] < 0.7
    assert ancova_sample_size(delta=1.0, sd=2.0, rho=0.6, dropout=0.2)["n_total_enrolled"] == 2 * int(
        np.ceil(adj["n_reference"] / 0.8)
    )


def test_mmrm_power_simulation_agrees_with_analytic_power() -> None:
    # complete data, no baseline: the last-visit MMRM contrast is the two-sample t-test at that visit
    cov = 4.0 * (0.5 * np.ones((3, 3)) + 0.5 * np.eye(3))
    sim = mmrm_power_simulation(20, delta_by_visit=[0.5, 1.0, 1.5], covariance=cov, n_simulations=40, seed=7)
    analytic = ancova_power(20, delta=1.5, sd=2.0, n_covariates=0)
    assert sim.n_failed_fits == 0
    assert abs(sim.power - analytic) < 4 * max(sim.mc_se, 0.03)
    assert sim.estimates.estimate.mean() == pytest.approx(1.5, abs=0.35)


def test_kaplan_meier_and_logrank_match_statsmodels() -> None:
    from statsmodels.duration.survfunc import SurvfuncRight, survdiff

    rng = np.random.default_rng(0)
    t = rng.integers(1, 12, 60).astype(float)
    e = rng.uniform(size=60) < 0.7
    g = np.repeat(["A", "B", "C"], 20)
    km = kaplan_meier(t, e)
    ref = SurvfuncRight(t, e)
    at_events = km[km.n_event > 0]
    np.testing.assert_allclose(at_events.survival, ref.surv_prob, rtol=1e-12)
    np.testing.assert_allclose(at_events.se, ref.surv_prob_se, rtol=1e-10)
    lr = logrank(t, e, g)
    stat, p = survdiff(t, e, g)
    assert lr["statistic"] == pytest.approx(stat, rel=1e-10) and lr["p_value"] == pytest.approx(p, rel=1e-10)


def test_time_to_improvement_checks_the_seed_claims() -> None:
    # MC improves at session 3 or 4, EP at 5 or 6: the claims hold by construction
    rows = []
    rng = np.random.default_rng(8)
    for i in range(40):
        arm = "MC" if i < 20 else "EP"
        first = int(rng.choice([3, 4])) if arm == "MC" else int(rng.choice([5, 6]))
        for session in range(1, 9):
            rows.append(
                {
                    "USUBJID": f"S{i}",
                    "TRTP": arm,
                    "SESSION": session,
                    "IMPROVED": "Y" if session >= first else "N",
                }
            )
    res = time_to_improvement(
        pd.DataFrame(rows), subject="USUBJID", treatment="TRTP", session="SESSION", responder="IMPROVED"
    )
    med = res.medians.set_index("treatment")
    assert 3 <= med.loc["MC", "median_session"] <= 4 and 5 <= med.loc["EP", "median_session"] <= 6
    assert bool(med.loc["MC", "compatible_with_claim"]) and bool(med.loc["EP", "compatible_with_claim"])
    assert res.logrank.p_value.iloc[0] < 1e-6
    assert set(res.km.columns) >= {"treatment", "time", "survival", "ci_low", "ci_high"}
    # a claim far from the data is flagged
    off = time_to_improvement(
        pd.DataFrame(rows),
        subject="USUBJID",
        treatment="TRTP",
        session="SESSION",
        responder="IMPROVED",
        claims={"MC": (8, 10)},
    )
    assert not bool(off.medians.set_index("treatment").loc["MC", "compatible_with_claim"])


def test_single_threaded_blas_restores_the_thread_count() -> None:
    from toolkit.stats._blas import _openblas_handles, single_threaded_blas

    handles = _openblas_handles()
    before = [get() for get, _ in handles]
    with single_threaded_blas():
        assert all(get() == 1 for get, _ in handles)
    assert [get() for get, _ in handles] == before


def test_results_render_in_jupyter(adsl: pd.DataFrame, adae: pd.DataFrame) -> None:
    from toolkit.stats import ae_incidence, demographics

    frame, _, _ = _pairs()
    results = [
        splitface(frame, outcome="CHG", treatment="TRTP", subject="USUBJID"),
        mann_whitney(frame, outcome="CHG", treatment="TRTP"),
        responder_analysis(frame.assign(R=frame.CHG > 0), response="R", treatment="TRTP"),
        demographics(adsl, treatment="TRT01P", variables=["AGE", "SEX"]),
        ae_incidence(adae, adsl),
    ]
    for res in results:
        html = res._repr_html_()
        assert html.startswith("<h4>") and "<table" in html
        text = res.summary()
        assert res.title in text
        assert res.to_dict()["tables"]


def test_improvement_records_feed_time_to_improvement() -> None:
    import pandas as pd

    from toolkit.stats import improvement_records, time_to_improvement

    # subject 1 improves at S8 (−12 %), subject 2 never (censored at S12), subject 3 at S4; FU is ignored
    bds = pd.DataFrame({
        "USUBJID": ["1"] * 4 + ["2"] * 4 + ["3"] * 4,
        "TRTP": ["EP"] * 4 + ["EP"] * 4 + ["MC"] * 4,
        "PARAMCD": "NLFLEN",
        "AVISIT": ["S4", "S8", "S12", "FU"] * 3,
        "PCHG": [-5.0, -12.0, -20.0, -30.0, -1.0, -9.9, None, -50.0, -10.0, -3.0, -15.0, 0.0],
    })
    rec = improvement_records(bds, paramcd="NLFLEN", threshold=10.0, sessions={"S4": 4, "S8": 8, "S12": 12})
    assert len(rec) == 8  # FU rows and the missing value are left out
    res = time_to_improvement(rec, subject="USUBJID", treatment="TRTP", session="session", responder="responder")
    first = res.first_improvement.set_index("USUBJID")
    assert first.loc["1", "session"] == 8 and bool(first.loc["1", "event"])
    assert first.loc["2", "session"] == 8 and not bool(first.loc["2", "event"])
    assert first.loc["3", "session"] == 4 and bool(first.loc["3", "event"])
