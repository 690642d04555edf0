"""Numbers written with their units and SI prefixes (BIPM SI brochure, table 7: k, m, µ, n, p …)."""

from __future__ import annotations

import math

import pytest

from instruments.units import format_quantity, format_setting, unit_of


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.01234, "A", "12.34 mA"),
        (110.1e-6, "A", "110.1 µA"),
        (200e-6, "s", "200 µs"),
        (1500.0, "Hz", "1.5 kHz"),
        (1.0e3, "Ω", "1 kΩ"),
        (2.2e6, "Ω", "2.2 MΩ"),
        (-0.5, "V", "-500 mV"),
        (3e-13, "C", "0.3 pC"),  # below the smallest prefix kept (pico)
        (0.99996, "A", "1 A"),  # rounding carries over to the next prefix, never "1000 mA"
        (999.96e-6, "A", "1 mA"),
        (0.0, "V", "0 V"),
        (70.0, "V", "70 V"),
    ],
)
def test_format_quantity_picks_the_prefix(value: float, unit: str, text: str) -> None:
    assert format_quantity(value, unit) == text


def test_format_quantity_says_what_was_not_measured() -> None:
    assert format_quantity(math.nan, "A") == "not measured"
    assert format_quantity(None, "A") == "not measured"
    assert format_quantity(math.inf, "Ω") == "inf Ω"


@pytest.mark.parametrize(
    ("name", "unit"),
    [("amplitude_V", "V"), ("pulse_width_s", "s"), ("frequency_Hz", "Hz"), ("load_ohms", "Ω"),
     ("impedance_ohm", "Ω"), ("charge_C", "C"), ("pulses_per_burst", ""), ("waveform", "")],
)
def test_unit_of_reads_the_name_suffix(name: str, unit: str) -> None:
    assert unit_of(name) == unit


def test_format_setting_keeps_text_and_counts() -> None:
    assert format_setting("amplitude_V", 1.25) == "1.25 V"
    assert format_setting("pulse_width_s", 1e-3) == "1 ms"
    assert format_setting("pulses_per_burst", 12) == "12"
    assert format_setting("waveform", "biphasic") == "'biphasic'"
    assert format_setting("output", True) == "True"
