"""Physical quantities written in a study file.

A study file states every quantity in the unit named by its key (``current_uA: 200``). A quantity may also be
written as a string with an explicit unit (``current_uA: "0.2 mA"``, ``pulse_width_ms: "1000 us"``); the
string is converted to the key's unit. A unit of the wrong kind (``current_uA: "200 V"``) is an error that
lists the units accepted for that key. Fractions (``current_rel``) accept ``0.05`` or ``"5 %"``.

The annotated types below (:data:`Microamperes`, :data:`Milliseconds` ...) carry that conversion for
pydantic models.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from toolkit.study.problems import rule_error

__all__ = [
    "Dimension",
    "parse_quantity",
    "Microamperes",
    "Milliamperes",
    "Volts",
    "Milliseconds",
    "Seconds",
    "Minutes",
    "Hertz",
    "SquareCentimetres",
    "Ohms",
    "Fraction",
    "Millijoules",
    "Millicoulombs",
    "MilliampsPerSquareCm",
]


@dataclass(frozen=True)
class Dimension:
    """A physical dimension and the unit spellings accepted for it, with their size in the SI unit."""

    #: what the quantity is, for messages ("a current")
    name: str
    #: unit spelling -> factor to the SI unit of the dimension
    units: dict[str, float]

    def accepted(self) -> str:
        """The unit spellings, for an error message."""
        return ", ".join(self.units)


CURRENT = Dimension("a current", {"uA": 1e-6, "µA": 1e-6, "μA": 1e-6, "mA": 1e-3, "A": 1.0})
VOLTAGE = Dimension("a voltage", {"mV": 1e-3, "V": 1.0, "kV": 1e3})
TIME = Dimension(
    "a time", {"us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
)
FREQUENCY = Dimension("a frequency", {"mHz": 1e-3, "Hz": 1.0, "kHz": 1e3})
AREA = Dimension("an area", {"mm2": 1e-6, "mm²": 1e-6, "cm2": 1e-4, "cm²": 1e-4})
RESISTANCE = Dimension(
    "a resistance", {"ohm": 1.0, "Ω": 1.0, "kohm": 1e3, "kΩ": 1e3, "Mohm": 1e6, "MΩ": 1e6}
)
ENERGY = Dimension("an energy", {"uJ": 1e-6, "µJ": 1e-6, "mJ": 1e-3, "J": 1.0})
#: a charge; iontophoresis doses are often written in mA·min (1 mA for 1 min = 60 mC)
CHARGE = Dimension("a charge", {"uC": 1e-6, "µC": 1e-6, "mC": 1e-3, "C": 1.0, "mA·min": 0.06, "mAmin": 0.06})
CURRENT_DENSITY = Dimension(
    "a current density", {"uA/cm2": 1e-2, "µA/cm2": 1e-2, "mA/cm2": 10.0, "mA/cm²": 10.0, "A/m2": 1.0}
)
RATIO = Dimension("a fraction", {"%": 0.01})

_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")


def parse_quantity(value: object, dimension: Dimension, unit: str) -> float:
    """Return ``value`` expressed in ``unit``.

    Parameters
    ----------
    value : float, int or str
        A number (already in ``unit``) or a string ``"<number> <unit>"`` with a unit of ``dimension``.
    dimension : Dimension
        The kind of quantity the key holds.
    unit : str
        The unit named by the key; one of ``dimension.units``.

    Returns
    -------
    float
        The value in ``unit``.

    Raises
    ------
    pydantic_core.PydanticCustomError
        ``quantity`` error naming the accepted units when the string is not a number with a unit of
        ``dimension``, or the value is not finite.

    Examples
    --------
    >>> parse_quantity("0.2 mA", CURRENT, "uA")
    200.0
    """
    if isinstance(value, bool):
        raise rule_error(
            "quantity", "expected {what} in {unit} (a number), got a boolean", {"what": dimension.name, "unit": unit}
        )
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        if not match:
            raise rule_error(
                "quantity",
                "expected {what}: a number in {unit} or a string like '<number> <unit>' with a unit among "
                "{accepted}; got {value!r}",
                {"what": dimension.name, "unit": unit, "accepted": dimension.accepted(), "value": value},
            )
        number = float(match.group(1))
        given = match.group(2)
        if given is not None:
            factor = dimension.units.get(given.replace(" ", ""))
            if factor is None:
                raise rule_error(
                    "quantity",
                    "{value!r} is not {what}; write a number in {unit} or a string with one of the units "
                    "{accepted}",
                    {"what": dimension.name, "unit": unit, "accepted": dimension.accepted(), "value": value},
                )
            number = number * factor / dimension.units[unit]
    else:
        raise rule_error(
            "quantity",
            "expected {what} in {unit} (a number or a string like '<number> <unit>'), got {type}",
            {"what": dimension.name, "unit": unit, "type": type(value).__name__},
        )
    if not math.isfinite(number):
        raise rule_error("quantity", "expected a finite number, got {value!r}", {"value": value})
    return number


def _quantity(dimension: Dimension, unit: str) -> BeforeValidator:
    return BeforeValidator(lambda v: parse_quantity(v, dimension, unit))


def _schema(dimension: Dimension, unit: str) -> WithJsonSchema:
    # editors that validate study.yaml against the JSON Schema must accept "0.2 mA" as well as 200
    units = "|".join(sorted((u.replace("/", "\\/") for u in dimension.units), key=len, reverse=True))
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": rf"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*({units})?\s*$"},
            ],
            "description": f"{dimension.name} in {unit}, or a string with a unit: {dimension.accepted()}",
        }
    )


#: a current in microamperes (``200``, ``"200 uA"``, ``"0.2 mA"``)
Microamperes = Annotated[float, _quantity(CURRENT, "uA"), _schema(CURRENT, "uA")]
#: a current in milliamperes
Milliamperes = Annotated[float, _quantity(CURRENT, "mA"), _schema(CURRENT, "mA")]
#: a voltage in volts
Volts = Annotated[float, _quantity(VOLTAGE, "V"), _schema(VOLTAGE, "V")]
#: a time in milliseconds
Milliseconds = Annotated[float, _quantity(TIME, "ms"), _schema(TIME, "ms")]
#: a time in seconds
Seconds = Annotated[float, _quantity(TIME, "s"), _schema(TIME, "s")]
#: a time in minutes
Minutes = Annotated[float, _quantity(TIME, "min"), _schema(TIME, "min")]
#: a frequency in hertz
Hertz = Annotated[float, _quantity(FREQUENCY, "Hz"), _schema(FREQUENCY, "Hz")]
#: an area in square centimetres
SquareCentimetres = Annotated[float, _quantity(AREA, "cm2"), _schema(AREA, "cm2")]
#: a resistance in ohms
Ohms = Annotated[float, _quantity(RESISTANCE, "ohm"), _schema(RESISTANCE, "ohm")]
#: an energy in millijoules
Millijoules = Annotated[float, _quantity(ENERGY, "mJ"), _schema(ENERGY, "mJ")]
#: a charge in millicoulombs (``120``, ``"120 mC"``, ``"2 mA·min"``)
Millicoulombs = Annotated[float, _quantity(CHARGE, "mC"), _schema(CHARGE, "mC")]
#: a current density in mA/cm²
MilliampsPerSquareCm = Annotated[float, _quantity(CURRENT_DENSITY, "mA/cm2"), _schema(CURRENT_DENSITY, "mA/cm2")]
def _fraction(value: object) -> float:
    # a bare number is already a fraction; "5 %" is a percentage
    if isinstance(value, str) and value.strip().endswith("%"):
        return parse_quantity(value, RATIO, "%") / 100.0
    if isinstance(value, str):
        raise rule_error(
            "quantity", "expected a fraction (0.05) or a percentage ('5 %'), got {value!r}", {"value": value}
        )
    return parse_quantity(value, RATIO, "%")


#: a dimensionless fraction (``0.05`` or ``"5 %"``)
Fraction = Annotated[
    float,
    BeforeValidator(_fraction),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*(\d+\.?\d*|\.\d+)\s*%\s*$"}],
            "description": "a fraction (0.05) or a percentage ('5 %')",
        }
    ),
]
