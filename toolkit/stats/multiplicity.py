"""Multiplicity adjustments that keep the family-wise error rate: Holm, Hochberg, fixed sequence and
serial gatekeeping over families of hypotheses.

All functions return adjusted p-values: a hypothesis is rejected at level alpha exactly when its adjusted
p-value is <= alpha, so the same table serves any alpha.

References
----------
Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Statist. 6, 65–70.
Hochberg, Y. (1988). A sharper Bonferroni procedure for multiple tests of significance. Biometrika 75,
800–802. doi:10.1093/biomet/75.4.800
Dmitrienko, A., Tamhane, A. C. & Wiens, B. L. (2008). General multistage gatekeeping procedures.
Biometrical Journal 50, 667–677. doi:10.1002/bimj.200710464
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from toolkit.errors import DataError

__all__ = [
    "MULTIPLICITY_METHODS",
    "adjust_pvalues",
    "bonferroni",
    "fixed_sequence",
    "hochberg",
    "holm",
    "serial_gatekeeping",
]


def _as_pvalues(p: Sequence[float]) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError("p-values must be a non-empty one-dimensional sequence")
    if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        raise DataError(f"p-values must lie in [0, 1]; got {arr.tolist()}")
    return arr


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values."""
    arr = _as_pvalues(p)
    m = len(arr)
    order = np.argsort(arr, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * arr[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def hochberg(p: Sequence[float]) -> np.ndarray:
    """Hochberg step-up adjusted p-values (valid under independence or positive dependence)."""
    arr = _as_pvalues(p)
    m = len(arr)
    order = np.argsort(arr, kind="stable")[::-1]  # largest first
    adj = np.minimum.accumulate((np.arange(m) + 1) * arr[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def fixed_sequence(p: Sequence[float]) -> np.ndarray:
    """Fixed-sequence (hierarchical) adjusted p-values in the given order: the running maximum.

    Each hypothesis is tested at the full alpha only if every earlier one was rejected.
    """
    return np.maximum.accumulate(_as_pvalues(p))


def bonferroni(p: Sequence[float]) -> np.ndarray:
    """Bonferroni adjusted p-values."""
    arr = _as_pvalues(p)
    return np.minimum(arr * len(arr), 1.0)


#: accepted names for :func:`adjust_pvalues`
MULTIPLICITY_METHODS = {
    "holm": holm,
    "hochberg": hochberg,
    "fixed-sequence": fixed_sequence,
    "bonferroni": bonferroni,
}


def adjust_pvalues(p: Sequence[float], method: str) -> np.ndarray:
    """Adjusted p-values by ``method`` (``holm``, ``hochberg``, ``fixed-sequence``, ``bonferroni``)."""
    key = str(method).lower().replace("_", "-")
    if key not in MULTIPLICITY_METHODS:
        raise DataError(
            f"unknown multiplicity method {method!r}",
            details=[f"accepted: {', '.join(MULTIPLICITY_METHODS)}"],
        )
    return MULTIPLICITY_METHODS[key](p)


def serial_gatekeeping(
    families: Mapping[str, Mapping[str, float]], *, within: str = "holm", alpha: float = 0.05
) -> pd.DataFrame:
    """Serial gatekeeping: family k is tested only if every hypothesis of families 1..k-1 was rejected.

    Within a family the ``within`` procedure (Holm by default) controls the error; the adjusted p-value
    of a hypothesis is the maximum of its within-family adjusted p-value and the largest adjusted p-value
    of all earlier families (the gate), so the family-wise error rate over all families stays at alpha.

    Parameters
    ----------
    families : mapping of family name to mapping of hypothesis name to p-value
        In testing order, e.g. ``{"primary": {"wrinkle": 0.01}, "key secondary": {"lift": 0.03, ...}}``.
    within : str
        Procedure inside each family (see :func:`adjust_pvalues`).
    alpha : float
        Family-wise level used for the ``rejected`` column.

    Returns
    -------
    DataFrame
        ``family, hypothesis, p_value, adjusted_p_value, rejected``.
    """
    if not families:
        raise DataError("serial gatekeeping needs at least one family of hypotheses")
    rows = []
    gate = 0.0
    for family, hyps in families.items():
        if not hyps:
            raise DataError(f"family {family!r} has no hypotheses")
        names = list(hyps)
        raw = _as_pvalues([hyps[h] for h in names])
        adj = np.maximum(adjust_pvalues(raw, within), gate)
        for name, p_raw, p_adj in zip(names, raw, adj, strict=True):
            rows.append(
                {
                    "family": family,
                    "hypothesis": name,
                    "p_value": float(p_raw),
                    "adjusted_p_value": float(p_adj),
                    "rejected": bool(p_adj <= alpha),
                }
            )
        gate = float(adj.max())
    return pd.DataFrame(rows)
