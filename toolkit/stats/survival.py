"""Time to first visible improvement: Kaplan–Meier estimates by arm (Greenwood variance) and the log-rank test.

The seed articles claim that microcurrent shows results after 3–4 sessions and electroporation after 4–6.
:func:`time_to_improvement` turns per-session responder flags into the session of first improvement (event)
or the last assessed session (censored), estimates the distribution per arm, and reports the median session
with its Brookmeyer–Crowley confidence interval next to each claimed range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats.responders import _as_flag
from toolkit.stats.results import AnalysisResult

__all__ = ["TimeToImprovementResult", "improvement_records", "kaplan_meier", "logrank", "time_to_improvement"]

#: accepted confidence-interval transforms for the survival function
CI_TRANSFORMS = ("log-log", "plain", "log")


def kaplan_meier(
    time: np.ndarray, event: np.ndarray, *, alpha: float = 0.05, ci: str = "log-log"
) -> pd.DataFrame:
    """Kaplan–Meier estimate with Greenwood standard errors.

    Parameters
    ----------
    time : array of float
        Event or censoring times (here: session numbers).
    event : array of bool
        True for an observed event, False for censoring.
    alpha : float
        1 - confidence level of the pointwise intervals.
    ci : {'log-log', 'plain', 'log'}
        Transform of the pointwise interval (log-log is SAS LIFETEST's default).

    Returns
    -------
    DataFrame
        ``time, n_risk, n_event, n_censor, survival, se, ci_low, ci_high`` at every distinct time.
    """
    if ci not in CI_TRANSFORMS:
        raise DataError(f"ci must be one of {', '.join(CI_TRANSFORMS)}, got {ci!r}")
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if time.size == 0:
        raise DataError("Kaplan-Meier needs at least one subject")
    if np.any(~np.isfinite(time)) or np.any(time < 0):
        raise DataError("times must be finite and non-negative")
    z = stats.norm.ppf(1 - alpha / 2)
    uniq = np.unique(time)
    d = np.array([np.sum(event & (time == t)) for t in uniq])
    c = np.array([np.sum(~event & (time == t)) for t in uniq])
    n_risk = np.array([np.sum(time >= t) for t in uniq])
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        se = surv * np.sqrt(green)
        if ci == "plain":
            low, high = surv - z * se, surv + z * se
        elif ci == "log":
            low, high = surv * np.exp(-z * np.sqrt(green)), surv * np.exp(z * np.sqrt(green))
        else:
            log_s = np.log(surv)
            half = z * np.sqrt(green) / np.abs(log_s)
            low, high = surv ** np.exp(half), surv ** np.exp(-half)
    # once the estimate reaches 0 it stays there: report the degenerate interval [0, 0] rather than NaN,
    # so that the median's upper confidence limit is found
    low = np.where(surv > 0, np.clip(low, 0, 1), 0.0)
    high = np.where(surv > 0, np.clip(high, 0, 1), 0.0)
    if ci == "log-log":
        # at S = 1 the log-log interval is degenerate; report [1, 1] as SAS does
        low = np.where(surv == 1.0, 1.0, low)
        high = np.where(surv == 1.0, 1.0, high)
    return pd.DataFrame(
        {
            "time": uniq,
            "n_risk": n_risk,
            "n_event": d,
            "n_censor": c,
            "survival": surv,
            "se": np.where(np.isfinite(se), se, np.nan),
            "ci_low": low,
            "ci_high": high,
        }
    )


def _median_with_ci(table: pd.DataFrame) -> tuple[float, float, float]:
    """Median time and its confidence limits, read off the survival curve and its pointwise limits.

    Each is the first time the curve is at or below 0.5; where the curve sits exactly at 0.5 over a step
    and drops later, the midpoint between the start of that step and the time of the next drop (R
    ``survfit``'s printed median, SAS LIFETEST). NaN when the curve never reaches 0.5.

    One deliberate difference from R: where the estimate falls to 0, R leaves the pointwise interval (and
    so an upper limit found only there) undefined; here the interval is the degenerate [0, 0], so a cohort
    in which everyone improved gets the time the last subject improved as the upper limit instead of
    "not reached".
    """
    times = table["time"].to_numpy(float)
    return tuple(_step_median(times, table[c].to_numpy(float)) for c in ("survival", "ci_low", "ci_high"))


def _step_median(times: np.ndarray, curve: np.ndarray, *, tol: float = 1.49e-8) -> float:
    """First time a right-continuous step curve is <= 0.5, with the midpoint rule for a flat 0.5 step."""
    keep = np.isfinite(curve) & (curve < 0.5 + tol)
    if not keep.any():
        return float("nan")
    t, y = times[keep], curve[keep]
    if abs(y[0] - 0.5) < tol:
        lower = np.flatnonzero(y < y[0] - tol)
        if len(lower):
            return float((t[0] + t[lower[0]]) / 2.0)
    return float(t[0])


def logrank(time: np.ndarray, event: np.ndarray, group: np.ndarray, strata: np.ndarray | None = None
            ) -> dict[str, float]:
    """Log-rank test of equal survival across groups (chi-square with groups - 1 df).

    With ``strata`` the test is stratified (R ``survdiff(... + strata(s))``): observed minus expected events and
    their variance are summed over strata, each with its own risk sets. Paired units (the two sides of a face
    in a split-face study) are tested with the pair as the stratum.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    group = np.asarray(group)
    levels = list(pd.unique(group))
    if len(levels) < 2:
        raise DataError("the log-rank test needs at least two groups")
    k = len(levels)
    obs_minus_exp = np.zeros(k)
    var = np.zeros((k, k))
    layers = [np.ones(len(time), bool)] if strata is None else \
        [np.asarray(strata) == s for s in pd.unique(np.asarray(strata))]
    for layer in layers:
        t_s, e_s, g_s = time[layer], event[layer], group[layer]
        for t in np.unique(t_s[e_s]):
            at_risk = t_s >= t
            n = at_risk.sum()
            d = np.sum(e_s & (t_s == t))
            n_g = np.array([np.sum(at_risk & (g_s == g)) for g in levels])
            d_g = np.array([np.sum(e_s & (t_s == t) & (g_s == g)) for g in levels])
            obs_minus_exp += d_g - d * n_g / n
            if n > 1:
                f = d * (n - d) / (n * n * (n - 1))
                var += f * (np.diag(n_g * n) - np.outer(n_g, n_g))
    stat = float(obs_minus_exp[:-1] @ np.linalg.pinv(var[:-1, :-1]) @ obs_minus_exp[:-1])
    return {"statistic": stat, "df": k - 1, "p_value": float(stats.chi2.sf(stat, k - 1)),
            "method": "log-rank" if strata is None else "stratified log-rank"}


@dataclass
class TimeToImprovementResult(AnalysisResult):
    """Result of :func:`time_to_improvement`.

    ``km`` (Kaplan–Meier table per arm, ``treatment`` column), ``medians`` (arm, n, events, median session
    and CI, claimed range and whether the CI is compatible with it), ``logrank`` (one row),
    ``first_improvement`` (one row per subject: session, event flag).
    """

    km: pd.DataFrame = field(default_factory=pd.DataFrame)
    medians: pd.DataFrame = field(default_factory=pd.DataFrame)
    logrank: pd.DataFrame = field(default_factory=pd.DataFrame)
    first_improvement: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.table_names = ("medians", "logrank", "km")


#: the seed articles' claims: results visible after this many sessions
SEED_CLAIMS = {"MC": (3, 4), "EP": (4, 6)}


def time_to_improvement(
    data: pd.DataFrame,
    *,
    subject: str,
    treatment: str,
    session: str,
    responder: str,
    claims: Mapping[object, tuple[float, float]] | None = None,
    alpha: float = 0.05,
    pair: str | None = None,
) -> TimeToImprovementResult:
    """Session of first visible improvement per subject, Kaplan–Meier by arm, medians and the log-rank test.

    Parameters
    ----------
    data : DataFrame
        One record per subject and assessed session, with a responder flag (improved at that session).
    subject, treatment, session, responder : str
        Columns; ``session`` is the session number (1, 2, ...), ``responder`` 0/1, bool or Y/N.
    claims : mapping of arm to (low, high), optional
        Claimed session range per arm; defaults to the seed claims ``{"MC": (3, 4), "EP": (4, 6)}`` for the
        arms present. A claim is ``compatible`` when the median's CI overlaps the claimed range.
    alpha : float
        1 - confidence level.
    pair : str, optional
        Column naming the pair a unit belongs to when the units are paired (split-face: ``subject`` is the
        side, ``pair`` the subject); the log-rank test is then stratified by pair.

    Returns
    -------
    TimeToImprovementResult
    """
    data = _checks.require_frame(data)
    _checks.require_columns(data, [subject, treatment, session, responder, *([pair] if pair else [])])
    sess = _checks.require_numeric(data, session, role="session")
    frame = data.assign(_session=sess, _flag=_as_flag(data[responder], column=responder))
    frame = frame.dropna(subset=["_session", "_flag"])
    _checks.require_complete(frame, [treatment], id_column=subject, role="treatment")
    arm_per_subject = frame.groupby(subject)[treatment].nunique()
    if (arm_per_subject > 1).any():
        bad = arm_per_subject[arm_per_subject > 1].index[:3].astype(str)
        raise DataError(f"subject(s) {', '.join(bad)} appear in more than one arm of {treatment!r}")
    rows = []
    for sid, grp in frame.sort_values("_session").groupby(subject, sort=False):
        hits = grp.loc[grp["_flag"] == 1, "_session"]
        rows.append({
            subject: sid,
            "treatment": grp[treatment].iloc[0],
            "session": float(hits.iloc[0]) if len(hits) else float(grp["_session"].max()),
            "event": bool(len(hits)),
            **({"pair": grp[pair].iloc[0]} if pair else {}),
        })  # fmt: skip
    first = pd.DataFrame(rows)
    arms = _checks.categorical_levels(first["treatment"], column=treatment)
    if claims is None:
        claims = {a: SEED_CLAIMS[a] for a in arms if a in SEED_CLAIMS}
    km_tables, medians = [], []
    for a in arms:
        sub = first[first["treatment"] == a]
        table = kaplan_meier(sub["session"].to_numpy(), sub["event"].to_numpy(), alpha=alpha)
        table.insert(0, "treatment", a)
        km_tables.append(table)
        med, lo, hi = _median_with_ci(table)
        claim = claims.get(a)
        compatible = None
        if claim is not None:
            lo_eff = lo if np.isfinite(lo) else -np.inf
            hi_eff = hi if np.isfinite(hi) else np.inf
            compatible = bool(lo_eff <= claim[1] and hi_eff >= claim[0]) if np.isfinite(med) else False
        medians.append(
            {
                "treatment": a,
                "n": len(sub),
                "events": int(sub["event"].sum()),
                "median_session": med,
                "ci_low": lo,
                "ci_high": hi,
                "claimed_low": claim[0] if claim else np.nan,
                "claimed_high": claim[1] if claim else np.nan,
                "compatible_with_claim": compatible,
            }
        )
    lr = (
        logrank(first["session"].to_numpy(), first["event"].to_numpy(), first["treatment"].to_numpy(),
                strata=first["pair"].to_numpy() if pair else None)
        if len(arms) > 1
        else None
    )
    return TimeToImprovementResult(
        title="Time to first visible improvement (sessions)",
        details={
            "estimator": "Kaplan-Meier, Greenwood variance, log-log CI",
            "median_ci": "Brookmeyer-Crowley on the log-log band; midpoint of a flat 0.5 step (as R survfit, SAS LIFETEST)",
            "alpha": alpha,
            "n_subjects": len(first),
        },
        km=pd.concat(km_tables, ignore_index=True),
        medians=pd.DataFrame(medians),
        logrank=pd.DataFrame([lr]) if lr else pd.DataFrame(),
        first_improvement=first,
    )


def improvement_records(
    bds: pd.DataFrame,
    *,
    paramcd: str,
    threshold: float,
    sessions: Mapping[str, float],
    value: str = "PCHG",
    direction: str = "decrease",
    subject: str = "USUBJID",
    treatment: str = "TRTP",
    visit: str = "AVISIT",
) -> pd.DataFrame:
    """Per subject and assessed session: was the improvement visible? (input of :func:`time_to_improvement`).

    Parameters
    ----------
    bds : DataFrame
        BDS dataset (one record per subject, parameter and visit).
    paramcd : str
        Parameter that defines improvement, e.g. the primary endpoint.
    threshold : float
        Visible improvement: ``value <= -threshold`` for ``direction="decrease"`` (e.g. 10 for a 10 %
        reduction in PCHG), ``value >= threshold`` for ``"increase"``.
    sessions : mapping of visit to session number
        The session after which each visit is assessed (visits not named, such as baseline and follow-up,
        are left out).
    value : str
        Column compared with the threshold (``PCHG`` or ``CHG``).

    Returns
    -------
    DataFrame
        ``subject``, ``treatment``, ``session``, ``responder`` (bool); visits with a missing value are dropped.
    """
    if direction not in ("decrease", "increase"):
        raise DataError(f"direction must be 'decrease' or 'increase', got {direction!r}")
    if not threshold >= 0:
        raise DataError(f"threshold must be a non-negative number, got {threshold!r}")
    data = _checks.require_frame(bds)
    _checks.require_columns(data, [subject, treatment, visit, value, "PARAMCD"])
    sub = data[(data["PARAMCD"] == paramcd) & data[visit].isin(list(sessions))]
    if sub.empty:
        raise DataError(f"no {paramcd} records at the visits {', '.join(map(str, sessions))}")
    vals = pd.Series(_checks.require_numeric(sub, value, role="improvement value"), index=sub.index)
    flag = vals <= -threshold if direction == "decrease" else vals >= threshold
    out = pd.DataFrame({
        subject: sub[subject].to_numpy(),
        treatment: sub[treatment].to_numpy(),
        "session": sub[visit].map(dict(sessions)).astype(float).to_numpy(),
        "responder": flag.to_numpy(),
    })
    return out[vals.notna().to_numpy()].reset_index(drop=True)
