"""Power by simulation under the estimand's assumptions: the value the data are generated under has a
closed form, the MMRM recovers it when its records allow, and the trials give the same answer on any
number of cores."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import DataError
from toolkit.stats import mmrm_power_simulation

DELTA = [0.5, 1.0, 1.5, 2.0]
COV = 4.0 * 0.6 ** np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
DROP = [0.0, 0.1, 0.2, 0.3]


def _sim(**options):
    settings = {
        "delta_by_visit": DELTA,
        "covariance": COV,
        "dropout_by_visit": DROP,
        "n_simulations": 120,
        "n_jobs": 1,
        "progress": False,
        "seed": 11,
        **options,
    }
    return mmrm_power_simulation(30, **settings)


def test_estimand_values_have_their_closed_forms() -> None:
    first = np.diff(np.r_[0.0, DROP])  # P(first visit off treatment = k)
    # jump to reference: discontinued subjects end at the reference mean
    j2r = _sim(after_discontinuation="J2R", strategy="treatment-policy", n_simulations=1)
    assert j2r.estimand_value == pytest.approx((1 - DROP[-1]) * DELTA[-1], rel=1e-12)
    # copy increments: they keep the difference reached at their last visit on treatment
    cir = _sim(after_discontinuation="CIR", strategy="treatment-policy", n_simulations=1)
    kept = sum(first[k] * (DELTA[k - 1] if k else 0.0) for k in range(4))
    assert cir.estimand_value == pytest.approx((1 - DROP[-1]) * DELTA[-1] + kept, rel=1e-12)
    # the hypothetical strategy targets the course on treatment, whatever happens after
    assert _sim(after_discontinuation="J2R", n_simulations=1).estimand_value == DELTA[-1]


def test_the_mmrm_recovers_the_treatment_policy_estimand_from_retrieved_dropouts() -> None:
    res = _sim(after_discontinuation="J2R", strategy="treatment-policy", retrieval=1.0)
    assert res.n_failed_fits == 0
    spread = res.estimates["estimate"].std() / np.sqrt(len(res.estimates))
    assert abs(res.mean_estimate - res.estimand_value) < 4 * spread
    assert 0.88 <= res.coverage <= 0.99
    # the hypothetical analysis of the same trials aims at the on-treatment effect instead
    hyp = _sim(after_discontinuation="J2R", strategy="hypothetical")
    assert abs(hyp.mean_estimate - DELTA[-1]) < 4 * hyp.estimates["estimate"].std() / np.sqrt(
        len(hyp.estimates)
    )
    assert hyp.power > res.power


def test_results_do_not_depend_on_the_number_of_processes() -> None:
    one = _sim(n_simulations=12, n_jobs=1)
    two = _sim(n_simulations=12, n_jobs=2)
    assert one.estimates.equals(two.estimates)
    assert "simulated power" in one.summary() and one.settings["seed"] == 11


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"after_discontinuation": "LOCF"}, "after_discontinuation must be one of"),
        ({"strategy": "composite"}, "strategy must be one of"),
        ({"retrieval": 1.5}, "retrieval"),
        ({"dropout_by_visit": [0.2, 0.1, 0.3, 0.4]}, "non-decreasing"),
        ({"covariance": np.eye(3)}, "4 x 4"),
        ({"n_simulations": 0}, "n_simulations"),
    ],
)
def test_bad_settings_are_refused(options: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        _sim(**options)
