"""Conventions that must follow R (and SAS): the Kaplan–Meier median on a flat 0.5 step and the exact
rank-test p-values below 50 per arm, checked against R's output on data R generated (``r/*.R``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.stats.rref import r_reference, run_live, saved
from toolkit.stats import hodges_lehmann, kaplan_meier, mann_whitney, wilcoxon_signed_rank
from toolkit.stats.survival import _median_with_ci, logrank, time_to_improvement

R_SCRIPTS = ("rank_tests", "kaplan_meier", "logrank")


@pytest.mark.parametrize("name", R_SCRIPTS)
def test_r_fixtures_are_current(name: str) -> None:
    live = run_live(name)
    if live is None:
        pytest.skip("Rscript (or a package the script loads) is not installed; the saved R output is used")
    stored = saved(name)
    assert set(live) == set(stored)
    for key, frame in live.items():
        pd.testing.assert_frame_equal(frame, stored[key], check_exact=False, rtol=1e-9, atol=1e-12)


def test_km_median_is_the_midpoint_of_a_flat_half_step() -> None:
    # the example of the convention: all ten subjects have events; S = 0.5 on [5, 7)
    km = kaplan_meier(np.array([1, 2, 3, 4, 5, 7, 8, 9, 10, 12.0]), np.ones(10, bool))
    assert _median_with_ci(km)[0] == 6.0


@pytest.fixture(scope="module")
def km_reference():
    return r_reference("kaplan_meier")


def test_km_median_and_limits_match_r_survfit(km_reference) -> None:
    frames, source = km_reference
    data, expected = frames["data"], frames["results"].set_index("case")
    for case, grp in data.groupby("case", sort=False):
        table = kaplan_meier(grp["time"].to_numpy(float), grp["event"].to_numpy(bool))
        got = _median_with_ci(table)
        want = expected.loc[case, ["median", "lcl", "ucl"]].to_numpy(float).copy()
        zero = table.loc[table["survival"] == 0, "time"]
        if np.isnan(want[2]) and len(zero):
            # the one documented difference: R has no interval where S = 0, the toolkit [0, 0]
            want[2] = zero.iloc[0] if table["ci_high"].iloc[:-1].gt(0.5).all() else want[2]
        np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{case} ({source})")


@pytest.fixture(scope="module")
def rank_reference():
    return r_reference("rank_tests")


def _samples(data: pd.DataFrame, case: str) -> tuple[np.ndarray, np.ndarray | None]:
    rows = data[data["case"] == case]
    x = rows.loc[rows["sample"] == "x", "value"].to_numpy(float)
    y = rows.loc[rows["sample"] == "y", "value"].to_numpy(float)
    return x, (y if len(y) else None)


def test_rank_test_p_values_match_r(rank_reference) -> None:
    frames, source = rank_reference
    data, expected = frames["data"], frames["results"]
    for row in expected.itertuples(index=False):
        x, y = _samples(data, row.case)
        if y is not None:
            frame = pd.DataFrame({"TRTP": ["B"] * len(x) + ["A"] * len(y), "CHG": np.r_[x, y]})
            got = mann_whitney(frame, outcome="CHG", treatment="TRTP", reference="A").contrasts.iloc[0]
        else:
            got = wilcoxon_signed_rank(pd.DataFrame({"CHG": x}), outcome="CHG").contrasts.iloc[0]
        assert got.statistic == pytest.approx(row.statistic, rel=1e-12), f"{row.case} ({source})"
        assert got.p_value == pytest.approx(row.p_value, rel=1e-7), f"{row.case} ({source}: {row.source})"
        assert got.method.startswith("exact") == bool(row.exact), row.case


def test_exact_intervals_match_r(rank_reference) -> None:
    frames, source = rank_reference
    data, expected = frames["data"], frames["results"]
    for row in expected[expected["exact"]].itertuples(index=False):
        x, y = _samples(data, row.case)
        _, low, high, method = hodges_lehmann(x, y)
        assert method == "exact"
        assert (low, high) == pytest.approx((row.ci_low, row.ci_high), rel=1e-9, abs=1e-12), (
            f"{row.case} ({source}: {row.source})"
        )


def test_p_value_and_interval_agree_below_50_per_arm(rank_reference) -> None:
    # the reason for the exact p-value: without ties the exact interval excludes 0 exactly when p < 0.05
    # (with ties an end of the interval can sit on a difference of 0, as R's does)
    frames, _ = rank_reference
    data = frames["data"]
    for case in frames["results"].loc[frames["results"]["exact"], "case"]:
        x, y = _samples(data, case)
        if y is None or "tied" in case:
            continue
        frame = pd.DataFrame({"TRTP": ["B"] * len(x) + ["A"] * len(y), "CHG": np.r_[x, y]})
        row = mann_whitney(frame, outcome="CHG", treatment="TRTP", reference="A").contrasts.iloc[0]
        assert (row.p_value < 0.05) == (row.ci_low > 0 or row.ci_high < 0), case


def test_logrank_plain_and_stratified_by_pair_match_r_survdiff() -> None:
    frames, source = r_reference("logrank")
    data, want = frames["data"], frames["results"].set_index("test")
    args = (data["time"].to_numpy(float), data["event"].to_numpy(bool), data["treatment"].to_numpy())
    plain, paired = logrank(*args), logrank(*args, strata=data["pair"].to_numpy())
    assert plain["statistic"] == pytest.approx(want.loc["plain", "chisq"], rel=1e-9), source
    assert paired["statistic"] == pytest.approx(want.loc["stratified", "chisq"], rel=1e-9), source
    assert paired["p_value"] == pytest.approx(want.loc["stratified", "p_value"], rel=1e-9)
    assert paired["method"] == "stratified log-rank"
    # the same through time_to_improvement: split-face sides as units, the subject as the pair
    records = pd.concat([data.assign(session=data["time"], responder=data["event"].astype(bool)),
                         # a record at every assessed session before the first improvement (not improved)
                         *[data[data["time"] > s].assign(session=float(s), responder=False) for s in (4, 8)]])
    records["unit"] = records["pair"] + "/" + records["treatment"]
    res = time_to_improvement(records, subject="unit", treatment="treatment", session="session",
                              responder="responder", pair="pair", claims={})
    assert res.logrank["statistic"].iloc[0] == pytest.approx(want.loc["stratified", "chisq"], rel=1e-9)
