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
                          level: float | None = None, alpha: float = 0.05) -> pd.DataFrame:
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
        1 − confidence level of the slope's interval.

    Returns
    -------
    DataFrame
        ``n``, ``slope`` with ``slope_ci_low``/``slope_ci_high`` (least squares of measured on true),
        ``intercept``, ``bias`` (mean of measured − true), ``relative_bias`` (bias over the mean |true| value),
        ``error_sd``, ``wsd`` (within-subject SD of one measurement: the error SD of a change over √2),
        ``rc`` (repeatability coefficient, 2.77 · wSD), ``wcv`` (wSD over ``level``), ``r`` (correlation).

    Raises
    ------
    DataError
        A column is missing, or a group has fewer than three complete rows.
    """
    need = [truth, measured] + ([by] if by else [])
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
        wsd = sd / np.sqrt(2.0)
        ref = level if level is not None else scale
        row = {"n": len(x), "slope": slope, "slope_ci_low": lo, "slope_ci_high": hi, "intercept": icpt,
               "bias": float(np.mean(err)), "relative_bias": float(np.mean(err)) / scale if scale > 0 else float("nan"),
               "error_sd": sd, "wsd": wsd, "rc": 2.77 * wsd, "wcv": wsd / ref if ref else float("nan"), "r": r}
        rows.append({by: key, **row} if by else row)
    return pd.DataFrame(rows)
