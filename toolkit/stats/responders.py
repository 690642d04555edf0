"""Responder analyses: response rates by arm, risk difference with a score interval, odds ratio, logistic model.

Risk-difference intervals
-------------------------
``"newcombe"``: the hybrid score interval (Newcombe 1998, method 10) built from the Wilson intervals of
each rate. ``"mn"``: the Miettinen–Nurminen (1985) score interval, inverting the score statistic with the
restricted maximum-likelihood rates under each candidate difference and the N / (N - 1) variance factor.

References
----------
Newcombe, R. G. (1998). Interval estimation for the difference between independent proportions: comparison
of eleven methods. Statistics in Medicine 17, 873–890. doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I

Miettinen, O. & Nurminen, M. (1985). Comparative analysis of two rates. Statistics in Medicine 4, 213–226.
doi:10.1002/sim.4780040211
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats.results import AnalysisResult

__all__ = [
    "RD_METHODS",
    "ResponderResult",
    "odds_ratio",
    "responder_analysis",
    "risk_difference",
    "wilson_interval",
]

#: accepted risk-difference interval methods
RD_METHODS = ("newcombe", "mn")


def wilson_interval(x: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a single proportion x / n."""
    if n <= 0:
        raise DataError("a proportion needs n > 0")
    z = stats.norm.ppf(1 - alpha / 2)
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _mn_restricted(p1: float, p0: float, n1: int, n0: int, delta: float) -> tuple[float, float]:
    """Restricted MLE (p1~, p0~) under p1 - p0 = delta (Farrington & Manning 1990 closed form)."""
    theta = n0 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1 + theta * p0 + delta * (theta + 2.0))
    c = delta**2 + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p0
    d = -p1 * delta * (1.0 + delta)
    v = b**3 / (27.0 * a**3) - b * c / (6.0 * a**2) + d / (2.0 * a)
    u_sq = b**2 / (9.0 * a**2) - c / (3.0 * a)
    u = np.sign(v) * np.sqrt(max(u_sq, 0.0)) if v != 0 else np.sqrt(max(u_sq, 0.0))
    if u == 0:
        r1 = -b / (3.0 * a)
    else:
        w = (np.pi + np.arccos(np.clip(v / u**3, -1.0, 1.0))) / 3.0
        r1 = 2.0 * u * np.cos(w) - b / (3.0 * a)
    r1 = float(np.clip(r1, 0.0, 1.0))
    r0 = float(np.clip(r1 - delta, 0.0, 1.0))
    return r1, r0


def _mn_score(delta: float, x1: int, n1: int, x0: int, n0: int) -> float:
    p1, p0 = x1 / n1, x0 / n0
    r1, r0 = _mn_restricted(p1, p0, n1, n0, delta)
    big_n = n1 + n0
    var = (r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0) * big_n / (big_n - 1)
    diff = p1 - p0 - delta
    if var <= 0:
        return np.inf * np.sign(diff) if diff != 0 else 0.0
    return diff / np.sqrt(var)


def risk_difference(
    x1: int, n1: int, x0: int, n0: int, *, method: str = "newcombe", alpha: float = 0.05
) -> dict[str, float]:
    """Difference of response rates x1/n1 - x0/n0 with a (1 - alpha) score interval.

    Parameters
    ----------
    x1, n1 : int
        Responders and subjects in the treated arm.
    x0, n0 : int
        Responders and subjects in the reference arm.
    method : {'newcombe', 'mn'}
        Newcombe hybrid score or Miettinen–Nurminen interval.
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        ``estimate, ci_low, ci_high, p_value`` (p-value of the MN score test of no difference for both).
    """
    for name, (x, n) in {"arm": (x1, n1), "reference": (x0, n0)}.items():
        if n <= 0 or x < 0 or x > n:
            raise DataError(f"invalid counts for the {name}: {x} responders of {n} subjects")
    if method not in RD_METHODS:
        raise DataError(f"risk-difference method must be one of {', '.join(RD_METHODS)}, got {method!r}")
    p1, p0 = x1 / n1, x0 / n0
    estimate = p1 - p0
    z = stats.norm.ppf(1 - alpha / 2)
    if method == "newcombe":
        l1, u1 = wilson_interval(x1, n1, alpha=alpha)
        l0, u0 = wilson_interval(x0, n0, alpha=alpha)
        low = estimate - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
        high = estimate + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    else:
        eps = 1e-10

        def f(delta: float) -> float:
            return _mn_score(delta, x1, n1, x0, n0)

        low = -1.0 if f(-1.0 + eps) <= z else optimize.brentq(lambda d: f(d) - z, -1.0 + eps, estimate)
        high = 1.0 if f(1.0 - eps) >= -z else optimize.brentq(lambda d: f(d) + z, estimate, 1.0 - eps)
    score0 = _mn_score(0.0, x1, n1, x0, n0)
    p_value = float(2 * stats.norm.sf(abs(score0))) if np.isfinite(score0) else 0.0
    return {"estimate": float(estimate), "ci_low": float(low), "ci_high": float(high), "p_value": p_value}


