"""Rater agreement against published values: Shrout & Fleiss's ICC example, SAS's kappa example, and the
Fleiss–Cohen identity of quadratic weighted kappa."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import DataError
from toolkit.stats.agreement import icc, rater_agreement, weighted_kappa

# Shrout & Fleiss (1979), Table 2: six targets rated by four judges
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def _long(matrix):
    return pd.DataFrame([{"t": i, "j": j, "x": v} for i, row in enumerate(matrix) for j, v in enumerate(row)])


def test_icc_reproduces_shrout_and_fleiss():
    # published: ICC(2,1) = .29 and ICC(3,1) = .71 (Table 4); F = BMS/EMS = 11.24/1.02 on (5, 15) df
    agreement = icc(_long(SHROUT_FLEISS), target="t", rater="j", score="x")
    consistency = icc(_long(SHROUT_FLEISS), target="t", rater="j", score="x", kind="consistency")
    assert round(agreement.icc, 2) == 0.29 and round(consistency.icc, 2) == 0.71
    assert round(agreement.f, 1) == 11.0 and (agreement.df1, agreement.df2) == (5, 15)
    # McGraw & Wong's intervals: below and above the estimate, inside [-1, 1]
    assert agreement.ci_low < agreement.icc < agreement.ci_high <= 1
    assert consistency.ci_low < consistency.icc < consistency.ci_high <= 1
    assert round(agreement.ci_low, 2) == 0.02 and round(agreement.ci_high, 2) == 0.76


def test_kappa_reproduces_sas_and_the_fleiss_cohen_identity():
    # SAS/STAT PROC FREQ agreement example (two dermatologists, 88 patients, four grades):
    # simple kappa 0.3449, ASE 0.0724, 95 % CI 0.2030 to 0.4868
    table = [[10, 4, 1, 0], [5, 10, 12, 2], [2, 4, 12, 5], [0, 2, 6, 13]]
    a = [i for i in range(4) for j in range(4) for _ in range(table[i][j])]
    b = [j for i in range(4) for j in range(4) for _ in range(table[i][j])]
    k = weighted_kappa(a, b, weights="none")
    assert (round(k.kappa, 4), round(k.se, 4), round(k.ci_low, 4), round(k.ci_high, 4)) == (
        0.3449, 0.0724, 0.2030, 0.4868)
    # quadratic weights: kappa = 2 s_xy / (s_x² + s_y² + (mean_x - mean_y)²) with 1/n moments (Fleiss & Cohen)
    x, y = np.array(a, float), np.array(b, float)
    identity = 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert weighted_kappa(a, b).kappa == pytest.approx(identity, abs=1e-12)
    # perfect agreement, and full disagreement on a two-grade scale
    assert weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).kappa == pytest.approx(1.0)
    assert weighted_kappa([1, 2, 1, 2], [2, 1, 2, 1]).kappa == pytest.approx(-1.0)
    with pytest.raises(DataError, match="grades \\[7.0\\] are not among"):
        weighted_kappa([1, 7], [1, 2], grades=[1, 2, 3, 4, 5])


def test_rater_agreement_is_tidy_and_names_no_rater():
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 6, 30)
    rows = []
    for rater, noise in (("alice", 0.3), ("bob", 0.6)):
        grades = np.clip(truth + np.round(rng.normal(0, noise, 30)), 1, 5)
        rows += [{"set_id": f"s{i}", "scale": "WSRS", "rater": rater, "repeat": 0, "score": g}
                 for i, g in enumerate(grades)]
        rows += [{"set_id": f"s{i}", "scale": "WSRS", "rater": rater, "repeat": 1, "score": g}
                 for i, g in enumerate(grades) if i < 8]
    out = rater_agreement(pd.DataFrame(rows), grades={"WSRS": [1, 2, 3, 4, 5]})
    assert list(out.columns) == ["scale", "agreement", "raters", "statistic", "n_sets", "estimate", "ci_low",
                                 "ci_high"]
    assert set(out["agreement"]) == {"inter-rater", "intra-rater"}
    assert not out["raters"].str.contains("alice|bob").any()
    inter = out[(out["agreement"] == "inter-rater")].set_index("statistic")
    assert inter["n_sets"].tolist() == [30, 30] and (inter["estimate"] > 0.7).all()
    intra = out[out["agreement"] == "intra-rater"]
    assert len(intra) == 4 and np.allclose(intra["estimate"], 1.0)  # the repeats equal the first grades


def test_icc_of_targets_that_do_not_differ_has_no_interval_and_no_warning():
    import warnings

    # every target has the same mean and so has every rater (the raters disagree in opposite directions): the
    # between-target and between-rater mean squares are 0, so no Satterthwaite df and no interval exist
    y = np.array([[1.0, 5.0], [5.0, 1.0], [1.0, 5.0], [5.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = icc(_long(y), target="t", rater="j", score="x")
    assert np.isnan(res.ci_low) and np.isnan(res.ci_high) and res.icc < 0
    # one target apart: the interval exists again
    shifted = y.copy()
    shifted[0] += 3.0
    ok = icc(_long(shifted), target="t", rater="j", score="x")
    assert np.isfinite(ok.ci_low) and np.isfinite(ok.ci_high) and ok.ci_low <= ok.icc <= ok.ci_high
