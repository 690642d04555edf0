"""Reference-based multiple imputation and tipping-point analysis: sensitivity analyses of an MMRM under MAR.

After an intercurrent event (treatment discontinuation, withdrawal ...) a subject's missing outcomes are
imputed under an assumption about what happened to them: missing at random (MAR), jump to reference (J2R),
copy reference (CR) or copy increments in reference (CIR) (Carpenter, Roger & Kenward 2013). The
imputation model is the MMRM; each completed dataset is analysed by an ANCOVA per visit, as R's ``rbmi``
does (Gower-Page et al. 2022), with two inference methods:

* ``method="approximate-bayesian"``: each imputation draws the model's parameters from a bootstrap fit
  (stratified by arm) and the missing values at random from their conditional distribution; estimates are
  combined by Rubin's rules with Barnard–Rubin degrees of freedom (information-anchored variance);
* ``method="conditional-mean"``: the missing values are replaced by their conditional means under the
  REML estimate; the standard error comes from the jackknife (leave one subject out) or the bootstrap
  (frequentist variance; Wolbers et al. 2022). Under MAR it reproduces the MMRM estimate exactly.

:func:`toolkit.stats.tipping_point` adds a shift delta to the values imputed after an event in an active
arm over a grid and reports where the conclusion changes.

References
----------
Carpenter, J. R., Roger, J. H. & Kenward, M. G. (2013). Analysis of longitudinal trials with protocol
deviation: a framework for relevant, accessible assumptions, and inference via multiple imputation.
J Biopharm Stat 23(6), 1352–1371. doi:10.1080/10543406.2013.834911

Wolbers, M. et al. (2022). Standard and reference-based conditional mean imputation. Pharm Stat 21(6),
1246–1257. doi:10.1002/pst.2234

Barnard, J. & Rubin, D. B. (1999). Small-sample degrees of freedom with multiple imputation. Biometrika
86(4), 948–955. doi:10.1093/biomet/86.4.948
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toolkit.errors import DataError
from toolkit.stats import _checks
from toolkit.stats._imputation import (
    STRATEGIES,
    Grid,
    ImputationModel,
    VisitAncova,
    at_delta,
    fit_with_retries,
    stack_pieces,
)
from toolkit.stats._parallel import parallel_map
from toolkit.stats.errors import AnalysisWarning
from toolkit.stats.results import AnalysisResult, t_inference

__all__ = ["METHODS", "STRATEGIES", "ReferenceBasedResult", "reference_based_mi"]

#: accepted inference methods
METHODS = ("approximate-bayesian", "conditional-mean")
#: resampling schemes of conditional mean imputation
RESAMPLING = ("jackknife", "bootstrap")
#: fewer imputations than this draw a warning (Monte Carlo error of Rubin's variance)
RECOMMENDED_IMPUTATIONS = 100


@dataclass
class ReferenceBasedResult(AnalysisResult):
    """Result of :func:`reference_based_mi`.

    Attributes
    ----------
    contrasts : DataFrame
        ``visit, contrast, estimate, se, df, ci_low, ci_high, statistic, p_value`` (arm - control).
    lsmeans : DataFrame
        ``treatment, visit, estimate, se, df, ci_low, ci_high``.
    events : DataFrame
        One row per subject with an intercurrent event: subject, arm, first visit affected, strategy,
        reference arm, imputed values, observed values after the event.
    """

    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    lsmeans: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.table_names = ("contrasts", "lsmeans", "events")

    def at_delta(self, delta: float | Mapping[str, float]) -> ReferenceBasedResult:
        """The same imputations analysed with ``delta`` added to the values imputed after an event in the
        active arm(s): one number for every active arm, or arm -> delta (no new imputation)."""
        grid = self._state["grid"]
        vector = _delta_vector(grid, delta)
        contrasts, lsmeans = _tables(self._state, vector)
        details = {**self.details, "delta": {str(a): float(v) for a, v in zip(grid.arms[1:], vector, strict=True)}}
        return ReferenceBasedResult(
            title=self.title,
            details=details,
            contrasts=contrasts,
            lsmeans=lsmeans,
            events=self.events,
            _state=self._state,
        )


def reference_based_mi(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    visit: str,
    subject: str,
    reference: str | Mapping[str, str],
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    strategy: str = "J2R",
    events: pd.DataFrame | None = None,
    control: str | None = None,
    method: str = "approximate-bayesian",
    n_imputations: int = 200,
    resampling: str = "jackknife",
    n_bootstrap: int = 500,
    ci: str = "normal",
    delta: float | Mapping[str, float] = 0.0,
    alpha: float = 0.05,
    seed: int = 20240601,
    visit_order: Sequence | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> ReferenceBasedResult:
    """Reference-based multiple imputation of an MMRM's missing outcomes, analysed by ANCOVA per visit.

    Parameters
    ----------
    data : DataFrame
        Long form, one record per subject and visit (missing records or a missing outcome both count as
        missing); post-baseline visits only.
    outcome, treatment, visit, subject : str
        Column names (``CHG, TRTP, AVISIT, USUBJID``).
    reference : str or mapping
        The reference arm of every arm (``"SHAM"``), or arm -> reference arm (``{"EP": "SHAM", "MC":
        "SHAM", "SHAM": "SHAM"}``); an arm missing from the mapping is its own reference.
    baseline : str, optional
        Baseline value (enters with its interaction with visit, and in the ANCOVA).
    covariates : sequence of str
        Subject-level covariates (with their interaction with visit; main effects in the ANCOVA).
    strategy : {'J2R', 'CR', 'CIR', 'MAR'}
        Strategy of the subjects whose outcomes stop before the last visit, when ``events`` is not given
        (their event is at the first visit of the final run of missing visits; an intermittent gap is MAR).
    events : DataFrame, optional
        Intercurrent events: columns ``subject`` and ``visit`` (named as in ``data``, the first visit
        affected) and ``strategy``. Observed records after an event with a reference-based strategy are
        left out of the imputation model but kept in the analysis.
    control : str, optional
        Comparator of the contrasts (default: the reference arm).
    method : {'approximate-bayesian', 'conditional-mean'}
        Rubin's rules over ``n_imputations`` bootstrap-based imputations, or conditional mean imputation
        with ``resampling`` standard errors.
    n_imputations : int
        Imputations of the approximate Bayesian method (at least 2; fewer than 100 warn).
    resampling : {'jackknife', 'bootstrap'}
        Standard errors of conditional mean imputation.
    n_bootstrap : int
        Bootstrap samples (conditional mean with ``resampling="bootstrap"``).
    ci : {'normal', 'percentile'}
        Bootstrap interval (conditional mean with the bootstrap).
    delta : float or mapping
        Added to every value imputed after an event in the active arm(s): one number for all, or arm ->
        delta (see :func:`tipping_point`).
    alpha : float
        1 - confidence level.
    seed : int
        Seed of the resampling and the random imputations.
    visit_order : sequence, optional
        Visit order (default as :func:`toolkit.stats.mmrm`).
    n_jobs : int, optional
        Processes (default: every available core; 1 runs here).
    progress : bool, optional
        Show a progress bar (default: when a terminal or a notebook is attached).

    Returns
    -------
    ReferenceBasedResult

    Raises
    ------
    DataError
        Unknown columns or arms, a reference arm that does not exist, an unknown strategy or method, too
        few imputations, an event at a visit the data do not have.
    ModelFitError
        The imputation model cannot be fitted to the data.
    """
    if method not in METHODS:
        raise DataError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "conditional-mean" and resampling not in RESAMPLING:
        raise DataError(f"resampling must be one of {', '.join(RESAMPLING)}; got {resampling!r}")
    if ci not in ("normal", "percentile"):
        raise DataError(f"ci must be 'normal' or 'percentile'; got {ci!r}")
    if not 0 < alpha < 1:
        raise DataError(f"alpha must lie in (0, 1); got {alpha!r}")
    n_warnings: list[str] = []
    if method == "approximate-bayesian":
        _check_count("n_imputations", n_imputations, RECOMMENDED_IMPUTATIONS, n_warnings)
    elif resampling == "bootstrap":
        _check_count("n_bootstrap", n_bootstrap, 200, n_warnings)
    grid = _grid(
        data,
        outcome=outcome,
        treatment=treatment,
        visit=visit,
        subject=subject,
        baseline=baseline,
        covariates=list(covariates),
        reference=reference,
        strategy=strategy,
        events=events,
        control=control,
        visit_order=visit_order,
    )
    model = ImputationModel(grid)
    beta, sigma, theta, scale = model.full_fit(label=f"imputation model of {outcome}")
    ancova = VisitAncova(grid)
    delta_cells = _delta_cells(grid)
    state: dict[str, Any] = {"grid": grid, "alpha": alpha, "ci": ci, "delta_cells": delta_cells}
    mode = "mi" if method == "approximate-bayesian" else resampling
    state["full"] = ancova.pieces(model.impute(beta, sigma), delta_cells.astype(float))
    delta_vector = _delta_vector(grid, delta)
    if mode == "mi":
        tasks = list(np.random.SeedSequence(seed).spawn(n_imputations))
        label = f"imputing {outcome} ({n_imputations} imputations)"
    elif mode == "jackknife":
        tasks = list(range(grid.n))
        label = f"jackknife of {outcome} ({grid.n} subjects)"
    else:
        tasks = list(np.random.SeedSequence(seed).spawn(n_bootstrap))
        label = f"bootstrap of {outcome} ({n_bootstrap} samples)"
    replicates = parallel_map(
        _replicate,
        tasks,
        initializer=_worker_state,
        initargs=(grid, theta, scale, mode),
        n_jobs=n_jobs,
        progress=progress,
        description=label,
    )
    failures = int(sum(r.pop("failures") for r in replicates))
    state["replicates"] = stack_pieces(replicates)
    state["mode"] = mode
    contrasts, lsmeans = _tables(state, delta_vector)
    strategies = pd.Series(grid.strategy[grid.event_index < grid.t]).value_counts().to_dict()
    details = {
        "imputation_model": f"{outcome} ~ {treatment} * {visit}"
        + (f" + {baseline} * {visit}" if baseline else "")
        + "".join(f" + {c} * {visit}" for c in covariates)
        + " (unstructured covariance, REML)",
        "analysis_model": f"ANCOVA per visit: {outcome} ~ {treatment}"
        + (f" + {baseline}" if baseline else "")
        + "".join(f" + {c}" for c in covariates),
        "method": method if mode == "mi" else f"conditional mean imputation, {resampling}",
        "inference": "Rubin's rules, Barnard-Rubin df"
        if mode == "mi"
        else (
            "jackknife standard errors, normal intervals"
            if mode == "jackknife"
            else f"bootstrap, {ci} intervals"
        ),
        "n_imputations" if mode == "mi" else "n_resamples": len(tasks),
        "failed_bootstrap_fits_redrawn": failures,
        "reference": {str(k): str(v) for k, v in grid.reference.items()},
        "control": grid.arms[0],
        "strategies": {str(k): int(v) for k, v in strategies.items()},
        "n_subjects": grid.n,
        "n_imputed_values": int(grid.missing.sum()),
        "delta": {str(a): float(v) for a, v in zip(grid.arms[1:], delta_vector, strict=True)},
        "seed": seed,
        "alpha": alpha,
    }
    if n_warnings:
        details["warnings"] = n_warnings
    return ReferenceBasedResult(
        title=f"Reference-based multiple imputation of {outcome} ({details['method']})",
        details=details,
        contrasts=contrasts,
        lsmeans=lsmeans,
        events=_event_table(grid, subject, visit),
        _state=state,
    )


def _check_count(name: str, value: int, recommended: int, notes: list[str]) -> None:
    if not isinstance(value, int | np.integer) or value < 2:
        raise DataError(f"{name} must be an integer of at least 2; got {value!r}")
    if value < recommended:
        message = (
            f"{name} = {value} is below {recommended}: the Monte Carlo error of the estimate and its "
            "standard error may be material"
        )
        notes.append(message)
        warnings.warn(message, AnalysisWarning, stacklevel=3)


# -- work done per imputation or resample (in worker processes) ------------------------------------------


def _delta_cells(grid: Grid) -> np.ndarray:
    """(n, T, K): values imputed after an intercurrent event, per active arm (K = arms but the control)."""
    return np.stack([grid.delta_mask & (grid.arm == a)[:, None] for a in grid.arms[1:]], axis=-1)


def _delta_vector(grid: Grid, delta: float | Mapping[str, float]) -> np.ndarray:
    """The delta of each active arm: one number for all, or arm -> delta (arms not named: 0)."""
    active = list(grid.arms[1:])
    if isinstance(delta, Mapping):
        unknown = [a for a in delta if a not in active]
        if unknown:
            raise DataError(
                f"delta names arm(s) {', '.join(map(repr, unknown))} that are not active arms of the analysis",
                details=[f"active arms: {', '.join(map(str, active))} (the control {grid.arms[0]!r} has no delta)"],
            )
        return np.array([float(delta.get(a, 0.0)) for a in active])
    value = float(delta)
    if not np.isfinite(value):
        raise DataError(f"delta must be a finite number; got {delta!r}")
    return np.full(len(active), value)


def _worker_state(grid: Grid, theta: np.ndarray, scale: np.ndarray | None, mode: str) -> dict[str, Any]:
    model = ImputationModel(grid)
    ancova = VisitAncova(grid)
    d = _delta_cells(grid).astype(float)
    return {"model": model, "ancova": ancova, "theta": theta, "scale": scale, "mode": mode, "d": d}


def _replicate(shared: dict[str, Any], task: Any) -> dict[str, np.ndarray]:
    model, ancova, theta, d = shared["model"], shared["ancova"], shared["theta"], shared["d"]
    mode, scale = shared["mode"], shared["scale"]
    if mode == "jackknife":
        weights = np.ones(model.grid.n)
        weights[int(task)] = 0.0
        beta, sigma, _ = model.fit(weights, theta, label="jackknife imputation model", scale=scale)
        out = ancova.pieces(model.impute(beta, sigma), d, weights)
        out["failures"] = 0
        return out
    rng = np.random.default_rng(task)
    # a parameter draw needs no more precision than the bootstrap's own spread; a bootstrap SE does
    tolerance = "draw" if mode == "mi" else "strict"
    weights, beta, sigma, _, failures = fit_with_retries(model, rng, theta, scale, tolerance=tolerance)
    if mode == "mi":
        out = ancova.pieces(model.impute(beta, sigma, rng), d)
    else:
        out = ancova.pieces(model.impute(beta, sigma), d, weights)
    out["failures"] = failures
    return out


# -- pooling ----------------------------------------------------------------------------------------------


def pooled(state: dict[str, Any], delta: np.ndarray, key: str) -> dict[str, np.ndarray]:
    """Estimate, se, df of contrasts (``key="est"``) or LS means (``"lsm"``) at ``delta``."""
    var_key = "var" if key == "est" else "lsm_var"
    full = at_delta(state["full"], delta)
    reps = at_delta(state["replicates"], delta)
    mode = state["mode"]
    if mode == "mi":
        q = reps[key]  # (M, C, T)
        m = q.shape[0]
        q_bar = q.mean(0)
        u_bar = reps[var_key].mean(0)
        b = q.var(0, ddof=1)
        total = u_bar + (1 + 1 / m) * b
        df_com = float(np.asarray(full["df"]))
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(total > 0, (1 + 1 / m) * b / total, 0.0)
            df_old = np.where(lam > 0, (m - 1) / lam**2, np.inf)
            df_obs = (df_com + 1) / (df_com + 3) * df_com * (1 - lam)
            df = 1 / (1 / df_old + 1 / df_obs)
        return {"estimate": q_bar, "se": np.sqrt(total), "df": df}
    est = full[key]
    reps_est = reps[key]
    if mode == "jackknife":
        n = reps_est.shape[0]
        se = np.sqrt((n - 1) / n * ((reps_est - reps_est.mean(0)) ** 2).sum(0))
    else:
        se = reps_est.std(0, ddof=1)
    return {"estimate": est, "se": se, "df": np.full(est.shape, np.inf), "replicates": reps_est}


def pooled_inference(state: dict[str, Any], estimates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """t (Rubin) or normal (resampling) tests and intervals of :func:`pooled` estimates; bootstrap
    percentile intervals when asked."""
    alpha = state["alpha"]
    out = t_inference(estimates["estimate"], estimates["se"], estimates["df"], alpha=alpha)
    if state["mode"] == "bootstrap" and state["ci"] == "percentile":
        reps = estimates["replicates"]
        out["ci_low"] = np.quantile(reps, alpha / 2, axis=0)
        out["ci_high"] = np.quantile(reps, 1 - alpha / 2, axis=0)
        # the percentile p-value: twice the smaller tail of the bootstrap distribution around 0
        tail = np.minimum((reps <= 0).mean(0), (reps >= 0).mean(0))
        out["p_value"] = np.minimum(1.0, 2 * tail)
    return out


def _tables(state: dict[str, Any], delta: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    grid: Grid = state["grid"]
    con = pooled_inference(state, pooled(state, delta, "est"))
    lsm = pooled_inference(state, pooled(state, delta, "lsm"))
    control = grid.arms[0]
    rows = []
    for j, v in enumerate(grid.visits):
        for c, arm in enumerate(grid.arms[1:]):
            rows.append(
                {
                    "visit": v,
                    "contrast": f"{arm} - {control}",
                    **{
                        k: float(con[k][c, j])
                        for k in ("estimate", "se", "df", "ci_low", "ci_high", "statistic", "p_value")
                    },
                }
            )
    ls_rows = []
    for j, v in enumerate(grid.visits):
        for a, arm in enumerate(grid.arms):
            ls_rows.append(
                {
                    "treatment": arm,
                    "visit": v,
                    **{k: float(lsm[k][a, j]) for k in ("estimate", "se", "df", "ci_low", "ci_high")},
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(ls_rows)


# -- data preparation -------------------------------------------------------------------------------------


def _grid(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    visit: str,
    subject: str,
    baseline: str | None,
    covariates: list[str],
    reference: str | Mapping[str, str],
    strategy: str,
    events: pd.DataFrame | None,
    control: str | None,
    visit_order: Sequence | None,
) -> Grid:
    from toolkit.stats.mmrm import _visit_levels

    data = _checks.require_frame(data)
    _checks.require_columns(data, [outcome, treatment, visit, subject, baseline, *covariates])
    frame = data.copy()
    frame[outcome] = _checks.require_numeric(frame, outcome, role="outcome")
    _checks.require_complete(frame, [treatment, visit, subject], id_column=subject, role="design")
    _checks.require_one_record_per_visit(frame, subject, visit)
    visits = _visit_levels(frame, visit, visit_order)
    subject_cols = [treatment, *([baseline] if baseline else []), *covariates]
    per_subject = frame.groupby(subject, sort=False)[subject_cols].nunique(dropna=True)
    varying = per_subject.columns[(per_subject > 1).any()].tolist()
    if varying:
        raise DataError(
            f"column(s) {', '.join(map(repr, varying))} change within a subject; the imputation needs "
            "subject-level treatment, baseline and covariates",
            details=[f"e.g. subject {per_subject.index[(per_subject[varying] > 1).any(axis=1)][0]}"],
        )
    subjects = frame[subject].drop_duplicates().tolist()
    firsts = frame.groupby(subject, sort=False)[subject_cols].first().loc[subjects].reset_index()
    if baseline:
        firsts[baseline] = _checks.require_numeric(firsts, baseline, role="baseline")
    _checks.require_complete(firsts, subject_cols, id_column=subject, role="subject-level")
    arms_present = _checks.categorical_levels(firsts[treatment], column=treatment)
    if len(arms_present) < 2:
        raise DataError(f"treatment column {treatment!r} has a single arm; imputation by reference needs two")
    ref_map = _reference_map(reference, arms_present)
    if control is None:
        control = (
            reference
            if isinstance(reference, str)
            else next((a for a in arms_present if ref_map[a] == a and a in ref_map.values()), arms_present[0])
        )
    if control not in arms_present:
        raise DataError(
            f"control {control!r} is not an arm of {treatment!r}",
            details=[f"arms: {', '.join(map(str, arms_present))}"],
        )
    arms = [control] + [a for a in arms_present if a != control]
    levels: dict[str, list] = {}
    for c in covariates:
        if _checks.is_categorical(firsts[c]):
            levels[c] = _checks.categorical_levels(firsts[c], column=c)
        else:
            firsts[c] = firsts[c].astype(float)
    index = {s: i for i, s in enumerate(subjects)}
    vindex = {v: j for j, v in enumerate(visits)}
    y = np.full((len(subjects), len(visits)), np.nan)
    rows = frame[frame[visit].isin(visits)]
    y[rows[subject].map(index).to_numpy(int), rows[visit].map(vindex).to_numpy(int)] = rows[outcome].to_numpy(
        float
    )
    arm = firsts[treatment].to_numpy(dtype=object)
    event_index, strat = _events(events, y, subjects, visits, index, vindex, strategy, subject, visit)
    model_frame = firsts.rename(columns={treatment: "TRT"})
    model_frame.attrs["levels"] = levels
    counts = pd.DataFrame(~np.isnan(y), columns=visits).groupby(arm).sum()
    empty = [(a, v) for a in arms for v in visits if counts.loc[a, v] == 0]
    if empty:
        raise DataError(
            f"visit {empty[0][1]!r} has no observed {outcome} in arm {empty[0][0]!r}: the imputation model "
            "cannot estimate that arm's mean there",
        )
    return Grid(
        subjects=np.array(subjects, dtype=object),
        arm=arm,
        visits=visits,
        y=y,
        frame=model_frame,
        event_index=event_index,
        strategy=strat,
        reference=ref_map,
        arms=arms,
        treatment="TRT",
        visit="VISIT",
        baseline=baseline,
        covariates=covariates,
    )


def _reference_map(reference: str | Mapping[str, str], arms: list) -> dict:
    if isinstance(reference, str):
        if reference not in arms:
            raise DataError(
                f"reference arm {reference!r} does not exist",
                details=[f"arms in the data: {', '.join(map(str, arms))}"],
            )
        return dict.fromkeys(arms, reference)
    if not isinstance(reference, Mapping):
        raise DataError(f"reference must be an arm or a mapping arm -> reference arm; got {reference!r}")
    out = {a: a for a in arms}
    for arm, ref in reference.items():
        for role, value in (("arm", arm), ("reference arm", ref)):
            if value not in arms:
                raise DataError(
                    f"{role} {value!r} in `reference` does not exist",
                    details=[f"arms in the data: {', '.join(map(str, arms))}"],
                )
        out[arm] = ref
    return out


def _events(
    events: pd.DataFrame | None,
    y: np.ndarray,
    subjects: list,
    visits: list,
    index: dict,
    vindex: dict,
    strategy: str,
    subject: str,
    visit: str,
) -> tuple[np.ndarray, np.ndarray]:
    n, t = y.shape
    event_index = np.full(n, t)
    strat = np.full(n, "MAR", dtype=object)
    if events is None:
        if strategy not in STRATEGIES:
            raise DataError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
        observed = ~np.isnan(y)
        # the final run of missing visits: after the last observed visit (a subject never observed: all)
        last = np.where(observed.any(1), t - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
        dropped = last < t - 1
        event_index[dropped] = last[dropped] + 1
        strat[dropped] = strategy
        return event_index, strat
    if not isinstance(events, pd.DataFrame):
        raise DataError(f"events must be a DataFrame with columns {subject}, {visit}, strategy")
    _checks.require_columns(events, [subject, visit, "strategy"], what="events")  # no rows: no events
    dup = events[subject].duplicated()
    if dup.any():
        raise DataError(
            f"events: subject {events.loc[dup, subject].iloc[0]!r} has more than one event; give the first "
            "visit affected by the event that decides the imputation"
        )
    for row in events.itertuples(index=False):
        sid, vis, how = getattr(row, subject), getattr(row, visit), str(row.strategy).upper()
        if sid not in index:
            raise DataError(f"events: subject {sid!r} is not in the data")
        if vis not in vindex:
            raise DataError(
                f"events: visit {vis!r} of subject {sid!r} is not a visit of the data",
                details=[f"visits: {', '.join(map(str, visits))}"],
            )
        if how not in STRATEGIES:
            raise DataError(
                f"events: strategy {row.strategy!r} of subject {sid!r} is not one of {', '.join(STRATEGIES)}"
            )
        event_index[index[sid]] = vindex[vis]
        strat[index[sid]] = how
    return event_index, strat


def _event_table(grid: Grid, subject: str, visit: str) -> pd.DataFrame:
    has = grid.event_index < grid.t
    rows = []
    for i in np.flatnonzero(has):
        k = grid.event_index[i]
        rows.append(
            {
                subject: grid.subjects[i],
                "treatment": grid.arm[i],
                visit: grid.visits[k],
                "strategy": grid.strategy[i],
                "reference": grid.reference[grid.arm[i]],
                "n_imputed": int(np.isnan(grid.y[i, k:]).sum()),
                "n_observed_after_event": int((~np.isnan(grid.y[i, k:])).sum()),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[subject, "treatment", visit, "strategy", "reference", "n_imputed", "n_observed_after_event"],
    )
