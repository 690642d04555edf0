"""Numbers with their units, written as an operator reads them: ``12.5 mA``, ``1.2 kΩ``, ``200 µs``.

``format_quantity(value, unit)`` picks the SI prefix; ``unit_of(name)`` reads the unit from the suffix of a
setting's name (``amplitude_V`` → ``V``), so a read-back or a verification message never shows a bare number.
"""

from __future__ import annotations

import math

__all__ = ["format_quantity", "format_setting", "unit_of"]

_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))

#: name suffix → unit symbol (the project's names end with their unit)
_SUFFIX_UNITS = {"V": "V", "Vpp": "Vpp", "A": "A", "s": "s", "Hz": "Hz", "ohm": "Ω", "ohms": "Ω", "C": "C",
                 "J": "J", "W": "W"}


def format_quantity(value: float | None, unit: str, digits: int = 4) -> str:
    """``value`` in ``unit`` with the SI prefix that keeps between 1 and 999 before the point.

    Parameters
    ----------
    value : float or None
        The number in the base unit (amperes, seconds, ohms …); None or NaN reads "not measured".
    unit : str
        Unit symbol; empty for a plain number.
    digits : int
        Significant digits.

    Returns
    -------
    str
        For example ``format_quantity(0.01234, "A")`` is ``"12.34 mA"``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    v = float(value)
    if not unit:
        return f"{v:.{digits}g}"
    if math.isinf(v) or v == 0:
        return f"{v:g} {unit}"
    mag = abs(v)
    k = next((n for n, (scale, _) in enumerate(_PREFIXES) if mag >= scale * (1 - 5 * 10.0 ** -(digits + 1))),
             len(_PREFIXES) - 1)
    scale, prefix = _PREFIXES[k]
    text = f"{v / scale:.{digits}g}"
    if abs(float(text)) >= 1000 and k > 0:  # rounding carried over to the next prefix (999.96 mA → 1 A)
        scale, prefix = _PREFIXES[k - 1]
        text = f"{v / scale:.{digits}g}"
    return f"{text} {prefix}{unit}"


def unit_of(name: str) -> str:
    """The unit a name ends with (``pulse_width_s`` → ``s``, ``load_ohms`` → ``Ω``); empty when none."""
    suffix = name.rsplit("_", 1)[-1] if "_" in name else ""
    return _SUFFIX_UNITS.get(suffix, "")


def format_setting(name: str, value: object, digits: int = 6) -> str:
    """A setting's value with the unit its name carries; text and flags as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value) if isinstance(value, str) else str(value)
    return format_quantity(float(value), unit_of(name), digits)
