"""Mixed model for repeated measures (MMRM) with an unstructured covariance over visits, fitted by REML.

statsmodels' MixedLM has no unstructured residual covariance, so the model is fitted here on numpy/scipy:
the covariance is parametrised by its log-Cholesky factor, beta is profiled out by generalised least squares,
the REML criterion is summed per missing-data pattern from sufficient statistics, and L-BFGS-B minimises it
with the analytic gradient. Degrees of freedom follow Satterthwaite (default) or Kenward–Roger, computed in
the variance–covariance parametrisation that SAS PROC MIXED reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats._blas import single_threaded_blas
from toolkit.stats._covariance import make_structure
from toolkit.stats._ddf import (
    kenward_roger,
    kenward_roger_covariance,
    kenward_roger_f,
    satterthwaite,
    satterthwaite_f,
)
from toolkit.stats._design import Design, margin_rows
from toolkit.stats._hypotheses import type3_hypotheses
from toolkit.stats._reml import RemlFit, RemlProblem, build_patterns
from toolkit.stats.results import AnalysisResult, t_inference

__all__ = ["DF_METHODS", "MMRMResult", "mmrm"]

#: accepted degrees-of-freedom methods
DF_METHODS = ("satterthwaite", "kenward-roger")


@dataclass
class MMRMResult(AnalysisResult):
    """Result of :func:`mmrm`.

    Attributes
    ----------
    lsmeans : DataFrame
        ``treatment, visit, estimate, se, df, ci_low, ci_high`` (one row per arm and visit).
    contrasts : DataFrame
        ``visit, contrast, estimate, se, df, ci_low, ci_high, statistic, p_value``.
    fixed_effects : DataFrame
        ``term, estimate, se, df, statistic, p_value``.
    anova : DataFrame
        Type III tests of the fixed effects: ``term, df_num, df_den, f_value, p_value`` (SAS "Type 3 Tests
        of Fixed Effects", with the model's Satterthwaite or Kenward–Roger denominator df).
    covariance : DataFrame
        Estimated covariance matrix over visits (visits as index and columns).
    covariance_parameters : DataFrame
        ``parameter, estimate`` in the natural parametrisation (SAS "Covariance Parameter Estimates").
    neg2_reml : float
        -2 REML log-likelihood (including the (N - p) log 2 pi constant, as SAS reports it).
    fit : RemlFit
        The fitted model (beta, its covariance, optimiser parameters).
    """

    lsmeans: pd.DataFrame = field(default_factory=pd.DataFrame)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    fixed_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    anova: pd.DataFrame = field(default_factory=pd.DataFrame)
    covariance: pd.DataFrame = field(default_factory=pd.DataFrame)
    covariance_parameters: pd.DataFrame = field(default_factory=pd.DataFrame)
    neg2_reml: float = float("nan")
    fit: RemlFit | None = None
    design: Design | None = None
    #: derivative quantities of the REML fit that the df methods need (see ``RemlProblem.information``)
    information: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.table_names = ("lsmeans", "contrasts", "anova", "fixed_effects", "covariance_parameters")

    def test(self, contrast: np.ndarray | Sequence[Sequence[float]], *, label: str = "L beta = 0") -> pd.DataFrame:
        """F test of the hypothesis ``L beta = 0`` for a matrix ``L`` of any number of rows.

        Parameters
        ----------
        contrast : (q, p) array
            Rows over the fixed effects in the order of ``fixed_effects.term``; dependent rows are
            dropped, so the numerator df is the rank of ``L``.
        label : str
            Name of the hypothesis in the returned table.

        Returns
        -------
        DataFrame
            One row: ``hypothesis, df_num, df_den, f_value, p_value`` with the model's df method
            (Kenward–Roger scales F and uses the adjusted covariance, as SAS's ``DDFM=KR``).
        """
        if self.fit is None:
            raise DataError("this result has no fitted model to test")
        rows = np.atleast_2d(np.asarray(contrast, dtype=float))
        if rows.shape[1] != len(self.fit.beta):
            raise DataError(
                f"the contrast has {rows.shape[1]} columns; the model has {len(self.fit.beta)} fixed effects",
                details=[f"fixed effects: {', '.join(self.fixed_effects['term'])}"],
            )
        row = _f_row(rows, self.fit, self.information, str(self.details.get("df_method")))
        if row is None:
            raise DataError(f"the hypothesis {label!r} has rank 0 (every row is zero): nothing to test")
        return pd.DataFrame([{"hypothesis": label, **row}])

    @property
    def aic(self) -> float:
        """AIC as SAS reports it for REML: -2 l_R + 2 q (q covariance parameters)."""
        return self.neg2_reml + 2 * len(self.covariance_parameters)


def mmrm(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    visit: str,
    subject: str,
    covariates: Sequence[str] = (),
    baseline: str | None = None,
    covariance: str = "unstructured",
    df_method: str = "satterthwaite",
    reference: object | None = None,
    visit_order: Sequence | None = None,
    weights: str = "proportional",
    alpha: float = 0.05,
    contrasts: str = "reference",
    visit_effects: bool = True,
    covariates_by_visit: bool = False,
) -> MMRMResult:
    """Fit a mixed model for repeated measures by REML.

    The mean model is ``outcome ~ covariates + treatment * visit`` and, when ``baseline`` is given,
    ``+ baseline * visit``; records of one subject are correlated through a visit covariance matrix.
    Records with a missing outcome are dropped (missing at random); any other missing value is an error.

    Parameters
    ----------
    data : DataFrame
        Long form: one record per subject and visit (BDS: ``USUBJID, TRTP, AVISIT, CHG, BASE ...``).
    outcome, treatment, visit, subject : str
        Column names. ``outcome`` must be numeric.
    covariates : sequence of str
        Further main effects; numeric columns enter as covariates, others as factors.
    baseline : str, optional
        Numeric baseline value; enters with its interaction with visit.
    covariance : {'unstructured', 'cs', 'ar1h'}
        Covariance structure over visits.
    df_method : {'satterthwaite', 'kenward-roger'}
        Denominator degrees of freedom (Kenward–Roger also inflates the covariance of the estimates).
    reference : optional
        Reference arm (default: first level in sorted order).
    visit_order : sequence, optional
        Visit order; default the categorical order, else the ``<visit>N`` column when present
        (``AVISITN`` for ``AVISIT``), else natural sort order.
    weights : {'proportional', 'equal'}
        LS-means weights over categorical covariates (observed margins, or equal).
    alpha : float
        1 - confidence level of the intervals.
    contrasts : {'reference', 'pairwise'}
        Each arm against the reference, or every pair of arms.
    visit_effects : bool
        Include visit and treatment-by-visit (and baseline-by-visit) in the mean model (default). With
        ``False`` the mean model is ``outcome ~ covariates + treatment (+ baseline)``, one treatment effect
        over all visits, still with the visit covariance; LS means are then reported for visit ``"all"``.
    covariates_by_visit : bool
        Let each covariate's effect differ by visit (``+ covariate * visit``), as the imputation model of
        :func:`toolkit.stats.reference_based_mi` does; by default covariates are main effects.

    Returns
    -------
    MMRMResult

    Raises
    ------
    DataError
        Unknown or non-numeric columns, a single arm, a visit without data in an arm, missing covariates,
        duplicated subject-visit records, too few subjects.
    ModelFitError
        The optimisation did not converge or the covariance is singular (never silently replaced).

    References
    ----------
    Mallinckrodt, C. H. et al. (2008). Recommendations for the primary analysis of continuous endpoints in
    longitudinal clinical trials. Drug Information Journal 42, 303–319. doi:10.1177/009286150804200402
    """
    if df_method not in DF_METHODS:
        raise DataError(f"df_method must be one of {', '.join(DF_METHODS)}; got {df_method!r}")
    prepared = _prepare(
        data,
        outcome=outcome,
        treatment=treatment,
        visit=visit,
        subject=subject,
        covariates=covariates,
        baseline=baseline,
        reference=reference,
        visit_order=visit_order,
    )
    frame, arms, visits, cat_covs, num_covs = prepared
    factors = {
        treatment: arms,
        visit: visits,
        **{c: _checks.categorical_levels(frame[c], column=c) for c in cat_covs},
    }
    numerics = list(num_covs) + ([baseline] if baseline else [])
    terms: list[tuple[str, ...]] = [(c,) for c in covariates]
    if covariates_by_visit and visit_effects:
        terms += [(c, visit) for c in covariates]
    if visit_effects:
        terms += [(treatment,), (visit,), (treatment, visit)]
        if baseline:
            terms += [(baseline,), (baseline, visit)]
    else:
        terms += [(treatment,)] + ([(baseline,)] if baseline else [])
    design = Design(factors, numerics, terms)
    x = design.matrix(frame)
    y = frame[outcome].to_numpy(dtype=float)
    subj_codes = pd.factorize(frame[subject])[0]
    visit_codes = pd.Categorical(frame[visit], categories=visits).codes.astype(int)
    n_subjects = int(subj_codes.max()) + 1
    structure = make_structure(covariance, len(visits))
    if n_subjects <= 2 or len(y) <= design.n_columns + structure.n_theta():
        raise DataError(
            f"too few subjects for the MMRM: {n_subjects} subjects and {len(y)} records for "
            f"{design.n_columns} fixed effects and {structure.n_theta()} covariance parameters"
        )
    _check_rank(x, design, frame, treatment, visit)
    fit, info, infer, n_patterns = reml_inference(
        x, y, subj_codes, visit_codes, structure, df_method=df_method, alpha=alpha, label=f"MMRM of {outcome}"
    )

    # fixed effects: Satterthwaite or KR df for each coefficient
    eye = np.eye(design.n_columns)
    fe = infer(eye)
    fixed = pd.DataFrame(
        {"term": design.column_names, **{k: fe[k] for k in ("estimate", "se", "df", "statistic", "p_value")}}
    )

    margin = frame.drop_duplicates(subject)
    ls_rows, ls_keys = [], []
    report_visits = visits if visit_effects else ["all"]
    for v in report_visits:
        for arm in arms:
            at = {treatment: arm, visit: v} if visit_effects else {treatment: arm}
            ls_rows.append(margin_rows(design, margin, at, weights=weights))
            ls_keys.append((arm, v))
    ls_rows_arr = np.vstack(ls_rows)
    ls = infer(ls_rows_arr)
    lsmeans = pd.DataFrame(
        {
            "treatment": [k[0] for k in ls_keys],
            "visit": [k[1] for k in ls_keys],
            **{k: ls[k] for k in ("estimate", "se", "df", "ci_low", "ci_high")},
        }
    )
    pairs = _contrast_pairs(arms, contrasts)
    c_rows, c_keys = [], []
    index = {key: i for i, key in enumerate(ls_keys)}
    for v in report_visits:
        for a, b in pairs:
            c_rows.append(ls_rows_arr[index[(a, v)]] - ls_rows_arr[index[(b, v)]])
            c_keys.append((v, f"{a} - {b}"))
    ct = infer(np.vstack(c_rows))
    contrast_table = pd.DataFrame(
        {
            "visit": [k[0] for k in c_keys],
            "contrast": [k[1] for k in c_keys],
            **{k: ct[k] for k in ("estimate", "se", "df", "ci_low", "ci_high", "statistic", "p_value")},
        }
    )
    anova_rows = []
    for label, rows in type3_hypotheses(design, frame).items():
        row = _f_row(rows, fit, info, df_method)
        if row is not None:
            anova_rows.append({"term": label, **row})
    anova = pd.DataFrame(anova_rows, columns=["term", "df_num", "df_den", "f_value", "p_value"])
    cov_table = pd.DataFrame(fit.sigma, index=pd.Index(visits, name=visit), columns=visits)
    cov_params = pd.DataFrame({"parameter": structure.phi_names(visits), "estimate": info["phi"]})
    details = {
        "model": f"{outcome} ~ {' + '.join(['+'.join(covariates)] if covariates else [])}"
        + ("".join(f" + {c}:{visit}" for c in covariates) if covariates_by_visit and visit_effects else "")
        + f"{' + ' if covariates else ''}{treatment}{' * ' + visit if visit_effects else ''}"
        + (f" + {baseline}{' * ' + visit if visit_effects else ''}" if baseline else ""),
        "covariance": structure.name,
        "estimation": "REML",
        "df_method": df_method,
        "lsmeans_weights": weights,
        "reference": arms[0],
        "visits": [str(v) for v in visits],
        "n_subjects": n_subjects,
        "n_records": len(y),
        "n_missing_outcome_dropped": int(prepared_missing(data, outcome)),
        "n_patterns": n_patterns,
        "neg2_reml": fit.neg2_reml,
        "iterations": fit.n_iter,
        "converged": fit.converged,
        "alpha": alpha,
    }
    if df_method == "kenward-roger":
        details["cov_beta"] = "Kenward-Roger adjusted"
        fit.extras["cov_beta_kr"] = kenward_roger_covariance(fit, info)
    return MMRMResult(
        title=f"MMRM of {outcome} ({structure.name} covariance, {df_method} df)",
        details=details,
        lsmeans=lsmeans,
        contrasts=contrast_table,
        fixed_effects=fixed,
        anova=anova,
        covariance=cov_table,
        covariance_parameters=cov_params,
        neg2_reml=fit.neg2_reml,
        fit=fit,
        design=design,
        information=info,
    )


def _f_row(rows: np.ndarray, fit: RemlFit, info: dict, df_method: str) -> dict | None:
    """``df_num, df_den, f_value, p_value`` of the F test of ``rows @ beta = 0``; None for rank 0."""
    from scipy import stats

    try:
        test = kenward_roger_f(rows, fit, info) if df_method == "kenward-roger" else satterthwaite_f(rows, fit, info)
    except ValueError:
        return None
    p_value = float(stats.f.sf(test["f_value"], test["df_num"], min(test["df_den"], 1e12)))
    return {
        "df_num": test["df_num"],
        "df_den": test["df_den"],
        "f_value": test["f_value"],
        "p_value": p_value,
    }


def reml_inference(
    x: np.ndarray,
    y: np.ndarray,
    subject_codes: np.ndarray,
    within_codes: np.ndarray,
    structure,
    *,
    df_method: str,
    alpha: float,
    label: str,
):
    """Fit by REML and return ``(fit, info, infer, n_patterns)``; ``infer(rows)`` gives t inference."""
    with single_threaded_blas():
        patterns = build_patterns(x, y, subject_codes, within_codes)
        problem = RemlProblem(patterns, structure, len(y), x.shape[1])
        theta0 = structure.theta_from_sigma(
            _start_sigma(x, y, subject_codes, within_codes, structure.n_visits)
        )
        fit = problem.fit(theta0, label=label)
        info = problem.information(fit, second_order=df_method == "kenward-roger")

    def infer(rows: np.ndarray) -> dict[str, np.ndarray]:
        if df_method == "kenward-roger":
            se, df = kenward_roger(rows, fit, info)
        else:
            se, df = satterthwaite(rows, fit, info)
        return t_inference(rows @ fit.beta, se, df, alpha=alpha)

    return fit, info, infer, len(patterns)


def prepared_missing(data: pd.DataFrame, outcome: str) -> int:
    """Number of records whose outcome is missing (dropped under MAR)."""
    return int(pd.to_numeric(data[outcome], errors="coerce").isna().sum())


def _contrast_pairs(arms: list, mode: str) -> list[tuple]:
    if mode == "reference":
        return [(a, arms[0]) for a in arms[1:]]
    if mode == "pairwise":
        return [(arms[j], arms[i]) for i in range(len(arms)) for j in range(i + 1, len(arms))]
    raise DataError(f"contrasts must be 'reference' or 'pairwise', got {mode!r}")


def _visit_levels(data: pd.DataFrame, visit: str, visit_order: Sequence | None) -> list:
    present = data[visit].dropna().unique().tolist()
    if visit_order is not None:
        order = list(visit_order)
        unknown = [v for v in present if v not in order]
        if unknown:
            raise DataError(
                f"visit(s) {', '.join(map(str, unknown))} of column {visit!r} are not in visit_order",
                details=[f"visit_order: {', '.join(map(str, order))}"],
            )
        return [v for v in order if v in present]
    if isinstance(data[visit].dtype, pd.CategoricalDtype):
        return [v for v in data[visit].cat.categories if v in present]
    number = f"{visit}N"
    if number in data.columns and pd.api.types.is_numeric_dtype(data[number]):
        ranks = data.groupby(visit, observed=True)[number].min()
        return sorted(present, key=lambda v: (ranks.get(v, np.inf), str(v)))
    return _checks.natural_sorted(present)


def _prepare(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    visit: str,
    subject: str,
    covariates: Sequence[str],
    baseline: str | None,
    reference: object | None,
    visit_order: Sequence | None,
):
    data = _checks.require_frame(data)
    covariates = list(covariates)
    _checks.require_columns(data, [outcome, treatment, visit, subject, baseline, *covariates])
    y = _checks.require_numeric(data, outcome, role="outcome")
    frame = data.loc[~np.isnan(y)].copy()
    frame[outcome] = y[~np.isnan(y)]
    if frame.empty:
        raise DataError(f"outcome column {outcome!r} has no non-missing values")
    _checks.require_complete(frame, [treatment, visit, subject], id_column=subject, role="design")
    if baseline:
        frame[baseline] = _checks.require_numeric(frame, baseline, role="baseline")
        _checks.require_complete(frame, [baseline], id_column=subject, role="baseline")
    _checks.require_complete(frame, covariates, id_column=subject, role="covariate")
    _checks.require_one_record_per_visit(frame, subject, visit)
    arms = _checks.categorical_levels(frame[treatment], reference, column=treatment)
    if len(arms) < 2:
        raise DataError(
            f"treatment column {treatment!r} has a single arm ({arms[0] if arms else 'none'}) "
            "among records with an outcome; a comparison needs at least two arms"
        )
    visits = _visit_levels(frame, visit, visit_order)
    cat_covs = [c for c in covariates if _checks.is_categorical(frame[c])]
    num_covs = [c for c in covariates if c not in cat_covs]
    for c in num_covs:
        frame[c] = frame[c].astype(float)
    counts = frame.groupby([treatment, visit], observed=True).size()
    for v in visits:
        for arm in arms:
            if counts.get((arm, v), 0) == 0:
                raise DataError(
                    f"visit {v!r} has no {outcome} data in arm {arm!r}",
                    details=[
                        "the treatment-by-visit effect cannot be estimated; drop the visit or check the data"
                    ],
                )
    return frame, arms, visits, cat_covs, num_covs


def _check_rank(x: np.ndarray, design: Design, frame: pd.DataFrame, treatment: str, visit: str) -> None:
    rank = np.linalg.matrix_rank(x)
    if rank < x.shape[1]:
        # name the offending columns: those that are linear combinations of the previous ones
        bad = []
        for j in range(1, x.shape[1] + 1):
            if np.linalg.matrix_rank(x[:, :j]) < j:
                bad.append(design.column_names[j - 1])
                break
        raise DataError(
            "the fixed-effects design is not of full rank (a covariate is constant or confounded)",
            details=[f"first redundant column: {', '.join(bad)}"],
        )


def _start_sigma(
    x: np.ndarray, y: np.ndarray, subject: np.ndarray, visit: np.ndarray, n_visits: int
) -> np.ndarray:
    """Moment estimate of the visit covariance from OLS residuals (pairwise complete), made positive definite."""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    wide = np.full((int(subject.max()) + 1, n_visits), np.nan)
    wide[subject, visit] = resid
    sigma = pd.DataFrame(wide).cov(min_periods=2).to_numpy()
    diag = np.nanvar(wide, axis=0)
    diag = np.where(np.isfinite(diag) & (diag > 0), diag, np.nanmean(resid**2))
    sigma = np.where(np.isfinite(sigma), sigma, 0.0)
    sigma[np.diag_indices(n_visits)] = diag
    vals, vecs = np.linalg.eigh(sigma)
    vals = np.maximum(vals, 1e-3 * vals.max())
    return (vecs * vals) @ vecs.T