def odds_ratio(x1: int, n1: int, x0: int, n0: int, *, alpha: float = 0.05) -> dict[str, float]:
    """Sample odds ratio with the Woolf (logit) interval and Fisher's exact p-value.

    With a zero cell the Haldane–Anscombe correction (0.5 added to every cell) is used for the estimate
    and interval.
    """
    a, b, c, d = x1, n1 - x1, x0, n0 - x0
    if min(a, b, c, d) < 0:
        raise DataError("odds ratio: counts must satisfy 0 <= responders <= subjects")
    _, p_value = stats.fisher_exact([[a, b], [c, d]])
    if min(a, b, c, d) == 0:
        a, b, c, d = (v + 0.5 for v in (a, b, c, d))
    log_or = np.log(a * d / (b * c))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z = stats.norm.ppf(1 - alpha / 2)
    return {
        "estimate": float(np.exp(log_or)),
        "ci_low": float(np.exp(log_or - z * se)),
        "ci_high": float(np.exp(log_or + z * se)),
        "p_value": float(p_value),
    }


@dataclass
class ResponderResult(AnalysisResult):
    """Result of :func:`responder_analysis`.

    ``rates`` (treatment, n, responders, rate, ci_low, ci_high), ``risk_differences``, ``odds_ratios``
    and ``logistic`` (adjusted odds ratios from the logistic model).
    """

    rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    risk_differences: pd.DataFrame = field(default_factory=pd.DataFrame)
    odds_ratios: pd.DataFrame = field(default_factory=pd.DataFrame)
    logistic: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.table_names = ("rates", "risk_differences", "odds_ratios", "logistic")


def responder_analysis(
    data: pd.DataFrame,
    *,
    response: str,
    treatment: str,
    reference: object | None = None,
    covariates: Sequence[str] = (),
    method: str = "newcombe",
    alpha: float = 0.05,
) -> ResponderResult:
    """Responder rates by arm and their comparison with the reference arm.

    Parameters
    ----------
    data : DataFrame
        One record per subject.
    response : str
        Responder flag: booleans, 0/1, or ``"Y"``/``"N"``.
    treatment : str
        Arm column.
    reference : optional
        Reference arm (default: first in sorted order).
    covariates : sequence of str
        Covariates of the logistic regression (numeric, or categorical by dtype).
    method : {'newcombe', 'mn'}
        Risk-difference interval.
    alpha : float
        1 - confidence level.
    """
    data = _checks.require_frame(data)
    covariates = list(covariates)
    _checks.require_columns(data, [response, treatment, *covariates])
    flag = _as_flag(data[response], column=response)
    frame = data.assign(_resp=flag).dropna(subset=["_resp"])
    arms = _checks.categorical_levels(frame[treatment], reference, column=treatment)
    if len(arms) < 2:
        raise DataError(f"treatment column {treatment!r} has a single arm; a comparison needs two")
    counts = frame.groupby(treatment, observed=True)["_resp"].agg(["size", "sum"])
    rate_rows = []
    for a in arms:
        n, x = int(counts.loc[a, "size"]), int(counts.loc[a, "sum"])
        lo, hi = wilson_interval(x, n, alpha=alpha)
        rate_rows.append(
            {"treatment": a, "n": n, "responders": x, "rate": x / n, "ci_low": lo, "ci_high": hi}
        )
    rates = pd.DataFrame(rate_rows)
    ref = rates.iloc[0]
    rd_rows, or_rows = [], []
    for _, row in rates.iloc[1:].iterrows():
        label = f"{row.treatment} - {ref.treatment}"
        rd = risk_difference(
            int(row.responders), int(row.n), int(ref.responders), int(ref.n), method=method, alpha=alpha
        )
        rd_rows.append({"contrast": label, **rd, "method": method})
        orr = odds_ratio(int(row.responders), int(row.n), int(ref.responders), int(ref.n), alpha=alpha)
        or_rows.append(
            {"contrast": f"{row.treatment} / {ref.treatment}", **orr, "method": "Woolf; Fisher exact p"}
        )
    logistic = _logistic(frame, treatment, arms, covariates, alpha)
    return ResponderResult(
        title=f"Responder analysis of {response}",
        details={"risk_difference_ci": method, "reference": arms[0], "alpha": alpha, "n": int(len(frame))},
        rates=rates,
        risk_differences=pd.DataFrame(rd_rows),
        odds_ratios=pd.DataFrame(or_rows),
        logistic=logistic,
    )


