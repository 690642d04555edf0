"""ANCOVA of a continuous endpoint at one visit: treatment, baseline and stratification factors.

As the FDA guidance "Adjusting for Covariates in Randomized Clinical Trials for Drugs and Biological
Products" (2023) recommends: ordinary least squares with treatment, baseline value and the randomisation
strata, least-squares means with observed-margin weights (SAS ``LSMEANS / OM``), and optionally
heteroskedasticity-consistent (Huber–White) standard errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats._design import Design, margin_rows
from toolkit.stats.mmrm import _contrast_pairs
from toolkit.stats.results import AnalysisResult, t_inference

__all__ = ["ROBUST_TYPES", "AncovaResult", "ancova"]

#: accepted heteroskedasticity-consistent covariance types
ROBUST_TYPES = ("HC0", "HC1", "HC2", "HC3")


@dataclass
class AncovaResult(AnalysisResult):
    """Result of :func:`ancova`.

    Attributes
    ----------
    lsmeans : DataFrame
        ``treatment, n, estimate, se, df, ci_low, ci_high``.
    contrasts : DataFrame
        ``contrast, estimate, se, df, ci_low, ci_high, statistic, p_value``.
    anova : DataFrame
        Type III tests: ``term, df_num, df_den, sum_sq, f_value, p_value`` (sums of squares only without
        robust errors).
    coefficients : DataFrame
        ``term, estimate, se, df, statistic, p_value``.
    model : statsmodels RegressionResults
        The fitted OLS model (design columns named as in ``coefficients``).
    """

    lsmeans: pd.DataFrame = field(default_factory=pd.DataFrame)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    anova: pd.DataFrame = field(default_factory=pd.DataFrame)
    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: Any = None

    def __post_init__(self) -> None:
        self.table_names = ("lsmeans", "contrasts", "anova", "coefficients")


def ancova(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    baseline: str | None,
    covariates: Sequence[str] = (),
    strata: Sequence[str] = (),
    reference: object | None = None,
    weights: str = "proportional",
    robust: str | None = None,
    alpha: float = 0.05,
    contrasts: str = "reference",
) -> AncovaResult:
    """Analysis of covariance of ``outcome`` with treatment, baseline, covariates and strata.

    Parameters
    ----------
    data : DataFrame
        One record per subject (e.g. BDS records of one visit: ``CHG``, ``BASE``, ``TRTP``).
    outcome : str
        Numeric response, typically change from baseline.
    treatment : str
        Treatment arm column (categorical).
    baseline : str or None
        Numeric baseline covariate; ``None`` fits no baseline term.
    covariates : sequence of str
        Further covariates: numeric columns as covariates, others as factors.
    strata : sequence of str
        Stratification factors (always categorical).
    reference : optional
        Reference arm of the contrasts (default: first level in sorted order).
    weights : {'proportional', 'equal'}
        LS-means weights: observed margins (SAS ``OM``) or equal weights over factor levels.
    robust : {'HC0', 'HC1', 'HC2', 'HC3'}, optional
        Huber–White standard errors instead of the model-based ones.
    alpha : float
        1 - confidence level.
    contrasts : {'reference', 'pairwise'}
        Each arm against the reference, or every pair of arms.

    Returns
    -------
    AncovaResult

    Raises
    ------
    DataError
        Unknown or non-numeric columns, missing baseline or covariates, a single arm, too few subjects.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"TRTP": np.repeat(["EP", "MC"], 20), "BASE": rng.normal(50, 5, 40)})
    >>> df["CHG"] = -0.5 * (df.BASE - 50) + np.where(df.TRTP == "MC", -2.0, 0.0) + rng.normal(0, 1, 40)
    >>> res = ancova(df, outcome="CHG", treatment="TRTP", baseline="BASE")
    >>> res.contrasts[["contrast", "df"]].to_dict("records")
    [{'contrast': 'MC - EP', 'df': 37.0}]
    """
    data = _checks.require_frame(data)
    covariates, strata = list(covariates), list(strata)
    _checks.require_columns(data, [outcome, treatment, baseline, *covariates, *strata])
    if robust is not None and robust not in ROBUST_TYPES:
        raise DataError(f"robust must be one of {', '.join(ROBUST_TYPES)} or None, got {robust!r}")
    y_all = _checks.require_numeric(data, outcome, role="outcome")
    frame = data.loc[~np.isnan(y_all)].copy()
    frame[outcome] = y_all[~np.isnan(y_all)]
    n_dropped = int(np.isnan(y_all).sum())
    if baseline:
        frame[baseline] = _checks.require_numeric(frame, baseline, role="baseline")
    _checks.require_complete(
        frame,
        [treatment, *([baseline] if baseline else []), *covariates, *strata],
        id_column="USUBJID",
        role="model",
    )
    arms = _checks.categorical_levels(frame[treatment], reference, column=treatment)
    if len(arms) < 2:
        raise DataError(
            f"treatment column {treatment!r} has a single arm ({arms[0] if arms else 'none'}) among records "
            f"with an outcome; an ANCOVA needs at least two arms"
        )
    factors: dict[str, list] = {treatment: arms}
    for c in strata:
        factors[c] = _checks.categorical_levels(frame[c], column=c)
    numerics: list[str] = []
    for c in covariates:
        if _checks.is_categorical(frame[c]):
            factors[c] = _checks.categorical_levels(frame[c], column=c)
        else:
            frame[c] = frame[c].astype(float)
            numerics.append(c)
    terms: list[tuple[str, ...]] = [(treatment,), *((c,) for c in strata), *((c,) for c in covariates)]
    if baseline:
        numerics.append(baseline)
        terms.append((baseline,))
    design = Design(factors, numerics, terms)
    x = design.matrix(frame)
    y = frame[outcome].to_numpy(dtype=float)
    n, p = x.shape
    if n <= p:
        raise DataError(
            f"too few subjects for the ANCOVA: {n} records with an outcome for {p} model parameters"
        )
    rank = np.linalg.matrix_rank(x)
    if rank < p:
        raise DataError(
            "the ANCOVA design is not of full rank: a stratum or covariate is constant or confounded with treatment",
            details=[f"columns: {', '.join(design.column_names)}"],
        )

    import statsmodels.api as sm

    ols = sm.OLS(y, pd.DataFrame(x, columns=design.column_names))
    model = ols.fit(cov_type=robust) if robust else ols.fit()
    beta = model.params.to_numpy()
    cov = np.asarray(model.cov_params())
    df_resid = float(model.df_resid)

    rows, keys = [], []
    for arm in arms:
        rows.append(margin_rows(design, frame, {treatment: arm}, weights=weights))
        keys.append(arm)
    rows_arr = np.vstack(rows)

    def infer(mat: np.ndarray) -> dict[str, np.ndarray]:
        se = np.sqrt(np.einsum("mp,pq,mq->m", mat, cov, mat))
        return t_inference(mat @ beta, se, np.full(len(mat), df_resid), alpha=alpha)

    ls = infer(rows_arr)
    counts = frame[treatment].value_counts()
    lsmeans = pd.DataFrame(
        {
            "treatment": keys,
            "n": [int(counts.get(a, 0)) for a in keys],
            **{k: ls[k] for k in ("estimate", "se", "df", "ci_low", "ci_high")},
        }
    )
    pairs = _contrast_pairs(arms, contrasts)
    crow = np.vstack([rows_arr[arms.index(a)] - rows_arr[arms.index(b)] for a, b in pairs])
    ct = infer(crow)
    contrast_table = pd.DataFrame(
        {
            "contrast": [f"{a} - {b}" for a, b in pairs],
            **{k: ct[k] for k in ("estimate", "se", "df", "ci_low", "ci_high", "statistic", "p_value")},
        }
    )
    mse = float(model.mse_resid)
    anova_rows = []
    for label, sl in design.term_slices.items():
        r = np.eye(p)[sl]
        rb = r @ beta
        q = r.shape[0]
        f_value = float(rb @ np.linalg.solve(r @ cov @ r.T, rb)) / q
        anova_rows.append(
            {
                "term": label,
                "df_num": q,
                "df_den": df_resid,
                "sum_sq": f_value * q * mse if robust is None else np.nan,
                "f_value": f_value,
                "p_value": float(stats.f.sf(f_value, q, df_resid)),
            }
        )
    if robust is None:
        anova_rows.append(
            {
                "term": "Residual",
                "df_num": df_resid,
                "df_den": np.nan,
                "sum_sq": float(model.ssr),
                "f_value": np.nan,
                "p_value": np.nan,
            }
        )
    anova = pd.DataFrame(anova_rows)
    fe = t_inference(beta, np.sqrt(np.diag(cov)), np.full(p, df_resid), alpha=alpha)
    coefficients = pd.DataFrame(
        {"term": design.column_names, **{k: fe[k] for k in ("estimate", "se", "df", "statistic", "p_value")}}
    )
    rhs = [treatment, *strata, *covariates] + ([baseline] if baseline else [])
    details = {
        "model": f"{outcome} ~ {' + '.join(rhs)}",
        "method": "OLS",
        "standard_errors": robust or "model-based",
        "lsmeans_weights": weights,
        "reference": arms[0],
        "n": n,
        "n_missing_outcome_dropped": n_dropped,
        "rmse": float(np.sqrt(mse)),
        "alpha": alpha,
    }
    return AncovaResult(
        title=f"ANCOVA of {outcome}",
        details=details,
        lsmeans=lsmeans,
        contrasts=contrast_table,
        anova=anova,
        coefficients=coefficients,
        model=model,
    )
