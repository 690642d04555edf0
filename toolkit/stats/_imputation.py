"""The machinery of reference-based multiple imputation: imputation model, strategies, per-visit ANCOVA.

Everything works on one complete grid of subjects x visits (``y`` holds NaN where the outcome is missing):

* the imputation model is the MMRM ``outcome ~ treatment * visit + baseline * visit + covariates * visit``
  with an unstructured covariance common to the arms, fitted by REML on the records the model may use (a
  record observed after an intercurrent event handled by a reference-based strategy is not used);
* a subject's mean vector follows its strategy (Carpenter, Roger & Kenward 2013): MAR (own arm), J2R (own
  arm before the event, reference arm after), CR (reference arm throughout), CIR (own arm before; after,
  the own arm's mean at the last visit before the event plus the reference arm's increments);
* missing values are imputed from the multivariate normal distribution of the missing given the observed
  outcomes of the subject: its conditional mean, or a random draw;
* each completed dataset is analysed by an ANCOVA per visit (outcome ~ treatment + baseline + covariates),
  whose pieces are kept linear in a delta adjustment so a tipping-point grid costs no new imputation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from toolkit.stats._blas import single_threaded_blas
from toolkit.stats._covariance import make_structure
from toolkit.stats._design import Design
from toolkit.stats._reml import RemlProblem, build_patterns
from toolkit.stats.errors import ModelFitError

#: accepted imputation strategies after an intercurrent event
STRATEGIES = ("MAR", "J2R", "CR", "CIR")


@dataclass
class Grid:
    """Subjects x visits with everything the imputation and the analysis need."""

    subjects: np.ndarray
    #: arm of each subject
    arm: np.ndarray
    visits: list
    #: outcome, shape (n, T), NaN where missing
    y: np.ndarray
    #: one row per subject: treatment, baseline and covariates (the analysis model's columns)
    frame: pd.DataFrame
    #: index of the first visit affected by an intercurrent event; T when the subject has none
    event_index: np.ndarray
    #: strategy of each subject ("MAR" without an event)
    strategy: np.ndarray
    #: reference arm of each arm
    reference: dict
    #: arms in analysis order (control first)
    arms: list
    treatment: str = "TRT"
    visit: str = "VISIT"
    baseline: str | None = None
    covariates: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.subjects)

    @property
    def t(self) -> int:
        return len(self.visits)

    @property
    def after_event(self) -> np.ndarray:
        """(n, T) True at visits on or after the subject's intercurrent event."""
        return np.arange(self.t)[None, :] >= self.event_index[:, None]

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.y)

    @property
    def fit_mask(self) -> np.ndarray:
        """Records the imputation model may use: observed, and not after an event imputed by reference."""
        excluded = self.after_event & (self.strategy != "MAR")[:, None]
        return ~self.missing & ~excluded

    @property
    def delta_mask(self) -> np.ndarray:
        """Imputed values after an intercurrent event: where a delta adjustment applies."""
        return self.missing & self.after_event


