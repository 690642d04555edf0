"""Rounding as SAS prints it: halves away from zero (1/8 = 12.5 % prints as 13 %), not to even.

Python's ``round`` and ``format`` round binary floats, so 12.5 becomes "12" and 0.125 → "0.12"; tables that
regulators compare against SAS output round decimal halves up instead.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["format_half_up", "format_percent"]


def format_half_up(value: float, decimals: int = 0) -> str:
    """``value`` with ``decimals`` places, halves rounded away from zero (``format_half_up(12.5) == "13"``).

    The float is read through its shortest repr, so ``100 * 1 / 8`` (exactly 12.5) and ``2.675`` (stored as
    2.67499…) both round the way they print.
    """
    if value is None or not math.isfinite(value):
        return ""
    quantum = Decimal(1).scaleb(-decimals)
    text = str(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))
    return "0" + text[2:] if text.startswith("-0") and not any(c in "123456789" for c in text) else text


def format_percent(n: int, total: int, decimals: int = 0) -> str:
    """``n`` as a percentage of ``total``, rounded half up; empty when ``total`` is 0."""
    if not total:
        return ""
    return format_half_up(100.0 * n / total, decimals)
