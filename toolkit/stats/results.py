"""Result objects shared by the analysis functions: tidy tables plus the details of how they were made.

Every result renders in JupyterLab (``_repr_html_``), prints as text (``summary()``), and exposes its tables
as pandas DataFrames with the column vocabulary ``estimate, se, df, ci_low, ci_high, p_value``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["AnalysisResult", "t_inference"]


@dataclass
class AnalysisResult:
    """Base class of the statistics results.

    Attributes
    ----------
    title : str
        What was analysed, e.g. ``"ANCOVA of CHG"``.
    details : dict
        Model description (formula, population, n, method choices, convergence); JSON-serialisable.
    """

    title: str
    details: dict[str, Any] = field(default_factory=dict)

    #: names of the DataFrame attributes shown by ``summary()`` and ``_repr_html_`` (subclasses set it)
    table_names: tuple[str, ...] = field(default=(), init=False, repr=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The result's tidy tables by name."""
        out = {}
        for name in self.table_names:
            value = getattr(self, name, None)
            if isinstance(value, pd.DataFrame):
                out[name] = value
        return out

    def summary(self) -> str:
        """Plain-text report: title, model details and every table."""
        lines = [self.title, "=" * len(self.title)]
        for key, value in self.details.items():
            lines.append(f"{key}: {value}")
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            for name, table in self.tables().items():
                lines += ["", f"[{name}]", table.to_string(index=False, float_format=_fmt)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.title)}</h4>"]
        if self.details:
            items = "".join(
                f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
                for k, v in self.details.items()
            )
            parts.append(f"<ul style='font-size:90%'>{items}</ul>")
        for name, table in self.tables().items():
            parts.append(f"<h5>{html.escape(name)}</h5>")
            parts.append(table.to_html(index=False, float_format=_fmt, na_rep="", border=0))
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Details and tables as plain Python objects (for JSON)."""
        return {
            "title": self.title,
            "details": _jsonable(self.details),
            "tables": {k: _jsonable(v.to_dict(orient="records")) for k, v in self.tables().items()},
        }


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.3g}"
    return f"{value:.4f}"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, str | int | bool) or obj is None:
        return obj
    return str(obj)


def t_inference(
    estimate: np.ndarray, se: np.ndarray, df: np.ndarray, *, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """Two-sided t tests and (1 - alpha) confidence limits; ``df = inf`` gives normal-theory intervals."""
    estimate, se, df = (np.asarray(v, dtype=float) for v in (estimate, se, df))
    quantile = np.where(
        np.isinf(df), stats.norm.ppf(1 - alpha / 2), stats.t.ppf(1 - alpha / 2, np.minimum(df, 1e12))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / se
    p_value = 2.0 * stats.t.sf(np.abs(statistic), np.minimum(df, 1e12))
    return {
        "estimate": estimate,
        "se": se,
        "df": df,
        "ci_low": estimate - quantile * se,
        "ci_high": estimate + quantile * se,
        "statistic": statistic,
        "p_value": p_value,
    }
