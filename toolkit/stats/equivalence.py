"""Equivalence (TOST) and non-inferiority decisions on estimated treatment differences.

Both work on a contrasts table (``contrast, estimate, se, df``) as returned by :func:`toolkit.stats.ancova`,
:func:`toolkit.stats.mmrm` or :func:`toolkit.stats.splitface`, so the margin decision uses the same model as
the primary analysis. TOST at level alpha is equivalent to the (1 - 2 alpha) confidence interval lying inside
the margins (Schuirmann 1987, doi:10.1007/BF01068419).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError
from toolkit.stats import _checks

__all__ = ["noninferiority", "tost"]


def _t_quantile(p: float, df: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(df), stats.norm.ppf(p), stats.t.ppf(p, np.minimum(df, 1e12)))


def _validate(contrasts: pd.DataFrame) -> pd.DataFrame:
    contrasts = _checks.require_frame(contrasts, what="contrasts")
    _checks.require_columns(contrasts, ["estimate", "se", "df"], what="contrasts table")
    return contrasts


def tost(contrasts: pd.DataFrame, *, lower: float, upper: float, alpha: float = 0.05) -> pd.DataFrame:
    """Two one-sided tests of equivalence within ``(lower, upper)``.

    Parameters
    ----------
    contrasts : DataFrame
        Columns ``estimate, se, df`` (and usually ``contrast``, ``visit``), one row per difference.
    lower, upper : float
        Equivalence margins on the scale of the estimate (``lower < upper``; often ``-upper``).
    alpha : float
        Level of each one-sided test; the reported interval is the (1 - 2 alpha) CI (90 % for 0.05).

    Returns
    -------
    DataFrame
        The identifying columns plus ``estimate, ci_low, ci_high, p_lower, p_upper, p_value, equivalent``.
        ``p_value`` is the larger one-sided p-value; ``equivalent`` is ``p_value < alpha``.
    """
    contrasts = _validate(contrasts)
    if not lower < upper:
        raise DataError(f"equivalence margins must satisfy lower < upper, got ({lower}, {upper})")
    est = contrasts["estimate"].to_numpy(float)
    se = contrasts["se"].to_numpy(float)
    df = contrasts["df"].to_numpy(float)
    q = _t_quantile(1 - alpha, df)
    t_lower = (est - lower) / se
    t_upper = (est - upper) / se
    dist_sf = lambda t: np.where(np.isinf(df), stats.norm.sf(t), stats.t.sf(t, np.minimum(df, 1e12)))  # noqa: E731
    p_lower = dist_sf(t_lower)  # H0: diff <= lower
    p_upper = dist_sf(-t_upper)  # H0: diff >= upper
    keep = [c for c in ("visit", "contrast") if c in contrasts.columns]
    out = contrasts[keep].copy()
    out["estimate"] = est
    out["ci_low"] = est - q * se
    out["ci_high"] = est + q * se
    out["ci_level"] = 1 - 2 * alpha
    out["margin_low"] = lower
    out["margin_high"] = upper
    out["p_lower"] = p_lower
    out["p_upper"] = p_upper
    out["p_value"] = np.maximum(p_lower, p_upper)
    out["equivalent"] = out["p_value"] < alpha
    return out.reset_index(drop=True)


def noninferiority(
    contrasts: pd.DataFrame, *, margin: float, higher_is_better: bool = True, alpha: float = 0.025
) -> pd.DataFrame:
    """One-sided non-inferiority test of each difference (treatment - reference) against ``margin``.

    Parameters
    ----------
    contrasts : DataFrame
        Columns ``estimate, se, df``.
    margin : float
        Positive non-inferiority margin on the scale of the estimate.
    higher_is_better : bool
        If true, H0: difference <= -margin; otherwise H0: difference >= +margin (e.g. wrinkle scores,
        where lower is better).
    alpha : float
        One-sided level (0.025 matches a two-sided 95 % CI).

    Returns
    -------
    DataFrame
        ``estimate, ci_low, ci_high`` (two-sided 1 - 2 alpha), ``margin, p_value, noninferior``.
    """
    contrasts = _validate(contrasts)
    if not margin > 0:
        raise DataError(f"the non-inferiority margin must be positive, got {margin}")
    est = contrasts["estimate"].to_numpy(float)
    se = contrasts["se"].to_numpy(float)
    df = contrasts["df"].to_numpy(float)
    q = _t_quantile(1 - alpha, df)
    if higher_is_better:
        t = (est + margin) / se
    else:
        t = (margin - est) / se
    p = np.where(np.isinf(df), stats.norm.sf(t), stats.t.sf(t, np.minimum(df, 1e12)))
    keep = [c for c in ("visit", "contrast") if c in contrasts.columns]
    out = contrasts[keep].copy()
    out["estimate"] = est
    out["ci_low"] = est - q * se
    out["ci_high"] = est + q * se
    out["margin"] = -margin if higher_is_better else margin
    out["p_value"] = p
    out["noninferior"] = p < alpha
    return out.reset_index(drop=True)
