"""Power of the planned MMRM by simulation, under the estimand's assumptions about treatment discontinuation.

Each simulated trial draws every subject's outcomes over the visits from a multivariate normal with the
arm's means and the given covariance. Subjects discontinue treatment at random (cumulative probabilities
per visit, monotone); what their outcomes do afterwards is the estimand's missing-data assumption:

* ``after_discontinuation="MAR"``: they keep their arm's course;
* ``"J2R"``, ``"CR"``, ``"CIR"``: they follow the reference arm as the reference-based assumptions say
  (the outcomes after discontinuation are drawn given those before, with the strategy's mean vector, as
  :func:`toolkit.stats.reference_based_mi` imputes them).

Outcomes after discontinuation are observed for a share ``retrieval`` of the discontinued subjects
(retrieved drop-outs) and missing for the others. The planned analysis, the MMRM under MAR, then uses the
records the estimand's strategy allows: ``strategy="hypothetical"`` drops every record after
discontinuation, ``"treatment-policy"`` keeps the retrieved ones. The result gives the power at the last
visit together with the value of the estimand the data were generated under, the mean estimate and the
coverage of the confidence interval, so a plan whose analysis does not target its estimand shows its bias.

The trials run on every core (a process pool) with a progress bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError

__all__ = ["MMRMPowerResult", "mmrm_power_simulation"]

#: what outcomes do after treatment discontinuation (data generation)
AFTER_DISCONTINUATION = ("MAR", "J2R", "CR", "CIR")
#: what the analysis does with records after discontinuation
ANALYSIS_STRATEGIES = ("hypothetical", "treatment-policy")


@dataclass
class MMRMPowerResult:
    """Simulated power of the MMRM last-visit contrast.

    Attributes
    ----------
    power : float
        Share of trials whose last-visit contrast is significant (failed fits count as not significant).
    mc_se : float
        Monte Carlo standard error of ``power``.
    estimand_value : float
        The treatment - reference difference at the last visit that the data were generated under (the
        target of the estimand: with treatment policy, the course after discontinuation included).
    mean_estimate, coverage : float
        Mean of the estimates and share of confidence intervals that cover ``estimand_value``.
    estimates : DataFrame
        One row per fitted trial: ``simulation, estimate, se, df, p_value, n_discontinued``.
    settings : dict
        The simulation's inputs (seed included), for the record.
    """

    power: float
    mc_se: float
    n_simulations: int
    n_failed_fits: int
    estimates: pd.DataFrame
    estimand_value: float = float("nan")
    mean_estimate: float = float("nan")
    coverage: float = float("nan")
    settings: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: power with its Monte Carlo error, and how well the analysis hits the estimand."""
        return (
            f"simulated power {self.power:.3f} (MC SE {self.mc_se:.3f}) over {self.n_simulations} trials; "
            f"{self.n_failed_fits} failed fits counted as not significant; estimand {self.estimand_value:.4g}, "
            f"mean estimate {self.mean_estimate:.4g}, CI coverage {self.coverage:.3f}"
        )


