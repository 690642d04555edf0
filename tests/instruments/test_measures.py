"""Waveform measures on analytic waveforms with known answers."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from instruments.base import Trace
from instruments.measures import measure_pair, true_runs


def _trace(t: np.ndarray, y: np.ndarray, unit: str, ch: int) -> Trace:
    return Trace(time_s=t, values=y, unit=unit, channel=ch, timestamp=datetime.now(UTC),
                 meta={"xinc_s": float(t[1] - t[0])})


def _pulse_train(amp: float, width: float, freq: float, n: int, dt: float, lead: float = 0.5e-3):
    t = np.arange(int((lead + n / freq) / dt)) * dt
    phase = np.mod(t - lead, 1.0 / freq)
    on = (t >= lead) & (phase < width) & (t < lead + n / freq)
    return t, np.where(on, amp, 0.0)


@pytest.mark.parametrize(("amp", "width", "freq", "ohms"), [(100.0, 1e-3, 100.0, 1000.0), (5.0, 50e-6, 2e3, 50.0)])
def test_rectangular_pulses_into_a_resistor(amp: float, width: float, freq: float, ohms: float) -> None:
    dt = width / 200
    n = 5
    t, v = _pulse_train(amp, width, freq, n, dt)
    i = v / ohms
    m = measure_pair(_trace(t, v, "V", 1), _trace(t, i, "A", 2))
    assert m.pulses == n
    assert m.amplitude_V == pytest.approx(amp, rel=1e-9)
    assert m.pulse_width_s == pytest.approx(width, rel=0.01)
    assert m.frequency_Hz == pytest.approx(freq, rel=1e-3)
    assert m.duty == pytest.approx(width * freq, rel=0.01)
    assert m.current_peak_A == pytest.approx(amp / ohms)
    # I_rms of a pulse train = I_peak * sqrt(width * frequency), over the whole periods of the record
    duty_in_record = n * width / (t[-1] + dt)
    assert m.current_rms_A == pytest.approx(amp / ohms * np.sqrt(duty_in_record), rel=0.01)
    assert m.charge_per_phase_C == pytest.approx(amp / ohms * width, rel=0.01)
    assert m.energy_per_pulse_J == pytest.approx(amp**2 / ohms * width, rel=0.01)
    assert m.impedance_ohms == pytest.approx(ohms, rel=1e-9)
    assert np.allclose(m.impedance_trend_ohms, ohms)
    assert abs(m.resistance_drop_fraction) < 1e-9
    d = m.as_dict()
    assert d["pulses"] == n and isinstance(d["impedance_trend_ohms"], list)


def test_biphasic_current_is_charge_balanced() -> None:
    dt = 1e-6
    k = np.arange(20000)
    t = k * dt
    i = np.where(k % 1000 < 500, 200e-6, -200e-6)  # 1 kHz, exactly 20 periods (integer phases)
    v = i * 10e3
    m = measure_pair(_trace(t, v, "V", 1), _trace(t, i, "A", 2))
    assert m.amplitude_V == pytest.approx(4.0, rel=1e-6)  # peak-to-peak of ±2 V
    assert m.frequency_Hz == pytest.approx(1000.0, rel=1e-3)
    assert m.current_rms_A == pytest.approx(200e-6, rel=1e-6)
    assert abs(m.net_dc_charge_C) < 1e-3 * 200e-6 * 0.5e-3
    assert m.charge_per_phase_C == pytest.approx(200e-6 * 0.5e-3, rel=0.01)


def test_galvanic_offset_shows_as_net_dc_charge() -> None:
    dt = 1e-6
    k = np.arange(10000)
    t = k * dt
    i = np.where(k % 1000 < 500, 300e-6, -100e-6)  # mean 100 µA
    m = measure_pair(_trace(t, i * 1e3, "V", 1), _trace(t, i, "A", 2))
    # whole periods between the first and last rising edges (samples 1000 and 9000): 8 ms at a 100 µA mean
    assert m.net_dc_charge_C == pytest.approx(100e-6 * 8e-3, rel=0.01)


def test_rc_charging_rise_time_is_tau_ln9() -> None:
    tau = 20e-6
    dt = tau / 100
    t = np.arange(int(3e-3 / dt)) * dt
    start, width = 0.5e-3, 1e-3
    x = np.clip(t - start, 0, None)
    rising = 1 - np.exp(-x / tau)
    after = np.clip(t - start - width, 0, None)
    v = 10 * np.where(t < start + width, rising, rising[int((start + width) / dt)] * np.exp(-after / tau))
    m = measure_pair(_trace(t, v, "V", 1), _trace(t, v / 100, "A", 2))
    assert m.rise_time_s == pytest.approx(tau * np.log(9), rel=0.02)
    # the mid-level width of an RC pulse equals the input width (rise and fall delays cancel)
    assert m.pulse_width_s == pytest.approx(width, rel=0.01)


def test_resistance_drop_within_a_pulse_of_known_decay() -> None:
    dt = 1e-6
    t, v = _pulse_train(200.0, 1e-3, 100.0, 2, dt)
    # resistance falls linearly from 10 kΩ to 1 kΩ across each pulse: the 10-30 % and 70-90 % windows hold
    # mean resistances of 8.2 kΩ and 2.8 kΩ, so the drop index is 1 - 2.8/8.2
    lead = 0.5e-3
    phase = np.mod(t - lead, 1e-2)
    r = 10e3 - 9e3 * np.clip(phase / 1e-3, 0, 1)
    i = v / r
    m = measure_pair(_trace(t, v, "V", 1), _trace(t, i, "A", 2))
    # windows average the current, so the ratio uses harmonic means of R over each window
    def hmean(a: float, b: float) -> float:
        p = np.linspace(a, b, 2001)
        return 1 / np.mean(1 / (10e3 - 9e3 * p))
    expected = 1 - hmean(0.7, 0.9) / hmean(0.1, 0.3)
    assert m.resistance_drop_fraction == pytest.approx(expected, rel=0.02)
    assert m.resistance_drop_trend.size == 2


def test_negative_pulses_keep_their_sign() -> None:
    dt = 1e-6
    t, v = _pulse_train(-50.0, 100e-6, 1e3, 4, dt)
    m = measure_pair(_trace(t, v, "V", 1), _trace(t, v / 500, "A", 2))
    assert m.amplitude_V == pytest.approx(-50.0)
    assert m.pulses == 4
    assert m.pulse_width_s == pytest.approx(100e-6, rel=0.02)
    assert m.impedance_ohms == pytest.approx(500.0)


def test_flat_signal_has_no_pulses() -> None:
    t = np.arange(1000) * 1e-6
    z = np.zeros_like(t)
    m = measure_pair(_trace(t, z, "V", 1), _trace(t, z, "A", 2))
    assert m.pulses == 0 and m.amplitude_V == 0.0
    assert np.isnan(m.pulse_width_s) and np.isnan(m.frequency_Hz)


def test_wrong_units_or_lengths_are_refused() -> None:
    t = np.arange(10) * 1e-6
    z = np.zeros_like(t)
    with pytest.raises(ValueError, match="'V'"):
        measure_pair(_trace(t, z, "A", 1), _trace(t, z, "A", 2))
    with pytest.raises(ValueError, match="same length"):
        measure_pair(_trace(t, z, "V", 1), _trace(t[:5], z[:5], "A", 2))


def test_true_runs_match_a_sample_by_sample_scan() -> None:
    def scan(mask):
        runs, start = [], None
        for k, on in enumerate(mask):
            if on and start is None:
                start = k
            elif not on and start is not None:
                runs.append((start, k))
                start = None
        return runs + ([(start, len(mask))] if start is not None else [])

    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 7, 500):
        for p in (0.0, 0.2, 0.5, 0.9, 1.0):
            mask = rng.random(n) < p
            assert true_runs(mask) == scan(mask.tolist())
