"""Split-face designs: each subject receives both treatments, one per side of the face.

The sides are compared within subject with a linear mixed model that has a random subject intercept,
fitted by REML. With two records per subject the random intercept is the same as a compound-symmetry
covariance over the two sides; the compound-symmetry form is used so that a negative within-subject
correlation (possible, e.g. when sides compete) is estimated rather than truncated at zero, as SAS
``TYPE=CS`` does. With complete pairs and no covariates the treatment contrast equals the paired t-test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats._covariance import CompoundSymmetry
from toolkit.stats._design import Design, margin_rows
from toolkit.stats._reml import RemlFit
from toolkit.stats.mmrm import DF_METHODS, _contrast_pairs, reml_inference
from toolkit.stats.results import AnalysisResult

__all__ = ["SplitFaceResult", "splitface"]


@dataclass
class SplitFaceResult(AnalysisResult):
    """Result of :func:`splitface`: ``lsmeans``, ``contrasts``, ``fixed_effects``, ``variance_components``."""

    lsmeans: pd.DataFrame = field(default_factory=pd.DataFrame)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    fixed_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    variance_components: pd.DataFrame = field(default_factory=pd.DataFrame)
    fit: RemlFit | None = None

    def __post_init__(self) -> None:
        self.table_names = ("lsmeans", "contrasts", "fixed_effects", "variance_components")


def splitface(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    subject: str,
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    reference: object | None = None,
    df_method: str = "satterthwaite",
    alpha: float = 0.05,
) -> SplitFaceResult:
    """Within-subject comparison of treatments applied to different sides of the face.

    Model: ``outcome ~ covariates + baseline + treatment + (1 | subject)`` by REML.

    Parameters
    ----------
    data : DataFrame
        One record per subject and side (treatment), e.g. ``USUBJID, SIDE, TRTP, CHG, BASE``.
    outcome, treatment, subject : str
        Column names; ``outcome`` numeric.
    baseline : str, optional
        Side-level baseline value (numeric covariate).
    covariates : sequence of str
        Further covariates (numeric, or categorical by dtype).
    reference : optional
        Reference treatment (default: first in sorted order).
    df_method : {'satterthwaite', 'kenward-roger'}
        Degrees-of-freedom method.
    alpha : float
        1 - confidence level.

    Returns
    -------
    SplitFaceResult

    Raises
    ------
    DataError
        Unknown columns, a single treatment, a subject with the same treatment on two sides, no subject
        with both treatments, missing baselines.
    """
    if df_method not in DF_METHODS:
        raise DataError(f"df_method must be one of {', '.join(DF_METHODS)}; got {df_method!r}")
    data = _checks.require_frame(data)
    covariates = list(covariates)
    _checks.require_columns(data, [outcome, treatment, subject, baseline, *covariates])
    y_all = _checks.require_numeric(data, outcome, role="outcome")
    frame = data.loc[~np.isnan(y_all)].copy()
    frame[outcome] = y_all[~np.isnan(y_all)]
    if baseline:
        frame[baseline] = _checks.require_numeric(frame, baseline, role="baseline")
    _checks.require_complete(
        frame,
        [treatment, subject, *([baseline] if baseline else []), *covariates],
        id_column=subject,
        role="model",
    )
    arms = _checks.categorical_levels(frame[treatment], reference, column=treatment)
    if len(arms) < 2:
        raise DataError(
            f"treatment column {treatment!r} has a single treatment; a split-face comparison needs two"
        )
    dup = frame.duplicated([subject, treatment])
    if dup.any():
        who = frame.loc[dup, subject].astype(str).unique()[:5]
        raise DataError(
            f"subject(s) {', '.join(who)} have the same {treatment!r} on more than one side",
            details=["a split-face record set has one record per subject and treatment"],
        )
    per_subject = frame.groupby(subject)[treatment].nunique()
    n_paired = int((per_subject >= 2).sum())
    if n_paired < 2:
        raise DataError(
            f"only {n_paired} subject(s) have records for both treatments; a within-subject comparison needs "
            "at least two complete pairs"
        )
    factors = {treatment: arms}
    numerics = []
    for c in covariates:
        if _checks.is_categorical(frame[c]):
            factors[c] = _checks.categorical_levels(frame[c], column=c)
        else:
            frame[c] = frame[c].astype(float)
            numerics.append(c)
    terms = [(c,) for c in covariates]
    if baseline:
        numerics.append(baseline)
        terms.append((baseline,))
    terms.append((treatment,))
    design = Design(factors, numerics, terms)
    x = design.matrix(frame)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise DataError("the split-face design is not of full rank (a covariate is constant or confounded)")
    y = frame[outcome].to_numpy(dtype=float)
    subj = pd.factorize(frame[subject])[0]
    within = pd.Categorical(frame[treatment], categories=arms).codes.astype(int)
    structure = CompoundSymmetry(len(arms))
    fit, info, infer, _ = reml_inference(
        x,
        y,
        subj,
        within,
        structure,
        df_method=df_method,
        alpha=alpha,
        label=f"split-face model of {outcome}",
    )
    fe = infer(np.eye(x.shape[1]))
    fixed = pd.DataFrame(
        {"term": design.column_names, **{k: fe[k] for k in ("estimate", "se", "df", "statistic", "p_value")}}
    )
    rows = np.vstack([margin_rows(design, frame, {treatment: a}, weights="proportional") for a in arms])
    ls = infer(rows)
    lsmeans = pd.DataFrame(
        {"treatment": arms, **{k: ls[k] for k in ("estimate", "se", "df", "ci_low", "ci_high")}}
    )
    pairs = _contrast_pairs(arms, "reference")
    ct = infer(np.vstack([rows[arms.index(a)] - rows[arms.index(b)] for a, b in pairs]))
    contrasts = pd.DataFrame(
        {
            "contrast": [f"{a} - {b}" for a, b in pairs],
            **{k: ct[k] for k in ("estimate", "se", "df", "ci_low", "ci_high", "statistic", "p_value")},
        }
    )
    subject_var, residual_var = info["phi"]
    components = pd.DataFrame(
        {
            "component": ["subject", "residual (within subject)"],
            "estimate": [subject_var, residual_var],
        }
    )
    details = {
        "model": f"{outcome} ~ {' + '.join([*covariates, *([baseline] if baseline else []), treatment])} + (1 | {subject})",
        "estimation": "REML (compound symmetry within subject)",
        "df_method": df_method,
        "reference": arms[0],
        "n_subjects": int(subj.max()) + 1,
        "n_complete_pairs": n_paired,
        "n_records": len(y),
        "within_subject_correlation": float(subject_var / (subject_var + residual_var)),
        "neg2_reml": fit.neg2_reml,
        "alpha": alpha,
    }
    return SplitFaceResult(
        title=f"Split-face comparison of {outcome}",
        details=details,
        lsmeans=lsmeans,
        contrasts=contrasts,
        fixed_effects=fixed,
        variance_components=components,
        fit=fit,
    )
