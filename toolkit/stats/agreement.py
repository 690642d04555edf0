"""Rater agreement on ordinal clinical scales: weighted kappa and the intraclass correlation.

* :func:`weighted_kappa`: Cohen's weighted kappa of two raters (quadratic, Fleiss–Cohen, or linear,
  Cicchetti–Allison, weights over equally spaced grades), computed by statsmodels' ``cohens_kappa`` with its
  asymptotic standard error and Wald interval.
* :func:`icc`: ICC(2,1) of Shrout & Fleiss (1979), two-way random effects, absolute agreement, single rater
  (McGraw & Wong's ICC(A,1)), with the F test and McGraw & Wong's (1996) confidence interval; ``kind=
  "consistency"`` gives ICC(3,1).
* :func:`rater_agreement`: both, per scale, between raters (inter-rater: each pair of raters on the sets both
  graded; the ICC on the sets every rater graded) and within each rater (intra-rater: first grade vs the blind
  re-grade), as a tidy table.

References
----------
Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater reliability. Psychol Bull 1979;86:420–8.
McGraw KO, Wong SP. Forming inferences about some intraclass correlation coefficients. Psychol Methods
1996;1:30–46. Fleiss JL, Cohen J. The equivalence of weighted kappa and the intraclass correlation
coefficient as measures of reliability. Educ Psychol Meas 1973;33:613–9.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError as StatsInputError

__all__ = ["ICCResult", "KappaResult", "icc", "rater_agreement", "weighted_kappa"]


@dataclass(frozen=True)
class KappaResult:
    """Weighted kappa of two raters."""

    kappa: float
    se: float
    ci_low: float
    ci_high: float
    #: number of items both raters graded
    n: int


@dataclass(frozen=True)
class ICCResult:
    """An intraclass correlation with its F test and confidence interval."""

    icc: float
    ci_low: float
    ci_high: float
    f: float
    df1: int
    df2: int
    p_value: float
    n_targets: int
    n_raters: int


def weighted_kappa(
    a: pd.Series | np.ndarray | list,
    b: pd.Series | np.ndarray | list,
    *,
    grades: list[float] | np.ndarray | None = None,
    weights: Literal["quadratic", "linear", "none"] = "quadratic",
    alpha: float = 0.05,
) -> KappaResult:
    """Cohen's weighted kappa of two raters' grades of the same items.

    Parameters
    ----------
    a, b : sequences of grades, the same length (item ``i`` graded ``a[i]`` by one rater, ``b[i]`` by the other)
    grades : sequence, optional
        Every grade of the scale in order (default: the grades seen); weights follow the grades' values.
    weights : {'quadratic', 'linear', 'none'}
        Fleiss–Cohen (quadratic) or Cicchetti–Allison (linear) weights; ``none``: Cohen's unweighted kappa.
    alpha : float
        Two-sided level of the Wald interval.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise StatsInputError("weighted kappa needs two equally long sequences of grades")
    if len(x) < 2:
        raise StatsInputError(f"weighted kappa needs at least 2 items graded by both raters, got {len(x)}")
    levels = np.array(sorted(set(x) | set(y)) if grades is None else sorted(float(g) for g in grades))
    unknown = sorted(float(g) for g in (set(x) | set(y)) - set(levels))
    if unknown:
        raise StatsInputError(f"grades {unknown} are not among the scale's grades {list(levels)}")
    from statsmodels.stats.inter_rater import cohens_kappa

    index = {g: i for i, g in enumerate(levels)}
    table = np.zeros((len(levels), len(levels)))
    for u, v in zip(x, y, strict=True):
        table[index[u], index[v]] += 1
    if np.all(x == y) and len(set(x)) == 1:
        return KappaResult(float("nan"), float("nan"), float("nan"), float("nan"), len(x))
    # statsmodels also forms a z test against kappa = 0, which is not used here; its null SE is 0 when each rater
    # gives one grade throughout (the table has one cell), and the division would warn about a number nobody reads
    with np.errstate(divide="ignore", invalid="ignore"):
        res = cohens_kappa(table) if weights == "none" else cohens_kappa(table, weights=levels, wt=weights)
    z = stats.norm.ppf(1 - alpha / 2)
    se = float(res.std_kappa)
    return KappaResult(float(res.kappa), se, float(res.kappa) - z * se, float(res.kappa) + z * se, len(x))


