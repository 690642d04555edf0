"""Checks that a tidy DataFrame holds the columns a figure or table needs."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from toolkit.errors import DataError


def require_columns(data: pd.DataFrame, columns: Iterable[str | None], *, what: str) -> None:
    """Raise :class:`DataError` naming every missing column and the columns that are present.

    Parameters
    ----------
    data : DataFrame
        The input table.
    columns : iterable of str or None
        Column names the caller needs; ``None`` entries (optional columns not asked for) are ignored.
    what : str
        The figure or table being built, named in the message.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"{what}: expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise DataError(
            f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the data has {', '.join(map(str, data.columns)) or 'no columns'} "
            "(pass the column names as keyword arguments if they differ)"
        )
    if data.empty:
        raise DataError(f"{what}: the data has no rows")


def require_numeric(data: pd.DataFrame, column: str, *, what: str) -> pd.Series:
    """Return ``data[column]`` as float, raising :class:`DataError` for values that are not numbers."""
    values = pd.to_numeric(data[column], errors="coerce")
    bad = data[column].notna() & values.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in data.loc[bad, column].unique()[:3])
        raise DataError(f"{what}: column {column!r} must be numeric; found {examples}")
    return values.astype(float)
