"""Rank tests with their shift estimates: Mann–Whitney (two arms) and Wilcoxon signed-rank (paired).

The Hodges–Lehmann estimate is the median of the pairwise differences (two arms) or of the Walsh averages
(paired); its confidence interval is read off the ordered differences at the critical value of the rank
statistic (Hollander, Wolfe & Chicken, Nonparametric Statistical Methods, 3rd ed., sections 3.2 and 4.3).

Below 50 observations per sample the p-value and the interval come from the exact null distribution, as
R's ``wilcox.test`` does: without ties its distribution, with ties (or zero differences) the exact
conditional distribution of the observed midranks, as ``exactRankTests::wilcox.exact`` (R's
``wilcox.test`` falls back to the normal approximation there). From 50 on, the normal approximation with
the tie-corrected variance and a continuity correction (R's default ``correct = TRUE``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats._rank_exact import (
    mann_whitney_exact,
    pseudo_median_interval_exact,
    shift_interval_exact,
    signed_rank_exact,
)
from toolkit.stats.results import AnalysisResult

__all__ = ["RankTestResult", "hodges_lehmann", "mann_whitney", "wilcoxon_signed_rank"]

#: samples smaller than this (per arm, as R's ``wilcox.test``) get exact p-values and intervals
EXACT_LIMIT = 50


@dataclass
class RankTestResult(AnalysisResult):
    """Result of a rank test: ``summary_by_arm`` and ``contrasts`` (estimate = Hodges–Lehmann shift)."""

    summary_by_arm: pd.DataFrame = field(default_factory=pd.DataFrame)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.table_names = ("summary_by_arm", "contrasts")


@functools.lru_cache(maxsize=64)
def _mwu_null_cdf(m: int, n: int) -> np.ndarray:
    """Exact cumulative null distribution of the Mann–Whitney U for sizes m, n (no ties)."""
    # counts of U follow the Gaussian binomial coefficient [m+n choose m]_q; build it by the recursion
    # c(m, n) = c(m - 1, n) shifted by n  +  c(m, n - 1)
    table = [np.ones(1)]  # c(0, j) = 1 for every j
    prev = [np.ones(1) for _ in range(n + 1)]
    for _ in range(m):
        cur = [np.ones(1)]  # c(i, 0) = 1
        for j in range(1, n + 1):
            a = np.concatenate([np.zeros(j), prev[j]])  # c(i-1, j) shifted by j
            b = cur[j - 1]
            size = max(len(a), len(b))
            cur.append(np.pad(a, (0, size - len(a))) + np.pad(b, (0, size - len(b))))
        prev = cur
    counts = prev[n] if m else table[0]
    return np.cumsum(counts) / counts.sum()


@functools.lru_cache(maxsize=64)
def _signed_rank_null_cdf(n: int) -> np.ndarray:
    """Exact cumulative null distribution of the Wilcoxon signed-rank statistic T+ (no ties, no zeros)."""
    counts = np.ones(1)
    for k in range(1, n + 1):
        shifted = np.concatenate([np.zeros(k), counts])
        counts = np.pad(counts, (0, k)) + shifted
    return np.cumsum(counts) / counts.sum()


def _interval_from_sorted(diffs: np.ndarray, lower_rank: int) -> tuple[float, float]:
    """CI (diffs[C-1], diffs[M-C]) with 1-based rank C; clipped to the sample when C < 1."""
    total = len(diffs)
    c = max(int(lower_rank), 1)
    return float(diffs[c - 1]), float(diffs[total - c])


def hodges_lehmann(
    x: np.ndarray, y: np.ndarray | None = None, *, alpha: float = 0.05
) -> tuple[float, float, float, str]:
    """Hodges–Lehmann estimate and (1 - alpha) CI.

    With ``y``: the shift of ``x`` relative to ``y`` (median of x_i - y_j). Without: the pseudo-median of
    ``x`` (median of the Walsh averages), for paired differences.

    Returns
    -------
    estimate, ci_low, ci_high, method : float, float, float, str
        ``method`` is ``"exact"`` or ``"normal"``.
    """
    x = np.asarray(x, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    if y is not None:
        y = np.asarray(y, dtype=float)
        m, n = len(x), len(y)
        diffs = np.sort((x[:, None] - y[None, :]).ravel())
        pooled = np.concatenate([x, y])
        tied = len(np.unique(pooled)) < len(pooled)
        estimate = float(np.median(diffs))
        if m < EXACT_LIMIT and n < EXACT_LIMIT:
            if tied:
                low, high = shift_interval_exact(x, y, alpha)
                return estimate, low, high, "exact"
            cdf = _mwu_null_cdf(m, n)
            # C = largest c with P(U <= c - 1) <= alpha / 2, i.e. the exact lower critical rank
            c = int(np.searchsorted(cdf, alpha / 2 + 1e-12, side="right"))
            method = "exact"
        else:
            _, counts = np.unique(pooled, return_counts=True)
            big_n = m + n
            var = m * n / 12.0 * ((big_n + 1) - np.sum(counts**3 - counts) / (big_n * (big_n - 1)))
            c = int(np.floor(m * n / 2.0 - z * np.sqrt(var)))
            method = "normal"
        low, high = _interval_from_sorted(diffs, c)
        return estimate, low, high, method
    n = len(x)
    i, j = np.triu_indices(n)
    walsh = np.sort((x[i] + x[j]) / 2.0)
    estimate = float(np.median(walsh))
    tied = len(np.unique(np.abs(x))) < n or np.any(x == 0)
    if n < EXACT_LIMIT:
        if tied:
            low, high = pseudo_median_interval_exact(x, alpha)
            return estimate, low, high, "exact"
        cdf = _signed_rank_null_cdf(n)
        c = int(np.searchsorted(cdf, alpha / 2 + 1e-12, side="right"))
        method = "exact"
    else:
        var = n * (n + 1) * (2 * n + 1) / 24.0
        c = int(np.floor(n * (n + 1) / 4.0 - z * np.sqrt(var)))
        method = "normal"
    low, high = _interval_from_sorted(walsh, c)
    return estimate, low, high, method


def _two_sample_test(x: np.ndarray, y: np.ndarray) -> tuple[float, float, str]:
    """U of ``x`` against ``y``, its two-sided p-value and the method (exact below 50 per arm)."""
    if len(x) < EXACT_LIMIT and len(y) < EXACT_LIMIT:
        u, p = mann_whitney_exact(x, y)
        return u, p, "exact"
    test = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    return float(test.statistic), float(test.pvalue), "normal"


def _signed_rank_test(d: np.ndarray) -> tuple[float, float, str]:
    """T+ of the non-zero differences, its two-sided p-value and the method (exact below 50 pairs)."""
    if np.count_nonzero(d) < EXACT_LIMIT:
        t_plus, p, _ = signed_rank_exact(d)
        return t_plus, p, "exact"
    test = stats.wilcoxon(d, alternative="two-sided", zero_method="wilcox", correction=True, method="approx")
    nonzero = d[d != 0]
    t_plus = float(stats.rankdata(np.abs(nonzero))[nonzero > 0].sum())  # R's V, whichever side is smaller
    return t_plus, float(test.pvalue), "normal"


def mann_whitney(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    reference: object | None = None,
    alpha: float = 0.05,
) -> RankTestResult:
    """Wilcoxon–Mann–Whitney test of each arm against the reference, with the Hodges–Lehmann shift.

    Parameters
    ----------
    data : DataFrame
        One record per subject.
    outcome, treatment : str
        Numeric outcome column and arm column.
    reference : optional
        Reference arm (default: first in sorted order).
    alpha : float
        1 - confidence level of the shift interval.

    Returns
    -------
    RankTestResult
        ``contrasts`` has ``contrast, estimate (HL shift arm - reference), ci_low, ci_high, statistic (U),
        p_value, method``.
    """
    data = _checks.require_frame(data)
    _checks.require_columns(data, [outcome, treatment])
    y = _checks.require_numeric(data, outcome, role="outcome")
    frame = data.loc[~np.isnan(y)].assign(**{outcome: y[~np.isnan(y)]})
    arms = _checks.categorical_levels(frame[treatment], reference, column=treatment)
    if len(arms) < 2:
        raise DataError(f"treatment column {treatment!r} has a single arm; the test needs two")
    samples = {a: frame.loc[frame[treatment] == a, outcome].to_numpy(float) for a in arms}
    for a, s in samples.items():
        if len(s) < 2:
            raise DataError(
                f"arm {a!r} has {len(s)} non-missing {outcome!r} value(s); the test needs at least 2"
            )
    rows = []
    for a in arms[1:]:
        x, ref = samples[a], samples[arms[0]]
        u, p_value, p_method = _two_sample_test(x, ref)
        est, low, high, method = hodges_lehmann(x, ref, alpha=alpha)
        rows.append(
            {
                "contrast": f"{a} - {arms[0]}",
                "estimate": est,
                "ci_low": low,
                "ci_high": high,
                "statistic": u,
                "p_value": p_value,
                "method": method if method == p_method else f"{p_method} p, {method} CI",
            }
        )
    summary = _arm_summary(samples)
    return RankTestResult(
        title=f"Wilcoxon-Mann-Whitney test of {outcome}",
        details={"estimate": "Hodges-Lehmann shift (arm - reference)", "reference": arms[0], "alpha": alpha},
        summary_by_arm=summary,
        contrasts=pd.DataFrame(rows),
    )


def wilcoxon_signed_rank(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str | None = None,
    subject: str | None = None,
    reference: object | None = None,
    alpha: float = 0.05,
) -> RankTestResult:
    """Wilcoxon signed-rank test with the Hodges–Lehmann pseudo-median and its CI.

    Without ``treatment``: a one-sample test of ``outcome`` (e.g. change from baseline) against 0. With
    ``treatment`` and ``subject``: a paired test of the other treatment minus ``reference`` within subject
    (split-face sides).
    """
    data = _checks.require_frame(data)
    _checks.require_columns(data, [outcome, treatment, subject])
    y = _checks.require_numeric(data, outcome, role="outcome")
    frame = data.loc[~np.isnan(y)].assign(**{outcome: y[~np.isnan(y)]})
    if treatment is None:
        diffs = frame[outcome].to_numpy(float)
        label = f"{outcome} vs 0"
        ref = None
    else:
        if subject is None:
            raise DataError("a paired signed-rank test needs the `subject` column as well as `treatment`")
        arms = _checks.categorical_levels(frame[treatment], reference, column=treatment)
        if len(arms) != 2:
            raise DataError(
                f"a paired signed-rank test needs exactly two treatments in {treatment!r}, found {len(arms)}"
            )
        wide = frame.pivot_table(index=subject, columns=treatment, values=outcome, aggfunc="first").dropna()
        diffs = (wide[arms[1]] - wide[arms[0]]).to_numpy(float)
        label = f"{arms[1]} - {arms[0]}"
        ref = arms[0]
    if len(diffs) < 2:
        raise DataError(
            f"the signed-rank test needs at least 2 (paired) values of {outcome!r}, found {len(diffs)}"
        )
    t_plus, p_value, p_method = _signed_rank_test(diffs)
    est, low, high, method = hodges_lehmann(diffs, alpha=alpha)
    contrasts = pd.DataFrame(
        [
            {
                "contrast": label,
                "n": len(diffs),
                "estimate": est,
                "ci_low": low,
                "ci_high": high,
                "statistic": t_plus,
                "p_value": p_value,
                "method": method if method == p_method else f"{p_method} p, {method} CI",
            }
        ]
    )
    return RankTestResult(
        title=f"Wilcoxon signed-rank test of {outcome}",
        details={"estimate": "Hodges-Lehmann pseudo-median", "reference": ref, "alpha": alpha},
        summary_by_arm=_arm_summary({label: diffs}),
        contrasts=contrasts,
    )


def _arm_summary(samples: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "treatment": a,
                "n": len(s),
                "median": float(np.median(s)),
                "q1": float(np.quantile(s, 0.25)),
                "q3": float(np.quantile(s, 0.75)),
            }
            for a, s in samples.items()
        ]
    )
