"""Hypothesis matrices of Type III tests for a reference-cell coded design.

SAS's Type III hypothesis of a term is the same whatever the coding; with sum-to-zero coding of every
factor (R's ``contr.sum``) it is "all the term's coefficients are 0". The toolkit fits with reference-cell
coding (the coefficients analysts read), so the hypothesis is carried over: both codings span the same
column space, X beta = X_sum beta_sum, hence beta_sum = T beta with T = X_sum^+ X, and the Type III rows
of a term are the rows of T that belong to it.

The F statistic does not depend on which rows span the hypothesis, but the Satterthwaite denominator df
of a multi-row test does (it combines the df of orthogonalised rows). The rows are therefore expressed as
SAS writes its Type III estimable functions when the reference level is the last class level
(``CLASS ... (REF=...)``): for each factor, every level minus the reference level, and for an interaction
the products of those differences. With them the fev_data reference of SAS PROC MIXED is reproduced.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from toolkit.stats._design import Design

__all__ = ["type3_hypotheses"]


def _to_reference_differences(n_levels: int) -> np.ndarray:
    """Map sum-to-zero coefficients (levels 1..k-1; level k = minus their sum) to mu_j - mu_1, j = 2..k."""
    k = n_levels
    d = np.zeros((k - 1, k - 1))
    for row, level in enumerate(range(1, k)):  # zero-based level index 1..k-1
        if level < k - 1:
            d[row, level] = 1.0
        else:
            d[row, :] = -1.0
        d[row, 0] -= 1.0
    return d


def type3_hypotheses(design: Design, frame: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """Term label -> rows L (in ``design``'s parameters) of the term's Type III test.

    The map between the two codings does not depend on the data: it is solved on a small grid that spans
    the design (every combination of factor levels, with each numeric covariate at 0 and at 1), so a
    2,000-subject trial costs no more than a small one. With so many factors that the grid would be larger
    than the data, the data's own rows (``frame``) are used.
    """
    summed = Design(design.factors, design.numerics, design.terms, intercept=design.intercept, coding="sum")
    size = int(np.prod([len(v) for v in design.factors.values()])) * (len(design.numerics) + 1)
    grid = frame if frame is not None and size > max(len(frame), 1000) else _spanning_grid(design)
    transform, *_ = np.linalg.lstsq(summed.matrix(grid), design.matrix(grid), rcond=None)
    out = {}
    for term, (label, sl) in zip(summed.terms, summed.term_slices.items(), strict=True):
        basis = np.ones((1, 1))
        for col in term:
            piece = _to_reference_differences(len(design.factors[col])) if col in design.factors else np.ones((1, 1))
            basis = np.kron(basis, piece)
        rows = basis @ transform[sl]
        rows[np.abs(rows) < 1e-12] = 0.0
        out[label] = rows
    return out


def _spanning_grid(design: Design) -> pd.DataFrame:
    """Every combination of the factors' levels, each with the numerics all 0 and each numeric alone at 1."""
    names = list(design.factors)
    combos = list(itertools.product(*(design.factors[f] for f in names))) or [()]
    numeric_points = [dict.fromkeys(design.numerics, 0.0)]
    numeric_points += [{n: float(n == m) for n in design.numerics} for m in design.numerics]
    rows = [{**dict(zip(names, combo, strict=True)), **point} for combo in combos for point in numeric_points]
    return pd.DataFrame(rows)