def mmrm_power_simulation(
    n_per_arm: int,
    *,
    delta_by_visit: Sequence[float],
    covariance: np.ndarray,
    dropout_by_visit: Sequence[float] | None = None,
    after_discontinuation: str = "MAR",
    strategy: str = "hypothetical",
    retrieval: float = 0.0,
    n_simulations: int = 200,
    alpha: float = 0.05,
    seed: int = 20240501,
    structure: str = "unstructured",
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> MMRMPowerResult:
    """Power of the MMRM treatment contrast at the last visit, by simulation.

    Parameters
    ----------
    n_per_arm : int
        Subjects per arm (two arms: reference and treated).
    delta_by_visit : sequence of float
        True treated - reference difference at each visit while on treatment.
    covariance : (T, T) array
        Covariance of the outcome over visits.
    dropout_by_visit : sequence of float, optional
        Cumulative probability of having discontinued treatment by each visit (monotone), e.g.
        ``[0, 0.05, 0.1, 0.15]``; a subject who discontinued by visit k has no on-treatment value from
        visit k on.
    after_discontinuation : {'MAR', 'J2R', 'CR', 'CIR'}
        The estimand's assumption about the outcomes after discontinuation (see the module docstring).
    strategy : {'hypothetical', 'treatment-policy'}
        Records after discontinuation are dropped (hypothetical) or used when observed (treatment
        policy, with retrieved drop-outs).
    retrieval : float
        Share of discontinued subjects whose later visits are still observed.
    n_simulations : int
        Trials simulated.
    alpha : float
        Two-sided level.
    seed : int
        Seed of the NumPy generators (each trial has its own stream, so results do not depend on
        ``n_jobs``).
    structure : str
        Covariance structure fitted to each trial.
    n_jobs : int, optional
        Processes (default: every available core).
    progress : bool, optional
        Show a progress bar (default: when a terminal or notebook is attached).
    """
    from toolkit.stats._covariance import COVARIANCE_STRUCTURES
    from toolkit.stats._parallel import parallel_map

    delta = np.asarray(delta_by_visit, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    t = len(delta)
    if t < 1:
        raise DataError("delta_by_visit needs at least one visit")
    if cov.shape != (t, t):
        raise DataError(f"covariance must be {t} x {t} to match delta_by_visit, got {cov.shape}")
    if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov)[0] <= 0:
        raise DataError("covariance must be symmetric and positive definite")
    if not isinstance(n_per_arm, int | np.integer) or n_per_arm < 3:
        raise DataError(f"n_per_arm must be an integer of at least 3, got {n_per_arm!r}")
    if not isinstance(n_simulations, int | np.integer) or n_simulations < 1:
        raise DataError(f"n_simulations must be a positive integer, got {n_simulations!r}")
    if after_discontinuation not in AFTER_DISCONTINUATION:
        raise DataError(
            f"after_discontinuation must be one of {', '.join(AFTER_DISCONTINUATION)}; got {after_discontinuation!r}"
        )
    if strategy not in ANALYSIS_STRATEGIES:
        raise DataError(f"strategy must be one of {', '.join(ANALYSIS_STRATEGIES)}; got {strategy!r}")
    if not 0 <= retrieval <= 1:
        raise DataError(f"retrieval must lie in [0, 1], got {retrieval!r}")
    if not 0 < alpha < 1:
        raise DataError(f"alpha must lie in (0, 1), got {alpha!r}")
    if str(structure).lower() not in COVARIANCE_STRUCTURES:
        raise DataError(f"unknown covariance structure {structure!r}")
    drop = np.zeros(t) if dropout_by_visit is None else np.asarray(dropout_by_visit, dtype=float)
    if drop.shape != (t,) or np.any(np.diff(drop) < 0) or np.any((drop < 0) | (drop >= 1)):
        raise DataError("dropout_by_visit must be non-decreasing probabilities in [0, 1), one per visit")
    settings = {
        "n_per_arm": int(n_per_arm),
        "delta_by_visit": delta.tolist(),
        "covariance": cov.tolist(),
        "dropout_by_visit": drop.tolist(),
        "after_discontinuation": after_discontinuation,
        "strategy": strategy,
        "retrieval": float(retrieval),
        "alpha": float(alpha),
        "seed": int(seed),
        "structure": str(structure),
    }
    truth = _estimand_value(delta, cov, drop, after_discontinuation, strategy)
    seeds = np.random.SeedSequence(seed).spawn(int(n_simulations))
    rows = parallel_map(
        _one_trial,
        list(enumerate(seeds)),
        initializer=_trial_state,
        initargs=(settings,),
        n_jobs=n_jobs,
        progress=progress,
        description=f"simulating {n_simulations} trials",
    )
    fitted = [r for r in rows if r is not None]
    estimates = pd.DataFrame(
        fitted,
        columns=["simulation", "estimate", "se", "df", "p_value", "n_discontinued", "ci_low", "ci_high"],
    )
    significant = int((estimates["p_value"] < alpha).sum())
    power = significant / n_simulations
    covered = (
        ((estimates["ci_low"] <= truth) & (truth <= estimates["ci_high"])).mean()
        if len(estimates)
        else np.nan
    )
    return MMRMPowerResult(
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n_simulations),
        n_simulations=int(n_simulations),
        n_failed_fits=int(n_simulations) - len(fitted),
        estimates=estimates,
        estimand_value=truth,
        mean_estimate=float(estimates["estimate"].mean()) if len(estimates) else float("nan"),
        coverage=float(covered),
        settings=settings,
    )


