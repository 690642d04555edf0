"""Checks and conversions of values the store accepts, shared by its aggregates.

Each check raises :class:`~toolkit.errors.DataError` naming the field and what is accepted.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from toolkit.errors import DataError
from toolkit.store.canonical import plain

__all__ = [
    "FITZPATRICK_TYPES",
    "SEXES",
    "SHA256_HEX",
    "SUBJECT_ID",
    "as_date",
    "choice",
    "fitzpatrick_type",
    "json_ready",
    "sex_code",
]

#: accepted sex codes (CDISC SEX)
SEXES = ("F", "M", "U")
#: Fitzpatrick skin types
FITZPATRICK_TYPES = ("I", "II", "III", "IV", "V", "VI")
#: a site subject id: letters, digits, ``-_.``, at most 40 characters
SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
#: a SHA-256 digest as 64 lower-case hexadecimal characters
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

_SEX_WORDS = {"f": "F", "female": "F", "m": "M", "male": "M", "u": "U", "unknown": "U"}
_ROMAN = {str(i + 1): r for i, r in enumerate(FITZPATRICK_TYPES)}


def sex_code(value: Any) -> str | None:
    """The CDISC sex code of ``value`` (``F``/``female`` …), or ``None`` when it is not one."""
    return _SEX_WORDS.get(str(value).strip().lower())


def fitzpatrick_type(value: Any) -> str:
    """The Fitzpatrick skin type of ``value`` as a Roman numeral (``"III"``; ``3`` is accepted too)."""
    text = str(value).strip().upper()
    text = _ROMAN.get(text, text)
    if text not in FITZPATRICK_TYPES:
        raise DataError(f"fitzpatrick {value!r} is not a Fitzpatrick skin type; accepted: I–VI (or 1–6)",
                        field="fitzpatrick")
    return text


def choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    """``value`` in lower case when it is one of ``allowed``."""
    text = str(value).strip().lower()
    if text not in allowed:
        raise DataError(f"{field} {value!r} is not accepted; accepted: {', '.join(allowed)}", field=field)
    return text


def as_date(value: Any, field: str) -> date:
    """``value`` as a calendar date (a date, a datetime, or ``YYYY-MM-DD`` text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise DataError(f"{field} {value!r} is not a date; accepted: YYYY-MM-DD", field=field) from None


def json_ready(value: Any, field: str) -> Any:
    """``value`` as plain JSON data for a JSON column, or a :class:`DataError` naming ``field``."""
    try:
        return plain(value)
    except TypeError as exc:
        raise DataError(f"{field}: {exc}", field=field) from None