class ImputationModel:
    """Fits the imputation MMRM on (re)weighted subjects and imputes under each subject's strategy."""

    def __init__(self, grid: Grid, structure: str = "unstructured") -> None:
        self.grid = grid
        g = grid
        factors = {g.treatment: list(g.arms), g.visit: list(g.visits)}
        numerics = []
        terms: list[tuple[str, ...]] = [(g.treatment,), (g.visit,), (g.treatment, g.visit)]
        for col in ([g.baseline] if g.baseline else []) + list(g.covariates):
            if col in g.frame.attrs.get("levels", {}):
                factors[col] = g.frame.attrs["levels"][col]
            else:
                numerics.append(col)
            terms += [(col,), (col, g.visit)]
        self.design = Design(factors, numerics, terms)
        long = g.frame.loc[np.repeat(np.arange(g.n), g.t)].reset_index(drop=True)
        long[g.visit] = np.tile(np.array(g.visits, dtype=object), g.n)
        p = self.design.n_columns
        self.x_own = self.design.matrix(long).reshape(g.n, g.t, p)
        ref_arm = np.array([g.reference[a] for a in g.arm], dtype=object)
        self.x_ref = self.design.matrix(long.assign(**{g.treatment: np.repeat(ref_arm, g.t)})).reshape(
            g.n, g.t, p
        )
        self.structure = make_structure(structure, g.t)
        mask = g.fit_mask
        self._rows = mask.ravel()
        self._x = self.x_own.reshape(-1, p)[self._rows]
        self._y = g.y.ravel()[self._rows]
        self._subject = np.repeat(np.arange(g.n), g.t)[self._rows]
        self._visit = np.tile(np.arange(g.t), g.n)[self._rows]
        self._per_subject = mask.sum(axis=1)
        self._patterns = _missing_patterns(g.missing)

    # -- fitting ---------------------------------------------------------------------------------------
    def fit(
        self,
        weights: np.ndarray | None = None,
        theta0: np.ndarray | None = None,
        *,
        label: str = "imputation model",
        scale: np.ndarray | None = None,
        tolerance: str = "strict",
    ):
        """REML fit; returns ``(beta, sigma, theta)``. ``weights`` counts subjects (bootstrap, jackknife).

        Resampled data are refitted from the full-data estimate ``theta0``, preconditioned by ``scale``
        (see :meth:`RemlProblem.fit`), which :meth:`full_fit` provides.
        """
        with single_threaded_blas():
            problem = self._problem(weights)
            if theta0 is None:
                theta0 = self.structure.theta_from_sigma(_moment_sigma(self.grid.y, self.grid.fit_mask))
            fit = problem.fit(theta0, label=label, scale=scale, tolerance=tolerance)
        return fit.beta, fit.sigma, fit.theta

    def full_fit(self, *, label: str = "imputation model"):
        """REML fit of all subjects; returns ``(beta, sigma, theta, scale)`` for refits of resamples."""
        beta, sigma, theta = self.fit(label=label)
        with single_threaded_blas():
            scale = self._problem(None).hessian_scale(theta)
        return beta, sigma, theta, scale

    def _problem(self, weights: np.ndarray | None) -> RemlProblem:
        patterns = build_patterns(self._x, self._y, self._subject, self._visit, weights)
        n_obs = float(self._per_subject.sum() if weights is None else weights @ self._per_subject)
        return RemlProblem(patterns, self.structure, n_obs, self.design.n_columns)

    # -- means and imputation ---------------------------------------------------------------------------
    def means(self, beta: np.ndarray) -> np.ndarray:
        """(n, T) mean vector of every subject under its strategy."""
        g = self.grid
        own = self.x_own @ beta
        ref = self.x_ref @ beta
        after = g.after_event
        out = own.copy()
        j2r = (g.strategy == "J2R")[:, None] & after
        out[j2r] = ref[j2r]
        cr = g.strategy == "CR"
        out[cr] = ref[cr]
        cir = np.flatnonzero(g.strategy == "CIR")
        if len(cir):
            k = g.event_index[cir]
            last = np.clip(k - 1, 0, g.t - 1)
            own_last = np.where(k > 0, own[cir, last], ref[cir, last])
            ref_last = ref[cir, last]
            increments = own_last[:, None] + ref[cir] - ref_last[:, None]
            cir_after = after[cir]
            block = out[cir]
            block[cir_after] = increments[cir_after]
            out[cir] = block
        return out

    def impute(
        self, beta: np.ndarray, sigma: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Completed outcomes: conditional means (``rng`` None) or one random draw per missing value."""
        y = self.grid.y
        mu = self.means(beta)
        out = y.copy()
        for observed, missing, members in self._patterns:
            if not len(missing):
                continue
            s_mm = sigma[np.ix_(missing, missing)]
            if len(observed):
                s_oo = sigma[np.ix_(observed, observed)]
                s_mo = sigma[np.ix_(missing, observed)]
                coef = np.linalg.solve(s_oo, s_mo.T).T  # Sigma_mo Sigma_oo^-1
                resid = y[np.ix_(members, observed)] - mu[np.ix_(members, observed)]
                cond = mu[np.ix_(members, missing)] + resid @ coef.T
                cov = s_mm - coef @ s_mo.T
            else:
                cond = mu[np.ix_(members, missing)]
                cov = s_mm
            if rng is not None:
                chol = np.linalg.cholesky(0.5 * (cov + cov.T))
                cond = cond + rng.standard_normal(cond.shape) @ chol.T
            out[np.ix_(members, missing)] = cond
        return out


def _missing_patterns(missing: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(observed visits, missing visits, subjects) for each distinct missing-data pattern."""
    keys = missing @ (1 << np.arange(missing.shape[1]))
    out = []
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        row = missing[members[0]]
        out.append((np.flatnonzero(~row), np.flatnonzero(row), members))
    return out


def _moment_sigma(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Positive-definite starting covariance from the pairwise-complete covariance of the used records."""
    wide = np.where(mask, y, np.nan)
    sigma = pd.DataFrame(wide).cov(min_periods=2).to_numpy()
    diag = np.nanvar(wide, axis=0)
    fallback = float(np.nanvar(wide)) if np.isfinite(np.nanvar(wide)) else 1.0
    diag = np.where(np.isfinite(diag) & (diag > 0), diag, fallback)
    sigma = np.where(np.isfinite(sigma), sigma, 0.0)
    sigma[np.diag_indices_from(sigma)] = diag
    vals, vecs = np.linalg.eigh(sigma)
    vals = np.maximum(vals, 1e-3 * vals.max())
    return (vecs * vals) @ vecs.T


# -- the analysis model ------------------------------------------------------------------------------------


class VisitAncova:
    """ANCOVA per visit on completed data: outcome ~ treatment + baseline + covariates.

    :meth:`pieces` returns, for one completed dataset and one delta pattern D (1 where a delta is added),
    everything needed to evaluate the analysis at any delta without refitting: the estimates are linear in
    delta, the residual sum of squares quadratic.
    """

    def __init__(self, grid: Grid) -> None:
        g = grid
        factors = {g.treatment: list(g.arms)}
        numerics = []
        terms: list[tuple[str, ...]] = [(g.treatment,)]
        for col in ([g.baseline] if g.baseline else []) + list(g.covariates):
            if col in g.frame.attrs.get("levels", {}):
                factors[col] = g.frame.attrs["levels"][col]
            else:
                numerics.append(col)
            terms.append((col,))
        self.grid = grid
        self.design = Design(factors, numerics, terms)
        self.z = self.design.matrix(g.frame)
        self.z_arm = {a: self.design.matrix(g.frame.assign(**{g.treatment: a})) for a in g.arms}
        self.arms = list(g.arms)
        self.contrast_arms = self.arms[1:]

    def pieces(
        self, y: np.ndarray, d: np.ndarray, weights: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Analysis pieces of the completed ``y`` (n, T) with delta patterns ``d`` (n, T, K): one pattern per
        active arm (1 where that arm's delta is added).

        Returns arrays over (contrast or arm, visit): ``est0`` and ``lsm0`` (contrast estimates and LS means
        at delta 0), ``est_d`` and ``lsm_d`` (their slopes in each arm's delta, last axis K), ``h`` and
        ``h_lsm`` (variance factors c'(Z'WZ)^-1 c), ``rss0`` (T), ``rss_x`` (T, K) and ``rss_d`` (T, K, K)
        (residual sum of squares = rss0 + 2 delta'rss_x + delta'rss_d delta per visit) and ``df``.
        """
        w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
        keep = w > 0
        z, w, y, d = self.z[keep], w[keep], y[keep], d[keep]
        zw = z * w[:, None]
        gram_inv = np.linalg.inv(zw.T @ z)
        proj = gram_inv @ zw.T  # (q, n)
        b0 = proj @ y  # (q, T)
        bd = np.einsum("qn,ntk->qtk", proj, d)
        r0 = y - z @ b0
        rd = d - np.einsum("nq,qtk->ntk", z, bd)
        total = w.sum()
        lsm_rows = np.vstack([w @ self.z_arm[a][keep] / total for a in self.arms])
        con_rows = lsm_rows[1:] - lsm_rows[0]
        return {
            "est0": con_rows @ b0,
            "est_d": np.einsum("cq,qtk->ctk", con_rows, bd),
            "lsm0": lsm_rows @ b0,
            "lsm_d": np.einsum("aq,qtk->atk", lsm_rows, bd),
            "h": np.einsum("cq,qr,cr->c", con_rows, gram_inv, con_rows),
            "h_lsm": np.einsum("aq,qr,ar->a", lsm_rows, gram_inv, lsm_rows),
            "rss0": (w[:, None] * r0 * r0).sum(0),
            "rss_x": np.einsum("n,nt,ntk->tk", w, r0, rd),
            "rss_d": np.einsum("n,ntk,ntl->tkl", w, rd, rd),
            "df": np.array(total - z.shape[1]),
        }


def at_delta(pieces: dict[str, np.ndarray], delta: np.ndarray) -> dict[str, np.ndarray]:
    """Estimates and variances of one analysis (or a stack of them, leading axis) at the delta of each
    active arm (``delta``: shape (K,)); contrasts (C, T), LS means (A, T)."""
    delta = np.asarray(delta, dtype=float)
    rss = (
        pieces["rss0"]
        + 2 * np.einsum("...tk,k->...t", pieces["rss_x"], delta)
        + np.einsum("...tkl,k,l->...t", pieces["rss_d"], delta, delta)
    )
    s2 = rss / np.asarray(pieces["df"])[..., None]  # (..., T)
    return {
        "est": pieces["est0"] + np.einsum("...ctk,k->...ct", pieces["est_d"], delta),
        "var": pieces["h"][..., :, None] * s2[..., None, :],
        "lsm": pieces["lsm0"] + np.einsum("...atk,k->...at", pieces["lsm_d"], delta),
        "lsm_var": pieces["h_lsm"][..., :, None] * s2[..., None, :],
        "df": pieces["df"],
    }


def stack_pieces(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pieces of many analyses stacked along a new first axis."""
    return {k: np.stack([it[k] for it in items]) for k in items[0]}


def resample_weights(arm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts per subject, resampling within each arm (the arm sizes stay fixed)."""
    counts = np.zeros(len(arm))
    for a in pd.unique(arm):
        members = np.flatnonzero(arm == a)
        picks = rng.choice(members, size=len(members), replace=True)
        np.add.at(counts, picks, 1.0)
    return counts


def fit_with_retries(
    model: ImputationModel,
    rng: np.random.Generator,
    theta0: np.ndarray,
    scale: np.ndarray | None = None,
    *,
    attempts: int = 20,
    tolerance: str = "strict",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Fit a bootstrap sample, drawing a new one when the sample cannot be fitted (an empty arm-visit cell).

    Returns ``(weights, beta, sigma, theta, failures)``.
    """
    failures = 0
    for _ in range(attempts):
        weights = resample_weights(model.grid.arm, rng)
        try:
            beta, sigma, theta = model.fit(
                weights, theta0, label="bootstrap imputation model", scale=scale, tolerance=tolerance
            )
            return weights, beta, sigma, theta, failures
        except (ModelFitError, np.linalg.LinAlgError):
            failures += 1
    raise ModelFitError(
        f"{attempts} bootstrap samples in a row could not be fitted by the imputation model",
        details=["an arm has visits with very few observations; the bootstrap cannot be relied on"],
    )