def _strategy_mean(delta: np.ndarray, k: int, how: str) -> np.ndarray:
    """Mean of a treated subject (reference mean 0) who discontinued at visit index ``k``."""
    t = len(delta)
    out = delta.copy()
    after = np.arange(t) >= k
    if how == "J2R":
        out[after] = 0.0
    elif how == "CR":
        out[:] = 0.0
    elif how == "CIR":
        out[after] = delta[k - 1] if k > 0 else 0.0
    return out


def _estimand_value(delta: np.ndarray, cov: np.ndarray, drop: np.ndarray, how: str, strategy: str) -> float:
    """Treated - reference difference at the last visit the estimand targets."""
    t = len(delta)
    if strategy == "hypothetical" or how == "MAR":
        return float(delta[-1])
    # P(discontinued first at visit k) from the cumulative probabilities
    first = np.diff(np.r_[0.0, drop])
    value = (1.0 - drop[-1]) * delta[-1]
    for k in range(t):
        if first[k] <= 0:
            continue
        mean = _strategy_mean(delta, k, how)
        if k == 0:
            post = mean[-1]
        else:
            b = np.linalg.solve(cov[:k, :k], cov[:k, t - 1])
            # E[y_T | y_pre] with E[y_pre] = delta[:k] (observed on treatment)
            post = mean[-1] + b @ (delta[:k] - mean[:k])
        value += first[k] * post
    return float(value)


# -- one simulated trial (in a worker process) -------------------------------------------------------------


def _trial_state(settings: dict) -> dict:
    from toolkit.stats._covariance import make_structure
    from toolkit.stats._design import Design

    t = len(settings["delta_by_visit"])
    n = 2 * settings["n_per_arm"]
    arm = np.repeat(["reference", "treated"], settings["n_per_arm"])
    visits = [f"V{k + 1}" for k in range(t)]
    design = Design(
        {"TRT": ["reference", "treated"], "AVISIT": visits}, [], [("TRT",), ("AVISIT",), ("TRT", "AVISIT")]
    )
    x_full = design.matrix({"TRT": np.repeat(arm, t), "AVISIT": np.tile(np.array(visits, dtype=object), n)})
    contrast = np.zeros(design.n_columns)
    contrast[design.column_names.index("TRT[treated]")] = 1.0
    if t > 1:
        contrast[design.column_names.index(f"TRT[treated]:AVISIT[{visits[-1]}]")] = 1.0
    state = {
        **settings,
        "t": t,
        "n": n,
        "treated": arm == "treated",
        "x_full": x_full,
        "contrast": contrast,
        "structure_obj": make_structure(settings["structure"], t),
    }
    # one complete trial, the same in every worker, gives the optimiser's preconditioner (every trial has
    # this design, so the Hessian's scale carries over and results do not depend on the worker)
    rng = np.random.default_rng(settings["seed"])
    cov = np.asarray(settings["covariance"])
    y = rng.standard_normal((n, t)) @ np.linalg.cholesky(cov).T
    y += np.where(arm == "treated", 1.0, 0.0)[:, None] * np.asarray(settings["delta_by_visit"])
    try:
        state["scale"] = _fit_trial(
            state, x_full, y.ravel(), np.repeat(np.arange(n), t), np.tile(np.arange(t), n)
        )[2]
    except (ArithmeticError, ValueError, np.linalg.LinAlgError, DataError):
        state["scale"] = None  # an unlucky preconditioning trial only costs speed
    return state


