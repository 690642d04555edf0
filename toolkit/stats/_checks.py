"""Input checks shared by the analysis functions: every user mistake becomes a DataError that names it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from toolkit.errors import DataError


def require_frame(data: object, *, what: str = "data") -> pd.DataFrame:
    """Return ``data`` if it is a non-empty DataFrame, else raise :class:`DataError`."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"`{what}` must be a pandas DataFrame in long form, got {type(data).__name__}")
    if data.empty:
        raise DataError(f"`{what}` is empty: the analysis needs at least one row per subject")
    return data


def require_columns(data: pd.DataFrame, columns: Iterable[str | None], *, what: str = "data") -> None:
    """Raise :class:`DataError` naming every column of ``columns`` that ``data`` lacks."""
    wanted = [c for c in columns if c is not None]
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        available = ", ".join(map(str, data.columns[:40]))
        raise DataError(
            f"column(s) {', '.join(repr(c) for c in missing)} not found in {what}",
            details=[f"available columns: {available}"],
        )


def require_numeric(data: pd.DataFrame, column: str, *, role: str) -> np.ndarray:
    """Return ``data[column]`` as float64 or raise :class:`DataError` if it is not numeric."""
    series = data[column]
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        converted = pd.to_numeric(series, errors="coerce")
        bad = series[converted.isna() & series.notna()]
        if len(bad):
            examples = ", ".join(repr(v) for v in bad.unique()[:5])
            raise DataError(
                f"{role} column {column!r} must be numeric; found non-numeric values {examples}",
                details=["convert the column to numbers (e.g. pd.to_numeric) or choose another column"],
            )
        series = converted
    return series.to_numpy(dtype=float, na_value=np.nan)


def require_complete(data: pd.DataFrame, columns: Sequence[str], *, id_column: str | None, role: str) -> None:
    """Raise :class:`DataError` if any of ``columns`` has missing values, naming the subjects affected."""
    for column in columns:
        missing = data[column].isna()
        if missing.any():
            who = ""
            if id_column is not None and id_column in data.columns:
                ids = data.loc[missing, id_column].astype(str).unique()
                who = f" (subjects {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
            raise DataError(
                f"{role} column {column!r} has {int(missing.sum())} missing value(s){who}",
                details=[
                    "impute or exclude these records explicitly before the analysis "
                    "(the toolkit does not drop them silently)"
                ],
            )


def categorical_levels(series: pd.Series, reference: object | None = None, *, column: str) -> list:
    """Levels of a categorical column, with ``reference`` first when given.

    The order is the categorical order for a pandas Categorical, otherwise the sorted unique values.
    """
    values = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        levels = [lv for lv in series.cat.categories if (values == lv).any()]
    else:
        levels = sorted(values.unique().tolist(), key=_natural_key)
    if reference is not None:
        if reference not in levels:
            raise DataError(
                f"reference level {reference!r} not found in column {column!r}",
                details=[f"levels present: {', '.join(map(str, levels))}"],
            )
        levels = [reference] + [lv for lv in levels if lv != reference]
    return levels


def _natural_key(value: object) -> tuple:
    """Sort key that orders 'Week 8' before 'Week 16' and numbers numerically."""
    import re

    if isinstance(value, int | float | np.number):
        return (0, float(value), "")
    parts = re.split(r"(\d+(?:\.\d+)?)", str(value))
    return (1, 0.0, tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)))


def natural_sorted(values: Iterable) -> list:
    """Sort visit or level labels in natural order ('Week 8' < 'Week 16')."""
    return sorted(values, key=_natural_key)


def is_categorical(series: pd.Series) -> bool:
    """Whether a covariate enters the model as a factor (by dtype: not numeric, or boolean)."""
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(series)
        or not pd.api.types.is_numeric_dtype(series)
    )


def require_one_record_per_visit(data: pd.DataFrame, subject: str, visit: str) -> None:
    """Raise :class:`DataError` if a subject has more than one record at a visit, naming the first."""
    dup = data.duplicated([subject, visit])
    if dup.any():
        first = data.loc[dup, [subject, visit]].iloc[0]
        raise DataError(
            f"{int(dup.sum())} duplicated record(s) per subject and visit (e.g. {first[subject]} at {first[visit]})",
            details=["keep one analysis record per visit (e.g. filter on ANL01FL == 'Y' and one PARAMCD)"],
        )
