"""Prescription figures and the safety envelope, checked against physics computed independently here.

The oracle functions below do not use the toolkit's formulas: they sample the waveform in time and
integrate numerically (r.m.s. current, energy per pulse) or enumerate pulses one by one (net charge).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from toolkit.study import (
    ElectroporationPrescription,
    MicrocurrentPrescription,
    SafetyEnvelope,
    ShamPrescription,
)

SAFE_PLACEMENT = [["cheek", "jawline"]]
# placements labelled by facial anatomy: does the straight path between the electrodes cross the eyes?
PLACEMENTS_KEEPING_CLEAR = [
    [["cheek", "jawline"]],
    [["nasolabial", "preauricular"]],
    [["forehead_l", "forehead_r"]],
    [["marionette", "jawline"]],
    [["perioral", "cheek"]],
    [["cheek_l", "jawline_l"], ["cheek_r", "jawline_r"]],
    [["temple", "preauricular"]],
    [["chin", "jawline"]],
]
PLACEMENTS_ACROSS_EYES = [
    [["forehead", "cheek"]],
    [["temple_l", "temple_r"]],
    [["glabella", "nasolabial"]],
    [["forehead", "jawline"]],
    [["forehead_center", "chin"]],
    [["cheek", "jawline"], ["forehead_l", "cheek_l"]],
]

DEFAULT = SafetyEnvelope()
ENVELOPE_LIMITS = {
    "density_mA_per_cm2": 2.0,
    "microcurrent_uA": 1000.0,
    "energy_mJ": 300.0,
    "peak_V": 500.0,
    "session_min": 60.0,
}


# -- independent oracles ---------------------------------------------------------------------------------


def sampled_rms(levels_A: np.ndarray) -> float:
    return float(np.sqrt(np.mean(levels_A**2)))


def mc_waveform_rms_A(current_uA: float, waveform: str, frequency_Hz: float | None, duty: float) -> float:
    """r.m.s. over one waveform cycle, by sampling the current 20 000 times."""
    current = current_uA * 1e-6
    if waveform == "galvanic":
        return current
    t = (np.arange(20_000) + 0.5) / 20_000 / frequency_Hz
    phase = t * frequency_Hz
    if waveform == "biphasic":
        i = np.where(phase < 0.5, current, -current)
    else:
        i = np.where(phase < duty, current, 0.0)
    return sampled_rms(i)


def faradic_net_charge_C(current_uA: float, frequency_Hz: float, duty: float, period_s: float) -> float:
    """Net charge of one polarity period: enumerate each pulse and intersect it with the two halves."""
    current = current_uA * 1e-6
    width = duty / frequency_Hz
    net = 0.0
    k = 0
    while k / frequency_Hz < period_s:
        start, end = k / frequency_Hz, k / frequency_Hz + width
        positive = max(0.0, min(end, period_s / 2) - start)
        negative = max(0.0, min(end, period_s) - max(start, period_s / 2))
        net += current * (positive - negative)
        k += 1
    return net


def ep_train_rms_A(amplitude_V: float, width_ms: float, rate_Hz: float, pulses: int, interval_s: float) -> float:
    """r.m.s. current into 500 Ω over one train interval, from a sampled pulse train."""
    width = width_ms * 1e-3
    dt = width / 25
    t = (np.arange(int(round(interval_s / dt))) + 0.5) * dt
    k = np.floor(t * rate_Hz)
    on = (k < pulses) & (t - k / rate_Hz < width)
    return sampled_rms(np.where(on, amplitude_V / 500.0, 0.0))


def ep_energy_mJ(amplitude_V: float, width_ms: float) -> float:
    """Energy of one pulse into 500 Ω by integrating V²/R over the sampled pulse."""
    dt = width_ms * 1e-3 / 1000
    power = np.full(1000, amplitude_V**2 / 500.0)
    return float(np.sum(power) * dt * 1e3)


def away_from(value: float, limit: float, rel: float = 0.01) -> bool:
    return abs(value - limit) > rel * limit


# -- known answers ---------------------------------------------------------------------------------------


def ep(**overrides) -> ElectroporationPrescription:
    values = {
        "amplitude_V": 70, "pulse_width_ms": 1, "pulse_rate_Hz": 5, "pulses_per_train": 5, "train_interval_s": 2,
        "duration_min": 20, "electrode_area_cm2": 4, "placement": SAFE_PLACEMENT,
    }
    values.update(overrides)
    return ElectroporationPrescription(**values)


def mc(**overrides) -> MicrocurrentPrescription:
    values = {
        "current_uA": 200, "waveform": "biphasic", "frequency_Hz": 1, "duration_min": 20, "electrode_area_cm2": 3,
        "placement": SAFE_PLACEMENT,
    }
    values.update(overrides)
    return MicrocurrentPrescription(**values)


def test_electroporation_figures_match_hand_calculation() -> None:
    figures = ep().figures()
    # 70 V into 500 Ω = 140 mA; 5 pulses per 2 s = 2.5 Hz; I_rms = 140 mA · √(1 ms · 2.5 Hz) = 7 mA
    assert figures.peak_current_A == pytest.approx(0.140)
    assert figures.mean_pulse_rate_Hz == pytest.approx(2.5)
    assert figures.rms_current_A == pytest.approx(0.007)
    assert figures.current_density_rms_mA_per_cm2 == pytest.approx(1.75)
    assert figures.energy_per_pulse_J == pytest.approx(70**2 / 500 * 1e-3)
    assert figures.charge_per_phase_C == pytest.approx(0.140 * 1e-3)
    assert figures.train_duration_s == pytest.approx(1.0)
    assert figures.rms_current_A == pytest.approx(ep_train_rms_A(70, 1, 5, 5, 2), rel=1e-3)


def test_carrier_bursts_are_balanced_when_whole_cycles_fit() -> None:
    whole = ep(carrier_Hz=2000).figures()  # 2 full cycles in 1 ms
    assert whole.charge_balanced and whole.net_charge_per_period_C == 0
    half = ep(carrier_Hz=1500).figures()  # 1.5 cycles: one extra positive half-cycle per pulse
    expected = 0.140 * (0.5 / 1500) * 5
    assert half.net_charge_per_period_C == pytest.approx(expected)
    assert whole.rms_current_A == pytest.approx(ep().figures().rms_current_A)


def test_microcurrent_figures() -> None:
    biphasic = mc().figures()
    assert biphasic.rms_current_A == pytest.approx(200e-6)
    assert biphasic.charge_per_phase_C == pytest.approx(200e-6 * 0.5)
    assert biphasic.charge_balanced
    faradic = mc(waveform="faradic", frequency_Hz=10, duty_cycle=0.25, polarity_period_s=2).figures()
    assert faradic.rms_current_A == pytest.approx(100e-6)  # 200 µA · √0.25
    assert faradic.charge_per_phase_C == pytest.approx(200e-6 * 0.025)
    assert faradic.charge_balanced
    # 0.3 Hz with a 2 s polarity period: one pulse in the first half, none in the second
    lopsided = mc(waveform="faradic", frequency_Hz=0.3, polarity_period_s=2).figures()
    assert not lopsided.charge_balanced
    assert lopsided.net_charge_per_period_C == pytest.approx(faradic_net_charge_C(200, 0.3, 0.5, 2.0))


def test_sham_has_no_output_but_keeps_time_and_placement_rules() -> None:
    sham = ShamPrescription(duration_min=20, placement=SAFE_PLACEMENT)
    assert sham.figures().rms_current_A == 0
    assert DEFAULT.check(sham) == []
    long = ShamPrescription(duration_min=90, placement=[["forehead", "cheek"]])
    fields = sorted(v.field for v in DEFAULT.check(long))
    assert fields == ["duration_min", "placement"]


def test_violation_names_field_value_and_limit() -> None:
    violations = DEFAULT.check(mc(current_uA=400, electrode_area_cm2=0.1))
    assert len(violations) == 1
    v = violations[0]
    assert (v.field, v.quantity, v.limit) == ("current_uA", "current_density_rms", 2.0)
    assert v.value == pytest.approx(4.0)
    assert "4 mA/cm²" in v.message and "2 mA/cm²" in v.message and "current_uA" in v.message


def test_galvanic_needs_explicit_permission_with_a_dc_limit() -> None:
    galvanic = mc(waveform="galvanic", frequency_Hz=None)
    assert [v.field for v in DEFAULT.check(galvanic)] == ["waveform"]
    alternating = mc(waveform="galvanic", frequency_Hz=None, polarity_period_s=10)
    assert DEFAULT.check(alternating) == []
    permissive = SafetyEnvelope(galvanic_allowed=True, galvanic_dc_max_uA=300, galvanic_charge_max_mC=1000)
    assert permissive.check(galvanic) == []
    too_much = permissive.check(mc(waveform="galvanic", frequency_Hz=None, current_uA=400))
    assert [(v.quantity, round(v.value)) for v in too_much] == [("dc_current", 400)]
    with pytest.raises(ValidationError, match="galvanic_dc_max_uA"):
        SafetyEnvelope(galvanic_allowed=True, galvanic_charge_max_mC=100)
    with pytest.raises(ValidationError, match="galvanic_charge_max_mC"):
        SafetyEnvelope(galvanic_allowed=True, galvanic_dc_max_uA=300)


def test_a_direct_current_is_limited_by_the_charge_it_carries_one_way() -> None:
    """200 µA of direct current for the whole session carries 200e-6 · duration; reversed every 5 s, 1 ms worth."""
    env = SafetyEnvelope(galvanic_allowed=True, galvanic_dc_max_uA=300, galvanic_charge_max_mC="2 mA·min")
    assert env.galvanic_charge_max_mC == pytest.approx(120.0)  # 2 mA for a minute is 120 mC
    steady = mc(waveform="galvanic", frequency_Hz=None)
    duration_s = steady.duration_s
    over = [v for v in env.check(steady) if v.quantity == "direct_charge"]
    assert len(over) == 1 and over[0].field == "current_uA"
    assert over[0].value == pytest.approx(200e-6 * duration_s * 1e3) and over[0].limit == 120.0
    assert "galvanic_charge_max_mC 120 mC" in over[0].message
    reversing = mc(waveform="galvanic", frequency_Hz=None, polarity_period_s=10)
    assert reversing.figures().direct_charge_C == pytest.approx(200e-6 * 5)
    assert env.check(reversing) == []


def test_dc_plus_ac_figures_against_a_sampled_waveform() -> None:
    rx = mc(waveform="biphasic", frequency_Hz=10, dc_offset_uA=-50, current_uA=150)
    t = (np.arange(20_000) + 0.5) / 20_000 / 10.0
    i = -50e-6 + np.where(t * 10.0 < 0.5, 150e-6, -150e-6)
    f = rx.figures()
    assert f.rms_current_A == pytest.approx(sampled_rms(i), rel=1e-9)
    assert f.peak_current_A == pytest.approx(np.max(np.abs(i)))
    assert f.net_charge_per_period_C == pytest.approx(-50e-6 * rx.duration_s) and not f.charge_balanced
    assert f.direct_charge_C == pytest.approx(50e-6 * rx.duration_s)
    # not charge-balanced: refused unless galvanic is allowed; the peak counts the DC part
    assert [v.field for v in DEFAULT.check(rx)] == ["waveform"]
    env = SafetyEnvelope(microcurrent_max_uA=180, galvanic_allowed=True, galvanic_dc_max_uA=100,
                         galvanic_charge_max_mC=1000)
    assert [(v.quantity, v.value) for v in env.check(rx)] == [("peak_current", pytest.approx(200.0))]
    with pytest.raises(ValidationError, match="dc_offset_uA makes a combined DC"):
        mc(waveform="faradic", frequency_Hz=10, dc_offset_uA=20)


def test_envelope_only_tightens() -> None:
    with pytest.raises(ValidationError, match="loosens the default limit 2 mA/cm²"):
        SafetyEnvelope(current_density_rms_max_mA_per_cm2=3)
    with pytest.raises(ValidationError, match="loosens the default limit 60 min"):
        SafetyEnvelope(session_duration_max_min="2 h")
    tight = SafetyEnvelope(session_duration_max_min=15, ep_peak_voltage_max_V=60)
    fields = sorted(v.field for v in tight.check(ep()))
    assert fields == ["amplitude_V", "duration_min"]


@pytest.mark.parametrize(
    ("factory", "overrides", "words"),
    [
        (mc, {"frequency_Hz": None}, "needs frequency_Hz"),
        (mc, {"waveform": "galvanic"}, "no frequency"),
        (mc, {"driver": "generator"}, "series_resistor_ohm"),
        (mc, {"series_resistor_ohm": 10_000}, "generator only"),
        (mc, {"duty_cycle": 0.3}, "faradic pulses only"),
        (mc, {"ramp_up_s": 700, "ramp_down_s": 600}, "shorter than its ramps"),
        (mc, {"current_uA": -5}, "greater than 0"),
        (ep, {"train_interval_s": 0.5}, "longer than train_interval_s"),
        (ep, {"pulse_rate_Hz": 1000}, "overlap"),
        (ep, {"carrier_Hz": 500}, "one full cycle"),
        (ep, {"pulses_per_train": 2.5}, "integer"),
        (ep, {"placement": [["cheek"]]}, "exactly two sites"),
        (ep, {"placement": [["cheek", "nose"]]}, "unknown electrode site"),
        (ep, {"placement": [["cheek", "jawline_l"]]}, "both sites"),
        (ep, {"placement": []}, "at least one electrode pair"),
    ],
)
def test_inconsistent_prescriptions_are_refused(factory, overrides, words) -> None:
    with pytest.raises(ValidationError, match=words):
        factory(**overrides)


@pytest.mark.parametrize("placement", PLACEMENTS_KEEPING_CLEAR)
def test_placements_clear_of_the_eyes_pass(placement) -> None:
    assert DEFAULT.check(mc(placement=placement)) == []


@pytest.mark.parametrize("placement", PLACEMENTS_ACROSS_EYES)
def test_placements_across_the_eyes_are_refused(placement) -> None:
    violations = DEFAULT.check(mc(placement=placement))
    assert [v.field for v in violations] == ["placement"]
    assert "eye" in violations[0].message


# -- property tests: nothing outside validates, nothing inside is refused ---------------------------------

placements = st.sampled_from([(p, True) for p in PLACEMENTS_KEEPING_CLEAR] + [(p, False) for p in PLACEMENTS_ACROSS_EYES])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(
    waveform=st.sampled_from(["biphasic", "faradic", "galvanic"]),
    current_uA=st.floats(1, 2000),
    frequency_Hz=st.floats(0.5, 30),
    duty=st.floats(0.05, 1.0),
    alternation=st.sampled_from(["none", "whole", "any"]),
    cycles_per_half=st.integers(1, 20),
    period_s=st.floats(0.5, 10),
    area_cm2=st.floats(0.05, 10),
    duration_min=st.floats(1, 90),
    placement=placements,
)
def test_microcurrent_envelope_agrees_with_physics(
    waveform, current_uA, frequency_Hz, duty, alternation, cycles_per_half, period_s, area_cm2, duration_min, placement
) -> None:
    sites, clear = placement
    if alternation == "none":
        polarity = None
    elif alternation == "whole":
        polarity = 2 * cycles_per_half / frequency_Hz  # whole cycles in each half: balanced by construction
    else:
        polarity = period_s
    prescription = MicrocurrentPrescription(
        current_uA=current_uA,
        waveform=waveform,
        frequency_Hz=None if waveform == "galvanic" else frequency_Hz,
        duty_cycle=duty if waveform == "faradic" else None,
        polarity_period_s=polarity,
        duration_min=duration_min,
        electrode_area_cm2=area_cm2,
        placement=sites,
    )
    rms_A = mc_waveform_rms_A(current_uA, waveform, frequency_Hz, duty)
    density = rms_A * 1e3 / area_cm2
    assume(away_from(density, ENVELOPE_LIMITS["density_mA_per_cm2"]))
    assume(away_from(current_uA, ENVELOPE_LIMITS["microcurrent_uA"]))
    assume(away_from(duration_min, ENVELOPE_LIMITS["session_min"]))
    if waveform == "biphasic":
        balanced = True
    elif waveform == "galvanic":
        balanced = polarity is not None
    elif polarity is None:
        balanced = False
    else:
        net = faradic_net_charge_C(current_uA, frequency_Hz, duty, polarity)
        phase = current_uA * 1e-6 * duty / frequency_Hz
        assume(abs(net) < 1e-9 * phase or abs(net) > 1e-3 * phase)
        balanced = abs(net) < 1e-9 * phase
    inside = (
        density <= ENVELOPE_LIMITS["density_mA_per_cm2"]
        and current_uA <= ENVELOPE_LIMITS["microcurrent_uA"]
        and duration_min <= ENVELOPE_LIMITS["session_min"]
        and balanced
        and clear
    )
    violations = DEFAULT.check(prescription)
    assert (violations == []) == inside, (violations, density, balanced, clear)
    assert prescription.figures().rms_current_A == pytest.approx(rms_A, rel=1e-3)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(
    amplitude_V=st.floats(5, 800),
    width_ms=st.floats(0.2, 5),
    rate_Hz=st.floats(0.5, 50),
    pulses=st.integers(1, 20),
    spacing=st.floats(1.0, 4.0),
    area_cm2=st.floats(0.5, 10),
    duration_min=st.floats(1, 90),
)
def test_electroporation_envelope_agrees_with_physics(
    amplitude_V, width_ms, rate_Hz, pulses, spacing, area_cm2, duration_min
) -> None:
    assume(width_ms * 1e-3 * rate_Hz < 0.9)
    interval_s = pulses / rate_Hz * spacing
    assume(interval_s <= 5)
    prescription = ElectroporationPrescription(
        amplitude_V=amplitude_V, pulse_width_ms=width_ms, pulse_rate_Hz=rate_Hz, pulses_per_train=pulses,
        train_interval_s=interval_s, duration_min=duration_min, electrode_area_cm2=area_cm2,
        placement=SAFE_PLACEMENT,
    )
    rms_A = ep_train_rms_A(amplitude_V, width_ms, rate_Hz, pulses, interval_s)
    density = rms_A * 1e3 / area_cm2
    energy = ep_energy_mJ(amplitude_V, width_ms)
    assume(away_from(density, ENVELOPE_LIMITS["density_mA_per_cm2"], 0.03))
    assume(away_from(energy, ENVELOPE_LIMITS["energy_mJ"]))
    assume(away_from(amplitude_V, ENVELOPE_LIMITS["peak_V"]))
    assume(away_from(duration_min, ENVELOPE_LIMITS["session_min"]))
    inside = (
        density <= ENVELOPE_LIMITS["density_mA_per_cm2"]
        and energy <= ENVELOPE_LIMITS["energy_mJ"]
        and amplitude_V <= ENVELOPE_LIMITS["peak_V"]
        and duration_min <= ENVELOPE_LIMITS["session_min"]
    )
    violations = DEFAULT.check(prescription)
    assert (violations == []) == inside, (violations, density, energy)
    figures = prescription.figures()
    assert figures.rms_current_A == pytest.approx(rms_A, rel=0.02)
    assert figures.energy_per_pulse_J * 1e3 == pytest.approx(energy, rel=1e-9)
    assert math.isclose(figures.peak_voltage_V, amplitude_V)
