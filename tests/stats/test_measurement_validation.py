"""Measurement agreement with known truth: slope, bias and repeatability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from toolkit.errors import DataError
from toolkit.stats.measurement_validation import measurement_agreement


def test_slope_and_bias_match_ordinary_least_squares_and_known_error() -> None:
    rng = np.random.default_rng(3)
    truth = rng.uniform(-10, 2, 400)
    error = rng.normal(0.5, 1.2, 400)
    frame = pd.DataFrame({"true": truth, "measured": 0.8 * truth + error, "ep": "A"})
    out = measurement_agreement(frame, truth="true", measured="measured", by="ep", level=50.0).iloc[0]
    ols = sm.OLS(frame["measured"], sm.add_constant(frame["true"])).fit()
    assert out.slope == pytest.approx(ols.params["true"], rel=1e-10)
    lo, hi = ols.conf_int().loc["true"]
    assert (out.slope_ci_low, out.slope_ci_high) == pytest.approx((lo, hi), rel=1e-8)
    diff = frame["measured"] - frame["true"]
    assert out.bias == pytest.approx(diff.mean()) and out.error_sd == pytest.approx(diff.std(ddof=1))
    assert out.wsd == pytest.approx(diff.std(ddof=1) / np.sqrt(2)) and out.rc == pytest.approx(2.77 * out.wsd)
    assert out.wcv == pytest.approx(out.wsd / 50.0)


def test_a_perfect_measurement_has_slope_one_and_no_bias() -> None:
    frame = pd.DataFrame({"t": np.linspace(-3, 3, 20), "m": np.linspace(-3, 3, 20)})
    out = measurement_agreement(frame, truth="t", measured="m").iloc[0]
    assert out.slope == pytest.approx(1.0) and out.bias == pytest.approx(0.0) and out.r == pytest.approx(1.0)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(DataError, match=r"columns \['m'\] not in the data"):
        measurement_agreement(pd.DataFrame({"t": [1, 2, 3]}), truth="t", measured="m")
    with pytest.raises(DataError, match="2 complete rows"):
        measurement_agreement(pd.DataFrame({"t": [1, 2, np.nan], "m": [1, 2, 3]}), truth="t", measured="m")


def test_the_bias_interval_is_students_t_without_clusters() -> None:
    from scipy import stats

    rng = np.random.default_rng(7)
    truth = rng.uniform(-6, 0, 25)
    frame = pd.DataFrame({"t": truth, "m": truth + rng.normal(0.4, 1.0, 25)})
    out = measurement_agreement(frame, truth="t", measured="m").iloc[0]
    lo, hi = stats.ttest_1samp(frame["m"] - frame["t"], 0.0).confidence_interval(0.95)
    assert (out.bias_ci_low, out.bias_ci_high) == pytest.approx((lo, hi), rel=1e-10)
    scale = np.abs(truth).mean()
    assert (out.relative_bias_ci_low, out.relative_bias_ci_high) == pytest.approx((lo / scale, hi / scale), rel=1e-10)


def test_the_bias_interval_counts_each_subject_once_when_their_photos_share_an_error() -> None:
    rng = np.random.default_rng(11)
    # 30 subjects with 1-4 follow-ups each; every follow-up of a subject shares the error of its baseline photo
    subject = np.repeat(np.arange(30), rng.integers(1, 5, 30))
    truth = rng.uniform(-5, 0, len(subject))
    measured = truth + rng.normal(0.3, 1.0, 30)[subject] + rng.normal(0, 0.5, len(subject))
    frame = pd.DataFrame({"t": truth, "m": measured, "s": subject})
    out = measurement_agreement(frame, truth="t", measured="m", cluster="s").iloc[0]
    # statsmodels' cluster-robust OLS of the error on a constant (CR1, t with clusters − 1 df)
    fit = sm.OLS(measured - truth, np.ones(len(truth))).fit(cov_type="cluster", cov_kwds={"groups": subject},
                                                            use_t=True)
    assert (out.bias_ci_low, out.bias_ci_high) == pytest.approx(tuple(fit.conf_int()[0]), rel=1e-10)
    naive = measurement_agreement(frame, truth="t", measured="m").iloc[0]
    assert out.bias == pytest.approx(naive.bias)
    assert out.bias_ci_high - out.bias_ci_low > 1.2 * (naive.bias_ci_high - naive.bias_ci_low)  # shared errors widen it
    # equal cluster sizes: the t-interval of the subjects' mean errors
    from scipy import stats

    two_each = frame[frame.groupby("s")["s"].transform("size") >= 2].groupby("s").head(2)
    assert two_each["s"].nunique() >= 10
    one = measurement_agreement(two_each, truth="t", measured="m", cluster="s").iloc[0]
    means = (two_each["m"] - two_each["t"]).groupby(two_each["s"]).mean()
    lo, hi = stats.ttest_1samp(means, 0.0).confidence_interval(0.95)
    assert (one.bias_ci_low, one.bias_ci_high) == pytest.approx((lo, hi), rel=1e-10)
    with pytest.raises(DataError, match="1 cluster"):
        measurement_agreement(frame.assign(s=1), truth="t", measured="m", cluster="s")
