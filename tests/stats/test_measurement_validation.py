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
