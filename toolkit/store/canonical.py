"""Canonical JSON of stored values, the exact text the audit trail hashes.

The same value must give the same text on every backend and after a round trip through the database, so
dates become ISO 8601 strings, instants become UTC ISO 8601, non-finite floats become strings, NumPy
scalars become Python numbers, and object keys are sorted.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = ["CANONICAL_ENCODER", "canonical_json", "json_column_text", "plain"]


def plain(value: Any) -> Any:
    """Return ``value`` as plain JSON data (dict, list, str, int, float, bool, None).

    Parameters
    ----------
    value : Any
        A column value: scalar, date, datetime, NumPy scalar, path, or nested dict/list of those.

    Returns
    -------
    Any
        JSON-ready data; datetimes in UTC ISO 8601, non-finite floats as ``"NaN"``/``"Infinity"``.
    """
    kind = type(value)
    # exact-type fast paths first: audit payloads are mostly flat rows of str/int/float/None
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if kind is dict:
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (str, bool)):
        return str(value) if isinstance(value, str) else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return plain(float(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return plain(float(value))
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    # NumPy scalars and arrays without importing NumPy here
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return plain(value.item())
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    raise TypeError(f"cannot store a value of type {type(value).__name__} in the audit trail: {value!r}")


#: one shared encoder: ``json.dumps`` with options would build a new encoder on every call
CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (sorted keys, no spaces, UTF-8 characters kept)."""
    return CANONICAL_ENCODER.encode(plain(value))


def json_column_text(value: Any) -> str:
    """The text the store writes for a JSON column: the canonical JSON of the value as given (so verification
    compares stored texts with the audit trail's), or the standard library's text for a value canonical JSON
    refuses (a non-finite float); values JSON cannot hold raise ``TypeError`` as before."""
    try:
        return CANONICAL_ENCODER.encode(value)
    except ValueError:
        return json.dumps(value)
