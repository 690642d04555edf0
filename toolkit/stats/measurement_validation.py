"""Agreement of a measurement with known truth: slope, bias and repeatability (QIBA terms).

Used to validate photo endpoints on known-truth runs (simulated visits whose true change is known): each
row is one measured change and its true value. The measurement is unbiased when the slope of measured on
true is 1 and the mean error is 0; its repeatability is the spread of the error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError

__all__ = ["measurement_agreement"]


def measurement_agreement(frame: pd.DataFrame, *, truth: str, measured: str, by: str | None = None,
                          level: float | None = None, alpha: float = 0.05, cluster: str | None = None) -> pd.DataFrame:
    """Slope, bias and repeatability of ``measured`` against ``truth``, per group.

    Parameters
    ----------
    frame : DataFrame
        One row per measurement.
    truth, measured : str
        Columns of the true and the measured value (the same quantity, e.g. a change from baseline).
    by : str, optional
        Column whose groups (e.g. ``PARAMCD``) are summarised separately.
    level : float, optional
        Typical size of the quantity (e.g. the mean baseline value), for the within-subject CV; without it
        the mean of |truth| is used.
    alpha : float
        1 − confidence level of the intervals.
    cluster : str, optional
        Column naming the unit whose measurements share an error (e.g. ``USUBJID``: a subject's follow-ups are
        all compared with one baseline photo). The bias's interval is then cluster-robust (CR1, t with
        clusters − 1 degrees of freedom; for clusters of equal size it is the t-interval of the cluster means);
        without it the measurements are taken as independent.

    Returns
    -------
    DataFrame
        ``n``, ``slope`` with ``slope_ci_low``/``slope_ci_high`` (least squares of measured on true),
        ``intercept``, ``bias`` (mean of measured − true) with ``bias_ci_low``/``bias_ci_high``, ``relative_bias``
        (bias over the mean |true| value) with ``relative_bias_ci_low``/``relative_bias_ci_high``,
        ``error_sd``, ``wsd`` (within-subject SD of one measurement: the error SD of a change over √2),
        ``rc`` (repeatability coefficient, 2.77 · wSD), ``wcv`` (wSD over ``level``), ``r`` (correlation).

    Raises
    ------
    DataError
        A column is missing, or a group has fewer than three complete rows (or two clusters).
    """
    need = [truth, measured] + ([by] if by else []) + ([cluster] if cluster else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(f"measurement agreement: columns {missing} not in the data; it has {list(frame.columns)}")
    data = frame[need].copy()
    data[truth] = pd.to_numeric(data[truth], errors="coerce")
    data[measured] = pd.to_numeric(data[measured], errors="coerce")
    data = data.dropna(subset=[truth, measured])
    groups = data.groupby(by, sort=False) if by else [(None, data)]
    rows = []
    for key, g in groups:
        x, y = g[truth].to_numpy(float), g[measured].to_numpy(float)
        if len(x) < 3:
            raise DataError(f"measurement agreement{f' of {key}' if by else ''}: {len(x)} complete rows; "
                                "at least 3 are needed")
        err = y - x
        spread = float(np.ptp(x))
        if spread > 0:
            fit = stats.linregress(x, y)
            t = stats.t.ppf(1 - alpha / 2, len(x) - 2)
            slope, lo, hi, icpt, r = fit.slope, fit.slope - t * fit.stderr, fit.slope + t * fit.stderr, fit.intercept, fit.rvalue
        else:
            slope = lo = hi = icpt = r = float("nan")
        scale = float(np.mean(np.abs(x)))
        sd = float(np.std(err, ddof=1))
        bias = float(np.mean(err))
        b_lo, b_hi = _mean_interval(err, g[cluster].to_numpy() if cluster else None, alpha,
                                    f"measurement agreement{f' of {key}' if by else ''}")
        rel_lo, rel, rel_hi = (v / scale for v in (b_lo, bias, b_hi)) if scale > 0 else (float("nan"),) * 3
        wsd = sd / np.sqrt(2.0)
        ref = level if level is not None else scale
        row = {"n": len(x), "slope": slope, "slope_ci_low": lo, "slope_ci_high": hi, "intercept": icpt,
               "bias": bias, "bias_ci_low": b_lo, "bias_ci_high": b_hi, "relative_bias": rel,
               "relative_bias_ci_low": rel_lo, "relative_bias_ci_high": rel_hi,
               "error_sd": sd, "wsd": wsd, "rc": 2.77 * wsd, "wcv": wsd / ref if ref else float("nan"), "r": r}
        rows.append({by: key, **row} if by else row)
    return pd.DataFrame(rows)


def _mean_interval(err: np.ndarray, groups: np.ndarray | None, alpha: float, what: str) -> tuple[float, float]:
    """The (1 − alpha) interval of the mean error: Student's t, or cluster-robust when ``groups`` is given."""
    n = len(err)
    mean = float(np.mean(err))
    if groups is None:
        half = stats.t.ppf(1 - alpha / 2, n - 1) * float(np.std(err, ddof=1)) / np.sqrt(n)
        return mean - half, mean + half
    codes, uniq = pd.factorize(pd.Series(groups), sort=False)
    n_groups = len(uniq)
    if n_groups < 2:
        raise DataError(f"{what}: {n_groups} cluster(s) in the data; at least 2 are needed for the bias's interval")
    # sandwich variance of a mean: the squared cluster sums of the residuals over n², with the CR1 small-sample
    # factor G/(G − 1)·(n − 1)/(n − k), which for the mean alone (k = 1) is G/(G − 1)
    sums = np.bincount(codes, weights=err - mean, minlength=n_groups)
    var = float(np.sum(sums ** 2)) / n ** 2 * n_groups / (n_groups - 1)
    half = stats.t.ppf(1 - alpha / 2, n_groups - 1) * np.sqrt(var)
    return mean - half, mean + half
