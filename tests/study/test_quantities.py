"""Quantities in a study file: a number in the key's unit, or a string with an explicit unit."""

from __future__ import annotations

import math

import pytest
from pydantic import TypeAdapter, ValidationError

from toolkit.study.quantities import (
    Fraction,
    Hertz,
    Microamperes,
    Milliseconds,
    Minutes,
    SquareCentimetres,
    Volts,
)


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        (Microamperes, 200, 200.0),
        (Microamperes, "200 uA", 200.0),
        (Microamperes, "200µA", 200.0),
        (Microamperes, "0.2 mA", 200.0),
        (Microamperes, "2e-4 A", 200.0),
        (Milliseconds, "1000 us", 1.0),
        (Milliseconds, "0.001 s", 1.0),
        (Minutes, "1200 s", 20.0),
        (Hertz, "1.5 kHz", 1500.0),
        (Volts, "0.07 kV", 70.0),
        (SquareCentimetres, "250 mm2", 2.5),
        (SquareCentimetres, "2.5 cm²", 2.5),
        (Fraction, "5 %", 0.05),
        (Fraction, 0.05, 0.05),
    ],
)
def test_units_convert_to_the_unit_of_the_key(kind, given, expected) -> None:
    assert math.isclose(TypeAdapter(kind).validate_python(given), expected, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("kind", "given", "expected_words"),
    [
        (Microamperes, "200 V", ["not a current", "uA", "mA"]),
        (Milliseconds, "1 Hz", ["not a time", "ms", "us"]),
        (Volts, "seventy", ["expected a voltage", "'seventy'"]),
        (Microamperes, True, ["boolean"]),
        (Microamperes, [200], ["got list"]),
        (Microamperes, float("nan"), ["finite"]),
        (Fraction, "0.05", ["percentage"]),
    ],
)
def test_wrong_units_say_what_is_accepted(kind, given, expected_words) -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(kind).validate_python(given)
    message = info.value.errors()[0]["msg"]
    for word in expected_words:
        assert word in message