def icc(
    data: pd.DataFrame,
    *,
    target: str,
    rater: str,
    score: str,
    kind: Literal["agreement", "consistency"] = "agreement",
    alpha: float = 0.05,
) -> ICCResult:
    """Single-rater intraclass correlation of a complete targets × raters design.

    Parameters
    ----------
    data : DataFrame
        Long form, one row per target and rater; targets not graded by every rater are left out.
    target, rater, score : str
        Column names.
    kind : {'agreement', 'consistency'}
        ICC(2,1) (absolute agreement, raters random) or ICC(3,1) (consistency, raters fixed).
    alpha : float
        Two-sided level of the confidence interval.

    Examples
    --------
    Shrout & Fleiss (1979), Table 2 (six targets, four judges): ICC(2,1) = 0.29, ICC(3,1) = 0.71.

    >>> sf = pd.DataFrame([9, 2, 5, 8, 6, 1, 3, 2, 8, 4, 6, 8, 7, 1, 2, 6, 10, 5, 6, 9, 6, 2, 4, 7],
    ...                   columns=["x"]).assign(t=[i // 4 for i in range(24)], j=[i % 4 for i in range(24)])
    >>> round(icc(sf, target="t", rater="j", score="x").icc, 2)
    0.29
    """
    wide = data.pivot_table(index=target, columns=rater, values=score, aggfunc="first").dropna()
    n, k = wide.shape
    if k < 2 or n < 2:
        raise StatsInputError(f"the ICC needs at least 2 raters who graded the same 2 or more targets "
                              f"(got {k} rater(s), {n} target(s) graded by all)")
    y = wide.to_numpy(dtype=float)
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    df1, df2 = n - 1, (n - 1) * (k - 1)
    if ems <= 0 and bms <= 0:
        nan = float("nan")
        return ICCResult(nan, nan, nan, nan, df1, df2, nan, n, k)
    if ems <= 1e-12 * max(bms, jms, 1.0):  # no residual disagreement: no interval can be formed
        value = (bms - ems) / (bms + (k - 1) * ems + (k * (jms - ems) / n if kind == "agreement" else 0.0))
        nan = float("nan")
        return ICCResult(float(value), nan, nan, float("inf"), df1, df2, 0.0, n, k)
    f = bms / ems
    p = float(stats.f.sf(f, df1, df2))
    if kind == "consistency":
        value = (bms - ems) / (bms + (k - 1) * ems)
        fl = f / stats.f.ppf(1 - alpha / 2, df1, df2)
        fu = f * stats.f.ppf(1 - alpha / 2, df2, df1)
        low, high = (fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)
    else:
        value = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
        a = k * value / (n * (1 - value))
        b = 1 + k * value * (n - 1) / (n * (1 - value))
        spread = (a * jms) ** 2 / (k - 1) + (b * ems) ** 2 / ((n - 1) * (k - 1))
        if not spread > 0:
            # neither the targets nor the raters differ (a = 0 or b = 0 against zero mean squares): the
            # Satterthwaite degrees of freedom, and so the interval, do not exist
            low = high = float("nan")
        else:
            v = (a * jms + b * ems) ** 2 / spread
            f_u = stats.f.ppf(1 - alpha / 2, n - 1, v)
            f_l = stats.f.ppf(1 - alpha / 2, v, n - 1)
            low = n * (bms - f_u * ems) / (f_u * (k * jms + (k * n - k - n) * ems) + n * bms)
            high = n * (f_l * bms - ems) / (k * jms + (k * n - k - n) * ems + n * f_l * bms)
    return ICCResult(float(value), float(low), float(high), float(f), df1, df2, p, n, k)


