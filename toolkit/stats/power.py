"""Power and sample size for the primary endpoint.

ANCOVA (analytic): adjusting for a baseline that correlates rho with the outcome leaves a residual variance
sigma^2 (1 - rho^2), so the two-sample t-test power formula applies with that variance and one degree of
freedom less per covariate (Borm, Fransen & Lemmens 2007, doi:10.1016/j.jclinepi.2007.02.006). Power uses
the noncentral t distribution, not the normal approximation, so small trials are not overstated.

MMRM power by simulation, under the estimand's assumptions about what happens after treatment
discontinuation, is in :mod:`toolkit.stats.power_simulation`.
"""

from __future__ import annotations

import math

from scipy import stats

from toolkit.errors import DataError

__all__ = ["ancova_power", "ancova_sample_size"]


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
