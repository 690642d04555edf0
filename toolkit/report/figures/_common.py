"""Shared pieces of the figure functions: arm and visit order, summary statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from toolkit.errors import DataError
from toolkit.report.style import ArmStyle, arm_styles, order_arms


def arms_and_styles(
    data: pd.DataFrame, arm: str, arm_order: Sequence[str] | None, *, what: str
) -> tuple[list[str], dict[str, ArmStyle]]:
    """Arms to draw (``arm_order`` or the house order) and their styles."""
    present = order_arms(data[arm].dropna().astype(str))
    if arm_order is None:
        arms = present
    else:
        arms = [str(a) for a in arm_order]
        unknown = sorted(set(present) - set(arms))
        if unknown:
            raise DataError(f"{what}: arm(s) {unknown} in column {arm!r} are not in arm_order {arms}")
    if not arms:
        raise DataError(f"{what}: column {arm!r} holds no arm labels")
    return arms, arm_styles(arms)


def visit_order(
    data: pd.DataFrame, visit: str, visit_num: str | None, order: Sequence[str] | None, *, what: str
) -> list[str]:
    """Visits in analysis order: ``order`` if given, else by ``visit_num`` when present, else first appearance."""
    labels = data[visit].dropna().astype(str)
    if order is not None:
        order = [str(v) for v in order]
        unknown = sorted(set(labels) - set(order))
        if unknown:
            raise DataError(f"{what}: visit(s) {unknown} in column {visit!r} are not in visit_order {order}")
        return order
    if visit_num and visit_num in data.columns:
        firsts = data.dropna(subset=[visit]).groupby(data[visit].astype(str))[visit_num].min()
        return list(firsts.sort_values(kind="stable").index)
    return list(dict.fromkeys(labels))


def mean_ci(values: pd.Series, level: float = 0.95) -> tuple[int, float, float, float]:
    """n, mean and the two-sided t-based confidence interval of the mean (NaN bounds when n < 2)."""
    x = values.dropna().to_numpy(dtype=float)
    n = x.size
    if n == 0:
        return 0, float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return n, mean, float("nan"), float("nan")
    from scipy import stats  # scipy.stats is slow to import; only needed here
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return n, mean, mean - half, mean + half


def check_level(level: float, *, what: str) -> None:
    """Refuse a confidence level outside (0, 1)."""
    if not 0.0 < float(level) < 1.0:
        raise DataError(f"{what}: confidence level must be between 0 and 1 (e.g. 0.95), got {level!r}")


def axis_label(name: str, unit: str | None) -> str:
    """``"name (unit)"`` or ``"name"``."""
    return f"{name} ({unit})" if unit else name
