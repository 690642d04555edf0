"""Tipping-point analysis: how far the outcomes imputed after intercurrent events in an active arm must be
shifted (delta, in outcome units) before the treatment difference is no longer significant.

The imputations of a :class:`toolkit.stats.reference_based.ReferenceBasedResult` (usually under MAR) are
kept; the analysis is linear in delta, so each delta of the grid, and the exact tipping point (a root of
p(delta) = alpha), costs no new imputation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from toolkit.errors import DataError
from toolkit.stats._imputation import Grid
from toolkit.stats.errors import AnalysisWarning
from toolkit.stats.reference_based import ReferenceBasedResult, pooled, pooled_inference
from toolkit.stats.results import AnalysisResult

__all__ = ["TippingPointResult", "tipping_point"]


@dataclass
class TippingPointResult(AnalysisResult):
    """Result of :func:`tipping_point`.

    ``grid`` has one row per delta (``delta, estimate, se, ci_low, ci_high, p_value, significant``);
    ``tipping_delta`` is the delta at which the p-value reaches alpha (NaN when the grid never gets there,
    0 when the unadjusted result is not significant).
    """

    grid: pd.DataFrame = field(default_factory=pd.DataFrame)
    tipping_delta: float = float("nan")

    def __post_init__(self) -> None:
        self.table_names = ("grid",)


def tipping_point(
    result: ReferenceBasedResult,
    *,
    visit: object | None = None,
    contrast: str | None = None,
    deltas: Sequence[float] | None = None,
    n_points: int = 41,
) -> TippingPointResult:
    """Shift the values imputed after an event in the active arm(s) by delta until significance is lost.

    Parameters
    ----------
    result : ReferenceBasedResult
        Usually the MAR imputation (``strategy="MAR"``): the tipping point says how far the unobserved
        outcomes of the active arm(s) must be from MAR for the conclusion to change.
    visit : optional
        Visit of the contrast (default: the last).
    contrast : str, optional
        ``"EP - SHAM"`` (default: the first contrast).
    deltas : sequence of float, optional
        The grid (outcome units; added to each imputed value). Default: ``n_points`` values from 0 in the
        direction that moves the estimate toward no difference, far enough to cross.
    n_points : int
        Points of the default grid.

    Returns
    -------
    TippingPointResult

    Raises
    ------
    DataError
        Unknown visit or contrast, or no imputed value after an event in the active arm(s).
    """
    state = result._state
    grid: Grid = state["grid"]
    visit = grid.visits[-1] if visit is None else visit
    if visit not in grid.visits:
        raise DataError(
            f"visit {visit!r} is not a visit of the analysis",
            details=[f"visits: {', '.join(map(str, grid.visits))}"],
        )
    names = [f"{a} - {grid.arms[0]}" for a in grid.arms[1:]]
    contrast = names[0] if contrast is None else contrast
    if contrast not in names:
        raise DataError(f"contrast {contrast!r} is not estimated", details=[f"contrasts: {', '.join(names)}"])
    j, c = grid.visits.index(visit), names.index(contrast)
    arm = grid.arms[1 + c]
    # the delta shifts the values imputed in this contrast's active arm only
    unit = np.zeros(len(grid.arms) - 1)
    unit[c] = 1.0
    slope = float(np.mean(state["full"]["est_d"][c, j, c]))
    if not state["delta_cells"][:, j, c].any() or abs(slope) < 1e-12:
        raise DataError(
            f"no value of arm {arm} is imputed after an intercurrent event at visit {visit}: a delta adjustment "
            "changes nothing",
            details=["the tipping point needs subjects of the active arm whose outcome is missing after an event"],
        )

    def evaluate(delta: float) -> dict[str, float]:
        estimates = pooled(state, delta * unit, "est")
        inf = pooled_inference(state, estimates)
        return {k: float(inf[k][c, j]) for k in ("estimate", "se", "ci_low", "ci_high", "p_value")}

    alpha = state["alpha"]
    base = evaluate(0.0)
    if deltas is None:
        reach = (abs(base["estimate"]) + 4.0 * base["se"]) / abs(slope)
        direction = -np.sign(base["estimate"] * slope) or 1.0
        deltas = np.linspace(0.0, direction * reach, int(n_points))
        field_name = "the default grid"
    else:
        deltas = np.asarray(list(deltas), dtype=float)
        if deltas.size < 2 or not np.all(np.isfinite(deltas)):
            raise DataError("deltas must hold at least two finite values")
        field_name = "deltas"
    rows = [{"delta": float(dv), **evaluate(float(dv))} for dv in deltas]
    table = pd.DataFrame(rows)
    table["significant"] = table["p_value"] < alpha
    notes: list[str] = []
    tipping = float("nan")
    if base["p_value"] >= alpha:
        tipping = 0.0
        notes.append("the unadjusted result is not significant: there is no tipping point to find")
    else:
        order = np.argsort(np.abs(table["delta"].to_numpy()))
        ordered = table.iloc[order]
        lost = ordered.index[~ordered["significant"]]
        if len(lost) == 0:
            message = (
                f"{field_name} never crosses: the contrast {contrast} at {visit} stays significant up to delta = "
                f"{ordered['delta'].iloc[-1]:.4g}; widen `deltas`"
            )
            notes.append(message)
            warnings.warn(message, AnalysisWarning, stacklevel=2)
        else:
            first = table.loc[lost[0], "delta"]
            kept = ordered[ordered["significant"] & (np.abs(ordered["delta"]) < abs(first))]
            start = float(kept["delta"].iloc[-1]) if len(kept) else 0.0
            tipping = float(
                optimize.brentq(lambda dv: evaluate(dv)["p_value"] - alpha, start, float(first), xtol=1e-8)
            )
    details = {
        "visit": visit,
        "contrast": contrast,
        "alpha": alpha,
        "delta_applies_to": f"values imputed after an intercurrent event in arm {arm}",
        "analysis": result.details.get("method"),
        "tipping_delta": tipping,
    }
    if notes:
        details["notes"] = notes
    return TippingPointResult(
        title=f"Tipping-point analysis of {contrast} at {visit}",
        details=details,
        grid=table,
        tipping_delta=tipping,
    )
