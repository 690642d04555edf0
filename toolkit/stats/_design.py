"""Design matrices for linear models with treatment (reference-cell) coding.

A small, explicit builder rather than a formula language: the analysis functions know exactly which terms
they fit, and the LS-means machinery needs to rebuild design rows at chosen factor levels.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from toolkit.errors import DataError


class Design:
    """Fixed-effects design: intercept plus main effects and interactions of factors and numerics.

    Parameters
    ----------
    factors : mapping of str to list
        Categorical columns and their levels, reference level first (it gets no column).
    numerics : sequence of str
        Numeric columns.
    terms : sequence of tuple of str
        Model terms; a term with several columns is their interaction (each should also appear as a main
        effect so that reference-cell coding stays full rank).
    coding : {'treatment', 'sum'}
        Factor coding: reference cell (the first level gets no column; the default, whose coefficients
        analysts read) or sum to zero (R's ``contr.sum``: the last level is minus the sum of the others;
        its term coefficients are the hypotheses of SAS's Type III tests).
    """

    def __init__(
        self,
        factors: Mapping[str, Sequence],
        numerics: Sequence[str],
        terms: Sequence[tuple[str, ...]],
        *,
        intercept: bool = True,
        coding: str = "treatment",
    ) -> None:
        if coding not in ("treatment", "sum"):
            raise DataError(f"coding must be 'treatment' or 'sum', got {coding!r}")
        self.factors = {k: list(v) for k, v in factors.items()}
        self.numerics = list(numerics)
        self.terms = [tuple(t) for t in terms]
        self.intercept = intercept
        self.coding = coding
        names: list[str] = ["(Intercept)"] if intercept else []
        self.term_slices: dict[str, slice] = {}
        for term in self.terms:
            start = len(names)
            names.extend(self._term_names(term))
            self.term_slices[term_label(term)] = slice(start, len(names))
        self.column_names = names

    def _term_names(self, term: tuple[str, ...]) -> list[str]:
        pieces = []
        for col in term:
            if col in self.factors:
                levels = self.factors[col]
                named = levels[1:] if self.coding == "treatment" else levels[:-1]
                pieces.append([f"{col}[{lv}]" for lv in named])
            elif col in self.numerics:
                pieces.append([col])
            else:
                raise KeyError(col)
        return [":".join(combo) for combo in itertools.product(*pieces)]

    @property
    def n_columns(self) -> int:
        """Number of fixed-effect parameters."""
        return len(self.column_names)

    def matrix(self, frame: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """Design matrix of ``frame`` (one row per record), float64 of shape (n, p).

        ``frame`` is a DataFrame or a mapping of column name to a 1-D array (all of the same length).
        """
        n = len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values())))
        blocks = [np.ones((n, 1))] if self.intercept else []
        cache: dict[str, np.ndarray] = {}
        for term in self.terms:
            block = np.ones((n, 1))
            for col in term:
                if col not in cache:
                    cache[col] = self._basis(frame, col)
                basis = cache[col]
                # row-wise Kronecker product: interaction columns in itertools.product order
                block = (block[:, :, None] * basis[:, None, :]).reshape(n, -1)
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def _basis(self, frame: pd.DataFrame | Mapping[str, np.ndarray], col: str) -> np.ndarray:
        values = frame[col]
        if col in self.factors:
            levels = self.factors[col]
            index = {lv: i for i, lv in enumerate(levels)}
            raw = (
                values.to_numpy(dtype=object)
                if isinstance(values, pd.Series)
                else np.asarray(values, dtype=object)
            )
            codes = np.fromiter((index.get(v, -1) for v in raw), dtype=np.int64, count=len(raw))
            if (codes < 0).any():
                unknown = pd.unique(pd.Series(raw[codes < 0]).astype(str))[:5]
                raise DataError(
                    f"column {col!r} has value(s) {', '.join(unknown)} outside the model levels",
                    details=[f"levels: {', '.join(map(str, levels))}"],
                )
            out = np.zeros((len(raw), len(levels) - 1))
            if self.coding == "sum":
                last = len(levels) - 1
                rows = np.nonzero(codes < last)[0]
                out[rows, codes[rows]] = 1.0
                out[codes == last] = -1.0
                return out
            rows = np.nonzero(codes > 0)[0]
            out[rows, codes[rows] - 1] = 1.0
            return out
        return np.asarray(values, dtype=float).reshape(-1, 1)


def term_label(term: tuple[str, ...]) -> str:
    """Name of a model term as analysts write it (``TRTP:AVISIT``)."""
    return ":".join(term)


def margin_rows(
    design: Design,
    frame: pd.DataFrame,
    at: Mapping[str, object],
    *,
    weights: str,
) -> np.ndarray:
    """Row vector L such that L @ beta is the least-squares mean at the factor levels ``at``.

    ``weights="proportional"`` averages the design over the observed covariate values of ``frame`` (SAS
    ``LSMEANS / OM``: observed margins); ``"equal"`` averages over a balanced grid of the remaining factors
    with numeric covariates at their mean (SAS's default LS means).
    """
    if weights == "proportional":
        n = len(frame)
        needed = {c for term in design.terms for c in term}
        grid = {c: frame[c].to_numpy() for c in needed if c not in at}
        for col, value in at.items():
            grid[col] = np.full(n, value, dtype=object)
    elif weights == "equal":
        others = [f for f in design.factors if f not in at]
        combos = list(itertools.product(*(design.factors[f] for f in others))) or [()]
        grid = pd.DataFrame(combos, columns=others) if others else pd.DataFrame(index=range(1))
        for col in design.numerics:
            if col not in at:
                grid[col] = float(frame[col].mean())
        for col, value in at.items():
            grid[col] = value
    else:
        raise DataError(f"weights must be 'proportional' or 'equal', got {weights!r}")
    return design.matrix(grid).mean(axis=0)
