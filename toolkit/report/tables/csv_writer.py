"""Write a :class:`~toolkit.report.tables.model.Table` as CSV (machine-readable; one header row)."""

from __future__ import annotations

from pathlib import Path

from toolkit.report.tables._atomic import write_atomically
from toolkit.report.tables.model import Table

__all__ = ["write_csv"]


def write_csv(table: Table, path: str | Path) -> Path:
    """Write the body of ``table`` as UTF-8 CSV; two-level headers are joined with ``" | "``.

    Parameters
    ----------
    table : Table
        The table.
    path : str or Path
        Target file (written under a temporary name, then renamed).

    Returns
    -------
    Path
    """
    body = table.body.copy()
    body.columns = table.flat_columns()
    return write_atomically(path, lambda tmp: body.to_csv(tmp, index=False, encoding="utf-8"))