def _one_trial(state: dict, task: tuple[int, np.random.SeedSequence]) -> dict | None:
    from toolkit.stats._ddf import satterthwaite
    from toolkit.stats.errors import ModelFitError

    sim, seq = task
    rng = np.random.default_rng(seq)
    t, n, treated = state["t"], state["n"], state["treated"]
    delta = np.asarray(state["delta_by_visit"])
    cov = np.asarray(state["covariance"])
    drop = np.asarray(state["dropout_by_visit"])
    how = state["after_discontinuation"]
    # index of the first visit after discontinuation (t: never discontinued)
    k = np.sum(rng.uniform(size=n)[:, None] >= drop[None, :], axis=1)
    mean = np.where(treated[:, None], delta[None, :], 0.0)
    y = rng.standard_normal((n, t)) @ np.linalg.cholesky(cov).T + mean
    if how != "MAR":
        for kk in np.unique(k[treated & (k < t)]):
            members = np.flatnonzero(treated & (k == kk))
            target = _strategy_mean(delta, int(kk), how)
            post = np.arange(int(kk), t)
            if kk == 0:
                y[members] = y[members] - delta + target
                continue
            pre = np.arange(int(kk))
            b = np.linalg.solve(cov[np.ix_(pre, pre)], cov[np.ix_(pre, post)])  # (k, T-k)
            resid = y[np.ix_(members, post)] - (delta[post] + (y[np.ix_(members, pre)] - delta[pre]) @ b)
            # same conditional spread, the strategy's conditional mean
            y[np.ix_(members, post)] = target[post] + (y[np.ix_(members, pre)] - target[pre]) @ b + resid
    on_treatment = np.arange(t)[None, :] < k[:, None]
    retrieved = rng.uniform(size=n) < state["retrieval"]
    if state["strategy"] == "treatment-policy":
        observed = on_treatment | retrieved[:, None]
    else:
        observed = on_treatment
    obs = observed.ravel()
    subject = np.repeat(np.arange(n), t)[obs]
    visit = np.tile(np.arange(t), n)[obs]
    x = state["x_full"][obs]
    if len(np.unique(subject)) < 3 or not (observed[treated, -1].any() and observed[~treated, -1].any()):
        return None
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return None
    try:
        fit, info, _ = _fit_trial(state, x, y.ravel()[obs], subject, visit)
    except (ModelFitError, np.linalg.LinAlgError):
        return None
    contrast = state["contrast"]
    se, df = satterthwaite(contrast[None, :], fit, info)
    estimate = float(contrast @ fit.beta)
    quantile = stats.t.ppf(1 - state["alpha"] / 2, df[0])
    return {
        "simulation": sim,
        "estimate": estimate,
        "se": float(se[0]),
        "df": float(df[0]),
        "p_value": float(2 * stats.t.sf(abs(estimate / se[0]), df[0])),
        "n_discontinued": int((k < t).sum()),
        "ci_low": estimate - quantile * float(se[0]),
        "ci_high": estimate + quantile * float(se[0]),
    }


def _fit_trial(state: dict, x: np.ndarray, y: np.ndarray, subject: np.ndarray, visit: np.ndarray):
    """REML fit of one trial started at the generating covariance; returns ``(fit, info, scale)`` with
    the inverse Cholesky factor of the Hessian at the optimum (used as ``state["scale"]``)."""
    from toolkit.stats._blas import single_threaded_blas
    from toolkit.stats._reml import RemlProblem, build_patterns

    structure = state["structure_obj"]
    with single_threaded_blas():
        problem = RemlProblem(build_patterns(x, y, subject, visit), structure, len(y), x.shape[1])
        theta0 = structure.theta_from_sigma(np.asarray(state["covariance"]))
        scale = state.get("scale")
        fit = problem.fit(theta0, label="simulated MMRM", scale=scale)
        if "scale" not in state:
            scale = problem.hessian_scale(fit.theta)
        info = problem.information(fit)
    return fit, info, scale
