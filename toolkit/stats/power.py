"""Power and sample size for the primary endpoint.

ANCOVA (analytic): adjusting for a baseline that correlates rho with the outcome leaves a residual variance
sigma^2 (1 - rho^2), so the two-sample t-test power formula applies with that variance and one degree of
freedom less per covariate (Borm, Fransen & Lemmens 2007, doi:10.1016/j.jclinepi.2007.02.006). Power uses
the noncentral t distribution, not the normal approximation, so small trials are not overstated.

MMRM (simulation): data are drawn from a multivariate normal over visits with the given covariance, mean
differences and dropout, each replicate is fitted with :func:`toolkit.stats.mmrm`, and power is the share
of replicates whose last-visit contrast is significant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError

__all__ = ["MMRMPowerResult", "ancova_power", "ancova_sample_size", "mmrm_power_simulation"]


def _check_common(delta: float, sd: float, rho: float, alpha: float, allocation: float) -> None:
    if not sd > 0:
        raise DataError(f"sd must be positive, got {sd}")
    if delta == 0:
        raise DataError("delta (the difference to detect) must not be 0")
    if not -1 < rho < 1:
        raise DataError(f"rho (baseline-outcome correlation) must lie in (-1, 1), got {rho}")
    if not 0 < alpha < 1:
        raise DataError(f"alpha must lie in (0, 1), got {alpha}")
    if not allocation > 0:
        raise DataError(f"allocation (n_treated / n_reference) must be positive, got {allocation}")


def ancova_power(
    n_per_arm: int,
    *,
    delta: float,
    sd: float,
    rho: float = 0.0,
    alpha: float = 0.05,
    allocation: float = 1.0,
    n_covariates: int = 1,
) -> float:
    """Power of the two-sided ANCOVA test of a treatment difference ``delta``.

    Parameters
    ----------
    n_per_arm : int
        Subjects in the reference arm; the treated arm has ``round(allocation * n_per_arm)``.
    delta : float
        True difference of means (outcome units).
    sd : float
        Standard deviation of the outcome (unadjusted).
    rho : float
        Correlation between baseline and outcome; the residual sd is ``sd * sqrt(1 - rho**2)``.
    alpha : float
        Two-sided significance level.
    allocation : float
        Ratio n_treated / n_reference.
    n_covariates : int
        Covariate degrees of freedom in the model (1 for the baseline alone); ``0`` gives the t-test.
    """
    _check_common(delta, sd, rho, alpha, allocation)
    n0 = int(n_per_arm)
    n1 = int(round(allocation * n0))
    df = n0 + n1 - 2 - int(n_covariates)
    if n0 < 2 or n1 < 2 or df < 1:
        raise DataError(
            f"too few subjects for the ANCOVA: {n0} and {n1} per arm with {n_covariates} covariate(s)"
        )
    sd_adj = sd * math.sqrt(1.0 - rho**2)
    nc = abs(delta) / (sd_adj * math.sqrt(1.0 / n0 + 1.0 / n1))
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def ancova_sample_size(
    *,
    delta: float,
    sd: float,
    rho: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 1.0,
    n_covariates: int = 1,
    dropout: float = 0.0,
) -> dict[str, float]:
    """Smallest sample size reaching ``power`` for the ANCOVA, inflated for ``dropout``.

    Returns
    -------
    dict
        ``n_reference, n_treated`` (evaluable), ``n_total_enrolled`` (after dropout inflation),
        ``power`` (achieved), ``sd_adjusted``.
    """
    _check_common(delta, sd, rho, alpha, allocation)
    if not 0 < power < 1:
        raise DataError(f"power must lie in (0, 1), got {power}")
    if not 0 <= dropout < 1:
        raise DataError(f"dropout must lie in [0, 1), got {dropout}")
    sd_adj = sd * math.sqrt(1.0 - rho**2)
    # normal-approximation start, then step up with the exact noncentral-t power
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n0 = max(2, int(math.floor((1 + 1 / allocation) * (z * sd_adj / delta) ** 2)) - 2)
    while (
        ancova_power(
            n0, delta=delta, sd=sd, rho=rho, alpha=alpha, allocation=allocation, n_covariates=n_covariates
        )
        < power
    ):
        n0 += 1
    n1 = int(round(allocation * n0))
    achieved = ancova_power(
        n0, delta=delta, sd=sd, rho=rho, alpha=alpha, allocation=allocation, n_covariates=n_covariates
    )
    enrolled = math.ceil(n0 / (1 - dropout)) + math.ceil(n1 / (1 - dropout))
    return {
        "n_reference": n0,
        "n_treated": n1,
        "n_total_enrolled": enrolled,
        "power": achieved,
        "sd_adjusted": sd_adj,
    }


@dataclass
class MMRMPowerResult:
    """Simulated power of the MMRM last-visit contrast."""

    power: float
    #: Monte Carlo standard error of ``power``
    mc_se: float
    n_simulations: int
    n_failed_fits: int
    estimates: pd.DataFrame

    def summary(self) -> str:
        """One line: power with its Monte Carlo error."""
        return (
            f"simulated power {self.power:.3f} (MC SE {self.mc_se:.3f}) over {self.n_simulations} "
            f"replicates; {self.n_failed_fits} failed fits counted as not significant"
        )


def mmrm_power_simulation(
    n_per_arm: int,
    *,
    delta_by_visit: Sequence[float],
    covariance: np.ndarray,
    dropout_by_visit: Sequence[float] | None = None,
    n_simulations: int = 200,
    alpha: float = 0.05,
    seed: int = 20240501,
    structure: str = "unstructured",
) -> MMRMPowerResult:
    """Power of the MMRM treatment contrast at the last visit by simulation.

    Parameters
    ----------
    n_per_arm : int
        Subjects per arm.
    delta_by_visit : sequence of float
        True treatment - reference difference at each visit.
    covariance : (T, T) array
        Covariance of the outcome over visits.
    dropout_by_visit : sequence of float, optional
        Cumulative probability of having dropped out by each visit (monotone missingness), e.g.
        ``[0, 0.05, 0.1, 0.15]``.
    n_simulations : int
        Replicates.
    alpha : float
        Two-sided level.
    seed : int
        Seed of the NumPy generator (recorded for reproducibility).
    structure : str
        Covariance structure fitted to each replicate.
    """
    from toolkit.stats._covariance import make_structure
    from toolkit.stats._ddf import satterthwaite
    from toolkit.stats._design import Design
    from toolkit.stats.errors import ModelFitError
    from toolkit.stats.mmrm import reml_inference

    delta = np.asarray(delta_by_visit, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    t = len(delta)
    if cov.shape != (t, t):
        raise DataError(f"covariance must be {t} x {t} to match delta_by_visit, got {cov.shape}")
    if np.linalg.eigvalsh(cov)[0] <= 0:
        raise DataError("covariance must be positive definite")
    if n_per_arm < 3:
        raise DataError("n_per_arm must be at least 3")
    if n_simulations < 1:
        raise DataError("n_simulations must be at least 1")
    drop = np.zeros(t) if dropout_by_visit is None else np.asarray(dropout_by_visit, dtype=float)
    if drop.shape != (t,) or np.any(np.diff(drop) < 0) or np.any((drop < 0) | (drop >= 1)):
        raise DataError("dropout_by_visit must be non-decreasing probabilities in [0, 1), one per visit")
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(cov)
    n = 2 * n_per_arm
    arm = np.repeat(["reference", "treated"], n_per_arm)
    visits = [f"V{k + 1}" for k in range(t)]
    # the design of the complete data is built once; each replicate keeps the rows it observed
    design = Design(
        {"TRT": ["reference", "treated"], "AVISIT": visits}, [], [("TRT",), ("AVISIT",), ("TRT", "AVISIT")]
    )
    x_full = design.matrix({"TRT": np.repeat(arm, t), "AVISIT": np.tile(np.array(visits, dtype=object), n)})
    subject_full = np.repeat(np.arange(n), t)
    visit_full = np.tile(np.arange(t), n)
    # last-visit contrast: treated - reference at visit t
    contrast = np.zeros(design.n_columns)
    contrast[design.column_names.index("TRT[treated]")] = 1.0
    if t > 1:
        contrast[design.column_names.index(f"TRT[treated]:AVISIT[{visits[-1]}]")] = 1.0
    structure_obj = make_structure(structure, t)
    significant, failed, rows = 0, 0, []
    for sim in range(n_simulations):
        y = rng.standard_normal((n, t)) @ chol.T + np.where(arm == "treated", 1.0, 0.0)[:, None] * delta
        # a subject whose uniform falls below drop[k] has left before visit k (monotone dropout)
        observed = (np.arange(t)[None, :] < _dropout_last(drop, rng.uniform(size=n))[:, None]).ravel()
        keep = observed & np.isin(subject_full, subject_full[observed])
        x, yy = x_full[keep], y.ravel()[keep]
        arms_at_last = set(arm[subject_full[keep & (visit_full == t - 1)]])
        if len(arms_at_last) < 2 or np.linalg.matrix_rank(x) < x.shape[1]:
            failed += 1
            continue
        try:
            fit, info, _, _ = reml_inference(
                x,
                yy,
                subject_full[keep],
                visit_full[keep],
                structure_obj,
                df_method="satterthwaite",
                alpha=alpha,
                label="simulated MMRM",
            )
        except ModelFitError:
            failed += 1
            continue
        se, df = satterthwaite(contrast[None, :], fit, info)
        estimate = float(contrast @ fit.beta)
        p_value = float(2 * stats.t.sf(abs(estimate / se[0]), df[0]))
        significant += p_value < alpha
        rows.append(
            {
                "simulation": sim,
                "estimate": estimate,
                "se": float(se[0]),
                "df": float(df[0]),
                "p_value": p_value,
            }
        )
    power = significant / n_simulations
    return MMRMPowerResult(
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n_simulations),
        n_simulations=n_simulations,
        n_failed_fits=failed,
        estimates=pd.DataFrame(rows),
    )


def _dropout_last(drop: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Number of visits observed: visits k with u >= drop[k] (drop is cumulative and non-decreasing)."""
    return np.sum(u[:, None] >= drop[None, :], axis=1)