_KAPPA = "weighted kappa (quadratic)"
_ICC = "ICC(2,1), absolute agreement"


def rater_agreement(
    ratings: pd.DataFrame,
    *,
    item: str = "set_id",
    rater: str = "rater",
    score: str = "score",
    scale: str = "scale",
    repeat: str = "repeat",
    grades: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """Inter- and intra-rater agreement per scale, as a tidy table.

    Parameters
    ----------
    ratings : DataFrame
        One row per grade: the item (photo set), rater, score, scale, and ``repeat`` (0 first grade, 1 the blind
        re-grade).
    item, rater, score, scale, repeat : str
        Column names.
    grades : dict, optional
        Scale -> every grade of the scale (default: the grades seen).

    Returns
    -------
    DataFrame
        Columns ``scale``, ``agreement`` (inter-rater / intra-rater), ``raters`` (raters as "Rater 1" … in the
        order of their names, never the names), ``statistic``, ``n_sets``, ``estimate``, ``ci_low``,
        ``ci_high``. Comparisons with fewer than 2 common sets are left out.
    """
    missing = [c for c in (item, rater, score, scale, repeat) if c not in ratings.columns]
    if missing:
        raise StatsInputError(f"ratings lack column(s) {', '.join(missing)}")
    data = ratings.assign(**{repeat: ratings[repeat].fillna(0).astype(int)})
    alias = {r: f"Rater {i + 1}" for i, r in enumerate(sorted(data[rater].astype(str).unique()))}
    rows = []
    for sc, part in data.groupby(scale, sort=True):
        levels = (grades or {}).get(str(sc))
        first = part[part[repeat] == 0]
        raters = sorted(first[rater].astype(str).unique())
        for r1, r2 in combinations(raters, 2):
            a = first[first[rater] == r1].set_index(item)[score]
            b = first[first[rater] == r2].set_index(item)[score]
            common = a.index.intersection(b.index)
            if len(common) >= 2:
                k = weighted_kappa(a[common], b[common], grades=levels)
                rows.append([sc, "inter-rater", f"{alias[r1]} vs {alias[r2]}", _KAPPA, k.n, k.kappa, k.ci_low,
                             k.ci_high])
        if len(raters) >= 2:
            try:
                r = icc(first, target=item, rater=rater, score=score)
            except StatsInputError:
                r = None
            if r is not None:
                who = f"{alias[raters[0]]} vs {alias[raters[1]]}" if len(raters) == 2 else f"all {len(raters)} raters"
                rows.append([sc, "inter-rater", who, _ICC, r.n_targets, r.icc, r.ci_low, r.ci_high])
        for rr in raters:
            mine = part[part[rater].astype(str) == rr]
            once = mine[mine[repeat] == 0].set_index(item)[score]
            twice = mine[mine[repeat] == 1].set_index(item)[score]
            common = once.index.intersection(twice.index)
            if len(common) < 2:
                continue
            k = weighted_kappa(once[common], twice[common], grades=levels)
            rows.append([sc, "intra-rater", f"{alias[rr]} (first vs repeat)", _KAPPA, k.n, k.kappa, k.ci_low,
                         k.ci_high])
            pairs = pd.DataFrame({"t": list(common) * 2, "o": [0] * len(common) + [1] * len(common),
                                  "s": list(once[common]) + list(twice[common])})
            try:
                r = icc(pairs, target="t", rater="o", score="s")
                rows.append([sc, "intra-rater", f"{alias[rr]} (first vs repeat)", _ICC, r.n_targets, r.icc,
                             r.ci_low, r.ci_high])
            except StatsInputError:
                pass
    return pd.DataFrame(rows, columns=["scale", "agreement", "raters", "statistic", "n_sets", "estimate", "ci_low",
                                       "ci_high"])
