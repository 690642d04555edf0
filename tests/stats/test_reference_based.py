"""Reference-based multiple imputation and tipping point: a published worked example (R rbmi on the
antidepressant trial), closed forms on a monotone dataset, and the MMRM under MAR."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import DataError
from toolkit.stats import mmrm
from toolkit.stats.errors import AnalysisWarning
from toolkit.stats.reference_based import reference_based_mi
from toolkit.stats.tipping_point import tipping_point

REFERENCE = Path(__file__).resolve().parent / "reference"


@pytest.fixture(scope="module")
def antidepressant() -> pd.DataFrame:
    data = pd.read_csv(REFERENCE / "antidepressant.csv")
    data["VISIT"] = data["VISIT"].astype(str)
    return data


def _ad(data: pd.DataFrame, **options):
    settings = {
        "outcome": "CHANGE",
        "treatment": "THERAPY",
        "visit": "VISIT",
        "subject": "PATIENT",
        "baseline": "BASVAL",
        "reference": "PLACEBO",
        "strategy": "J2R",
        "n_jobs": 1,
        "progress": False,
        **options,
    }
    return reference_based_mi(data, **settings)


def test_conditional_mean_jackknife_reproduces_the_rbmi_vignette(antidepressant: pd.DataFrame) -> None:
    # rbmi "Inference with Conditional Mean Imputation": J2R for every discontinuation (the first visit of
    # the final run of missing visits; the one intermittent gap is MAR), jackknife standard errors
    res = _ad(antidepressant, method="conditional-mean", resampling="jackknife", n_jobs=2)
    con = res.contrasts.set_index("visit")
    published = {"4": (-0.092, 0.695), "5": (1.305, 0.878), "6": (1.929, 0.862), "7": (2.126, 0.858)}
    for visit, (est, se) in published.items():  # rbmi reports PLACEBO - DRUG
        assert -con.loc[visit, "estimate"] == pytest.approx(est, abs=6e-4), visit
        assert con.loc[visit, "se"] == pytest.approx(se, abs=6e-4), visit
    lsm = res.lsmeans.set_index(["treatment", "visit"])
    assert lsm.loc[("DRUG", "7"), "estimate"] == pytest.approx(-6.965, abs=6e-4)
    assert lsm.loc[("DRUG", "7"), "se"] == pytest.approx(0.685, abs=6e-4)
    assert lsm.loc[("PLACEBO", "7"), "estimate"] == pytest.approx(-4.839, abs=6e-4)
    assert lsm.loc[("PLACEBO", "7"), "se"] == pytest.approx(0.762, abs=6e-4)
    # the vignette's 95 % interval and p-value at the last visit (normal approximation)
    last = con.loc["7"]
    assert (-last.ci_high, -last.ci_low) == pytest.approx((0.444, 3.807), abs=6e-4)
    assert round(last.p_value, 3) == 0.013
    assert res.details["strategies"] == {"J2R": 43}
    assert len(res.events) == 43 and set(res.events["strategy"]) == {"J2R"}


def test_approximate_bayesian_mi_is_close_to_rbmi_bayesian_mi(antidepressant: pd.DataFrame) -> None:
    # rbmi quickstart (MCMC draws, 150 imputations, Rubin's rules): 2.156 (SE 1.113) at the last visit;
    # bootstrap-based draws target the same posterior approximately
    res = _ad(antidepressant, method="approximate-bayesian", n_imputations=100, n_jobs=2)
    last = res.contrasts.set_index("visit").loc["7"]
    assert -last.estimate == pytest.approx(2.156, abs=0.15)
    assert last.se == pytest.approx(1.113, rel=0.08)
    assert 100 < last.df < 170  # Barnard-Rubin df below the complete-data 169


def _monotone_trial(seed: int = 7, n_per_arm: int = 11) -> pd.DataFrame:
    """Three arms, four visits, baseline and a stratum; subjects leave for good (monotone dropout)."""
    rng = np.random.default_rng(seed)
    visits = ["S4", "S8", "S12", "FU"]
    effects = {"SHAM": [0, 0, 0, 0], "EP": [-1, -2, -3, -2.5], "MC": [-0.5, -1.5, -2.5, -2.0]}
    sd = np.array([2.0, 2.2, 2.6, 3.0])
    cov = np.outer(sd, sd) * 0.55 ** np.abs(np.subtract.outer(range(4), range(4)))
    rows = []
    for arm, effect in effects.items():
        for i in range(n_per_arm):
            base = rng.normal(30, 4)
            stratum = "ge45" if rng.uniform() < 0.5 else "lt45"
            y = (
                np.array(effect)
                - 0.2 * (base - 30)
                + 0.7 * (stratum == "ge45")
                + rng.multivariate_normal(np.zeros(4), cov)
            )
            last = int(rng.choice([1, 2, 3, 4], p=[0.1, 0.15, 0.15, 0.6]))
            for j in range(last):
                rows.append(
                    {
                        "USUBJID": f"{arm}{i:02d}",
                        "TRTP": arm,
                        "BASE": base,
                        "STRAT": stratum,
                        "AVISIT": visits[j],
                        "CHG": y[j],
                    }
                )
    return pd.DataFrame(rows)


#: the model of the monotone trial, for the MMRM and the imputation alike
MODEL = {
    "outcome": "CHG",
    "treatment": "TRTP",
    "visit": "AVISIT",
    "subject": "USUBJID",
    "baseline": "BASE",
    "covariates": ["STRAT"],
    "visit_order": ["S4", "S8", "S12", "FU"],
}


def _cmi(data: pd.DataFrame, strategy: str, **options):
    return reference_based_mi(
        data,
        **MODEL,
        reference="SHAM",
        strategy=strategy,
        method="conditional-mean",
        resampling="jackknife",
        n_jobs=1,
        progress=False,
        **options,
    )


@pytest.fixture(scope="module")
def monotone():
    data = _monotone_trial()
    fit = mmrm(data, **MODEL, covariates_by_visit=True, reference="SHAM")
    return data, fit, {s: _cmi(data, s) for s in ("MAR", "J2R", "CR", "CIR")}


def test_conditional_mean_imputation_under_mar_is_the_mmrm(monotone) -> None:
    # Wolbers et al. (2022): with the imputation model's covariates in the ANCOVA, conditional mean
    # imputation under MAR gives the MMRM estimate exactly, at every visit
    _, fit, results = monotone
    ours = results["MAR"].contrasts.set_index(["visit", "contrast"])["estimate"]
    theirs = fit.contrasts.set_index(["visit", "contrast"])["estimate"]
    pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index(), rtol=1e-7, check_names=False)


def _subjects(data: pd.DataFrame) -> pd.DataFrame:
    """One row per subject: arm, baseline, stratum and the number of visits observed."""
    return data.groupby("USUBJID").agg(
        TRTP=("TRTP", "first"), BASE=("BASE", "first"), STRAT=("STRAT", "first"), n=("CHG", "size")
    )


def _arm_coefficients(subjects: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """OLS of ``values`` on the ANCOVA design (intercept, EP, MC, BASE, stratum); [1], [2] are the arms."""
    z = np.column_stack(
        [
            np.ones(len(subjects)),
            (subjects.TRTP == "EP").to_numpy(float),
            (subjects.TRTP == "MC").to_numpy(float),
            subjects.BASE.to_numpy(float),
            (subjects.STRAT == "lt45").to_numpy(float),
        ]
    )
    coef, *_ = np.linalg.lstsq(z, values, rcond=None)
    return coef


def _closed_form_shift(data: pd.DataFrame, fit, strategy: str) -> dict[str, float]:
    """Shift of the last-visit ANCOVA estimate from MAR, from the MMRM estimates alone.

    For an active-arm subject who left before the last visit T (first missing visit k), the value imputed
    at T differs from its MAR imputation by -D_T (J2R), -(D_T - D_{k-1}) (CIR) or -D_T + B_k D_o (CR), D
    the MMRM's arm - reference differences and B_k = Sigma_{T,o} Sigma_oo^-1 over the observed visits o.
    The ANCOVA estimate moves by the arm coefficient of the regression of those shifts on the design.
    """
    visits = ["S4", "S8", "S12", "FU"]
    sigma = fit.covariance.to_numpy()
    con = fit.contrasts.set_index(["visit", "contrast"])["estimate"]
    subjects = _subjects(data)
    shift = np.zeros(len(subjects))
    for i, (sid, row) in enumerate(subjects.iterrows()):
        k = int(row.n)
        if row.TRTP == "SHAM" or k == 4:
            continue
        d = np.array([con[(v, f"{row.TRTP} - SHAM")] for v in visits])
        if strategy == "J2R":
            shift[i] = -d[3]
        elif strategy == "CIR":
            shift[i] = -(d[3] - (d[k - 1] if k > 0 else 0.0))
        else:
            b = np.linalg.solve(sigma[:k, :k], sigma[:k, 3])
            shift[i] = -d[3] + b @ d[:k]
        del sid
    coef = _arm_coefficients(subjects, shift)
    return {"EP - SHAM": coef[1], "MC - SHAM": coef[2]}


@pytest.mark.parametrize("strategy", ["J2R", "CR", "CIR"])
def test_reference_based_estimates_match_their_closed_forms(monotone, strategy: str) -> None:
    data, fit, results = monotone
    mar = fit.contrasts.set_index(["visit", "contrast"])["estimate"]
    shifts = _closed_form_shift(data, fit, strategy)
    got = results[strategy].contrasts.set_index(["visit", "contrast"])["estimate"]
    for contrast, shift in shifts.items():
        assert got[("FU", contrast)] == pytest.approx(mar[("FU", contrast)] + shift, rel=1e-7, abs=1e-9), (
            contrast
        )
    # J2R in words: the estimate is the MAR estimate times the share of the active arm still on study,
    # up to the baseline and stratum adjustment
    if strategy == "J2R":
        assert abs(got[("FU", "EP - SHAM")]) < abs(mar[("FU", "EP - SHAM")])


def test_a_delta_shifts_the_estimate_by_the_share_of_imputed_values(monotone) -> None:
    data, _, results = monotone
    res = results["MAR"]
    shifted = res.at_delta(1.5).contrasts.set_index(["visit", "contrast"])
    direct = _cmi(data, "MAR", delta=1.5).contrasts.set_index(["visit", "contrast"])
    pd.testing.assert_frame_equal(shifted, direct, rtol=1e-9)
    # the ANCOVA moves by delta times the arm coefficient of the imputed-after-event indicator
    subjects = _subjects(data)
    flag = ((subjects.TRTP != "SHAM") & (subjects.n < 4)).to_numpy(float)
    coef = _arm_coefficients(subjects, flag)
    base = res.contrasts.set_index(["visit", "contrast"])["estimate"]
    assert shifted.loc[("FU", "EP - SHAM"), "estimate"] == pytest.approx(
        base[("FU", "EP - SHAM")] + 1.5 * coef[1], rel=1e-9
    )


def test_tipping_point_is_where_the_p_value_reaches_alpha(monotone) -> None:
    _, _, results = monotone
    res = results["MAR"]
    tp = tipping_point(res, contrast="EP - SHAM", visit="S12")
    assert np.isfinite(tp.tipping_delta) and tp.tipping_delta > 0  # EP lowers the outcome: + is unfavourable
    at = res.at_delta({"EP": tp.tipping_delta}).contrasts.set_index(["visit", "contrast"]).loc[("S12", "EP - SHAM")]
    assert at.p_value == pytest.approx(0.05, abs=1e-6)
    grid = tp.grid
    assert grid["significant"].iloc[0] and not grid["significant"].iloc[-1]
    assert grid["estimate"].is_monotonic_increasing
    # a grid that never crosses warns, naming the parameter
    with pytest.warns(AnalysisWarning, match="deltas"):
        short = tipping_point(res, contrast="EP - SHAM", visit="S12", deltas=[0.0, 0.01])
    assert np.isnan(short.tipping_delta)
    with pytest.raises(DataError, match="visit"):
        tipping_point(res, visit="W99")
    with pytest.raises(DataError, match="contrast"):
        tipping_point(res, contrast="EP - MC")


def test_observed_records_after_a_reference_based_event_stay_out_of_the_model_not_the_analysis() -> None:
    data = _monotone_trial(seed=9)
    # EP00 stopped treatment at S8 but came back for its later visits (a retrieved dropout)
    full = data[data.USUBJID != "EP00"]
    retrieved = data[data.USUBJID == "EP00"].copy()
    extra = pd.DataFrame(
        [
            {**retrieved.iloc[0].to_dict(), "AVISIT": v, "CHG": c}
            for v, c in (("S8", -9.0), ("S12", -9.5), ("FU", -10.0))
        ]
    )
    data2 = pd.concat([full, retrieved.iloc[[0]], extra], ignore_index=True)
    events = pd.DataFrame({"USUBJID": ["EP00"], "AVISIT": ["S8"], "strategy": ["J2R"]})
    res = _cmi(data2, "J2R", events=events)
    assert res.events.set_index("USUBJID").loc["EP00", "n_observed_after_event"] == 3
    # the imputation model is the one fitted without those three records
    without = _cmi(pd.concat([full, retrieved.iloc[[0]]], ignore_index=True), "J2R", events=events)
    assert res.details["n_imputed_values"] == without.details["n_imputed_values"] - 3
    moved = res.contrasts.set_index(["visit", "contrast"]).loc[("FU", "EP - SHAM"), "estimate"]
    kept = without.contrasts.set_index(["visit", "contrast"]).loc[("FU", "EP - SHAM"), "estimate"]
    assert moved < kept  # the observed -10 enters the analysis instead of a value near the reference


@pytest.mark.filterwarnings("ignore::toolkit.stats.errors.AnalysisWarning")
def test_parallel_and_serial_runs_agree(antidepressant: pd.DataFrame) -> None:
    one = _ad(antidepressant, method="approximate-bayesian", n_imputations=8, n_jobs=1, seed=7)
    two = _ad(antidepressant, method="approximate-bayesian", n_imputations=8, n_jobs=2, seed=7)
    pd.testing.assert_frame_equal(one.contrasts, two.contrasts)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"reference": "SHAM"}, "reference arm 'SHAM' does not exist"),
        ({"reference": {"DRUG": "PBO"}}, "reference arm 'PBO'"),
        ({"method": "bayes"}, "method must be one of"),
        ({"strategy": "LOCF"}, "strategy must be one of"),
        ({"n_imputations": 1}, "n_imputations must be an integer of at least 2"),
        ({"method": "conditional-mean", "resampling": "wild"}, "resampling must be one of"),
        ({"control": "ACTIVE"}, "control 'ACTIVE'"),
        ({"events": pd.DataFrame({"PATIENT": [1503], "VISIT": ["9"], "strategy": ["J2R"]})}, "visit '9'"),
        ({"events": pd.DataFrame({"PATIENT": [1], "VISIT": ["5"], "strategy": ["J2R"]})}, "subject 1 is not"),
        (
            {"events": pd.DataFrame({"PATIENT": [1503], "VISIT": ["5"], "strategy": ["LMCF"]})},
            "strategy 'LMCF'",
        ),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(
    antidepressant: pd.DataFrame, options: dict, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        _ad(antidepressant, **options)


def test_too_few_imputations_warn(antidepressant: pd.DataFrame) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _ad(antidepressant, method="approximate-bayesian", n_imputations=5)
    assert any(
        issubclass(w.category, AnalysisWarning) and "n_imputations = 5" in str(w.message) for w in caught
    )
    assert "n_imputations = 5" in res.details["warnings"][0]
