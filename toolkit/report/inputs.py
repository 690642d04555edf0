"""Reading what a study's data folder holds for the report, tolerantly.

Every reader returns ``None`` when its input is absent and raises :class:`~toolkit.errors.DataError` naming
the file when it is present but unreadable; the bundle builder turns both into "not available" notes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from toolkit.errors import DataError

__all__ = ["find_dataset", "pick_column", "read_results", "read_table", "read_truth"]


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet or SAS XPORT file into a DataFrame, with a :class:`DataError` naming the file."""
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, low_memory=False)
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() == ".xpt":
            try:
                return pd.read_sas(path, format="xport", encoding="utf-8")
            except StopIteration:  # pandas' reader cannot read a dataset without rows (a study without AEs)
                import pyreadstat

                return pyreadstat.read_xport(str(path), metadataonly=True)[0]
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable {path.suffix.lstrip('.').upper()} table: {exc}") from None
    raise DataError(f"{path}: unsupported table format (accepted: .csv, .parquet, .xpt)")


def find_dataset(analysis_dir: Path, names: Sequence[str]) -> Path | None:
    """The first of ``<name>.csv|.parquet|.xpt`` (any case) that exists in ``analysis_dir``."""
    if not analysis_dir.is_dir():
        return None
    files = {p.name.lower(): p for p in analysis_dir.iterdir() if p.is_file()}
    for name in names:
        for ext in (".csv", ".parquet", ".xpt"):
            if (hit := files.get(f"{name.lower()}{ext}")) is not None:
                return hit
    return None


def pick_column(data: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    """The first candidate column present (exact name, then case-insensitive)."""
    for c in candidates:
        if c in data.columns:
            return c
    lower = {str(c).lower(): c for c in data.columns}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    return None


def read_results(results_dir: Path) -> dict[str, pd.DataFrame]:
    """Read every results table under ``analysis/results``: CSV files and JSON files.

    JSON may be a list of records (one table), or an object whose list-of-records values are tables
    (``{"lsmeans": [...], "contrasts": [...]}``, named ``<file>.<key>``); other JSON values are ignored.

    Returns
    -------
    dict
        ``{name: DataFrame}`` in file-name order.
    """
    out: dict[str, pd.DataFrame] = {}
    if not results_dir.is_dir():
        return out
    for path in sorted(results_dir.iterdir()):
        if path.suffix.lower() in (".csv", ".parquet"):
            out[path.stem] = read_table(path)
        elif path.suffix.lower() == ".json":
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DataError(f"{path}: not valid JSON: {exc}") from None
            if _is_records(doc):
                out[path.stem] = pd.DataFrame(doc)
            elif isinstance(doc, dict):
                for key, value in doc.items():
                    if _is_records(value):
                        out[f"{path.stem}.{key}"] = pd.DataFrame(value)
    return out


def _is_records(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def read_truth(path: Path) -> pd.DataFrame | None:
    """Read ``truth.json`` (simulated true effects) into rows of ``endpoint``, ``contrast``, ``visit``, ``value``.

    Accepted shapes::

        {"effects": [{"endpoint": "WRKAREA", "contrast": "EP - Sham", "visit": "Week 12", "value": -0.8}, …]}
        {"effects": {"WRKAREA": {"EP - Sham": -0.8, …}, …}}     # or the same mapping at the top level

    ``visit`` is optional. Other top-level keys (seed, notes) are ignored.
    """
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    effects = doc.get("effects", doc) if isinstance(doc, dict) else doc
    rows = []
    if isinstance(effects, list):
        for i, item in enumerate(effects):
            if not isinstance(item, dict) or "value" not in item or "contrast" not in item:
                raise DataError(f"{path}: effects[{i}] needs 'contrast' and 'value' (and usually 'endpoint')")
            rows.append({"endpoint": str(item.get("endpoint", "")), "contrast": str(item["contrast"]),
                         "visit": str(item.get("visit", "")), "value": float(item["value"])})
    elif isinstance(effects, dict):
        for endpoint, by_contrast in effects.items():
            if isinstance(by_contrast, dict):
                for contrast, value in by_contrast.items():
                    if isinstance(value, int | float):
                        rows.append({"endpoint": str(endpoint), "contrast": str(contrast), "visit": "",
                                     "value": float(value)})
    if not rows:
        raise DataError(f"{path}: no effects found; expected {{'effects': [{{'endpoint', 'contrast', 'value'}}]}} "
                        "or {'effects': {endpoint: {contrast: value}}}")
    return pd.DataFrame(rows)
