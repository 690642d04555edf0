"""SAS XPORT version 5 files, checked before writing.

The transport format limits names to 8 characters, labels to 40 and character values to 200 bytes.
pyreadstat truncates labels silently and writes over-long values without complaint, so every limit is
checked first and all violations are reported together, each naming its variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from toolkit.errors import DataError

__all__ = [
    "MAX_CHAR_BYTES",
    "MAX_LABEL",
    "MAX_NAME",
    "check_xpt",
    "char_lengths",
    "read_xpt",
    "write_xpt",
]

#: longest dataset or variable name in XPORT v5
MAX_NAME = 8
#: longest dataset or variable label in XPORT v5
MAX_LABEL = 40
#: longest character value in XPORT v5, in bytes
MAX_CHAR_BYTES = 200

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_char(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def char_lengths(frame: pd.DataFrame) -> dict[str, int]:
    """Longest value of each character column in bytes (UTF-8); numeric columns are 8."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if _is_char(s):
            values = s.dropna().astype(str)
            out[str(col)] = max([1, *(len(v.encode("utf-8")) for v in values)])
        else:
            out[str(col)] = 8
    return out


def check_xpt(frame: pd.DataFrame, name: str, label: str, labels: Mapping[str, str]) -> list[str]:
    """Every reason ``frame`` cannot be written as XPORT v5, one line each (empty when it can)."""
    problems = []
    if not _NAME.match(name) or len(name) > MAX_NAME:
        problems.append(
            f"dataset name {name!r}: must be 1–{MAX_NAME} letters, digits or _, starting with a letter"
        )
    if len(label) > MAX_LABEL:
        problems.append(f"dataset {name} label is {len(label)} characters (max {MAX_LABEL}): {label!r}")
    seen: set[str] = set()
    for col in frame.columns:
        var = str(col)
        if not _NAME.match(var) or len(var) > MAX_NAME:
            problems.append(
                f"variable {var!r}: name must be 1–{MAX_NAME} letters, digits or _, starting with a letter"
                f" (it has {len(var)} characters)"
            )
        if var.upper() in seen:
            problems.append(f"variable {var!r}: name repeats (names are case-insensitive in SAS)")
        seen.add(var.upper())
        var_label = str(labels.get(var, ""))
        if len(var_label) > MAX_LABEL:
            problems.append(
                f"variable {var}: label is {len(var_label)} characters (max {MAX_LABEL}): {var_label!r}"
            )
        s = frame[col]
        if _is_char(s):
            for row, value in s.dropna().astype(str).items():
                size = len(value.encode("utf-8"))
                if size > MAX_CHAR_BYTES:
                    problems.append(
                        f"variable {var}: value in row {row} is {size} bytes (max {MAX_CHAR_BYTES}): {value[:30]!r}…"
                    )
                    break
    return problems


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(float)
        else:
            # XPORT has no missing character value: blanks are the convention
            out[col] = s.astype(object).where(s.notna(), "").astype(str)
    return out


def write_xpt(frame: pd.DataFrame, path: Path, *, name: str, label: str, labels: Mapping[str, str],
              formats: Mapping[str, str] | None = None) -> Path:
    """Write ``frame`` as a SAS XPORT v5 file after checking every limit.

    Parameters
    ----------
    frame : pandas.DataFrame
        Character columns (str/object) and numeric columns.
    path : Path
        Output file; written to a temporary name and renamed, so a failure leaves no partial file.
    name : str
        Dataset name (≤ 8).
    label : str
        Dataset label (≤ 40).
    labels : mapping
        Variable name -> label (≤ 40 each).
    formats : mapping, optional
        Variable name -> SAS display format (e.g. ``DATE9`` for a numeric date).

    Raises
    ------
    DataError
        Listing every name, label or value that does not fit, before anything is written.
    """
    import pyreadstat

    problems = check_xpt(frame, name, label, labels)
    if problems:
        raise DataError(f"dataset {name} cannot be written as SAS XPORT v5 ({path.name})", details=problems)
    data = _prepared(frame)
    tmp = path.with_name(path.name + ".tmp")
    pyreadstat.write_xport(
        data,
        str(tmp),
        file_label=label,
        column_labels=[str(labels.get(str(c), "")) for c in data.columns],
        table_name=name,
        file_format_version=5,
        variable_format={k: v for k, v in (formats or {}).items() if v and k in data.columns} or None,
    )
    os.replace(tmp, path)
    return path


def read_xpt(path: Path) -> tuple[pd.DataFrame, dict[str, str], str | None]:
    """Read an XPORT file: the frame, variable labels and the dataset (table) name."""
    import pyreadstat

    frame, meta = pyreadstat.read_xport(str(path))
    labels = dict(zip(meta.column_names, meta.column_labels or [""] * len(meta.column_names), strict=True))
    return frame, labels, meta.table_name