def _as_flag(series: pd.Series, *, column: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    if pd.api.types.is_numeric_dtype(series):
        bad = series.dropna()[~series.dropna().isin([0, 1])]
        if len(bad):
            raise DataError(
                f"responder column {column!r} must hold 0/1, True/False or Y/N; found {bad.iloc[0]!r}"
            )
        return series.astype(float)
    mapping = {"Y": 1.0, "N": 0.0, "YES": 1.0, "NO": 0.0, "TRUE": 1.0, "FALSE": 0.0, "1": 1.0, "0": 0.0}
    upper = series.astype("string").str.strip().str.upper()
    out = upper.map(mapping)
    bad = series[out.isna() & series.notna()]
    if len(bad):
        raise DataError(
            f"responder column {column!r} must hold 0/1, True/False or Y/N; found {bad.iloc[0]!r}"
        )
    return out.astype(float)


def _logistic(
    frame: pd.DataFrame, treatment: str, arms: list, covariates: list[str], alpha: float
) -> pd.DataFrame:
    import statsmodels.api as sm

    from toolkit.stats._design import Design

    factors = {treatment: arms}
    numerics = []
    for c in covariates:
        if _checks.is_categorical(frame[c]):
            factors[c] = _checks.categorical_levels(frame[c], column=c)
        else:
            numerics.append(c)
    _checks.require_complete(frame, covariates, id_column=None, role="covariate")
    design = Design(factors, numerics, [(treatment,), *((c,) for c in covariates)])
    x = design.matrix(frame)
    y = frame["_resp"].to_numpy(float)
    try:
        fit = sm.Logit(y, x).fit(disp=0, maxiter=200)
        if not fit.mle_retvals.get("converged", True):
            raise np.linalg.LinAlgError("no convergence")
    except (np.linalg.LinAlgError, Exception) as exc:  # perfect separation and friends
        return pd.DataFrame(
            [
                {
                    "term": "(not estimable)",
                    "estimate": np.nan,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "p_value": np.nan,
                    "note": f"logistic regression failed: {type(exc).__name__}",
                }
            ]
        )
    z = stats.norm.ppf(1 - alpha / 2)
    sl = design.term_slices[treatment]
    rows = []
    for j in range(sl.start, sl.stop):
        b, se = fit.params[j], fit.bse[j]
        rows.append(
            {
                "term": design.column_names[j],
                "estimate": float(np.exp(b)),
                "ci_low": float(np.exp(b - z * se)),
                "ci_high": float(np.exp(b + z * se)),
                "p_value": float(fit.pvalues[j]),
                "note": "adjusted odds ratio (Wald)",
            }
        )
    return pd.DataFrame(rows)
