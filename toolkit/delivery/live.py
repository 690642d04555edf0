"""Measures of one scope capture, as the session needs them for checks, dose and progress.

The waveform measures of :mod:`instruments.measures` are used when that module provides them; the few
figures the session cannot do without (r.m.s. and peak current, impedance, charge balance, pulse timing,
the electroporation resistance-drop index) are computed here from the raw arrays, so a check never depends
on an optional field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instruments.measures import true_runs
from toolkit.delivery.dose import WaveformRates, rates_from_arrays

__all__ = ["CaptureMeasures", "measure_capture", "phase_levels"]


@dataclass(frozen=True)
class CaptureMeasures:
    """Figures of one capture (SI units; ``nan`` when a figure does not apply, e.g. no pulses)."""

    rates: WaveformRates
    current_rms_A: float
    current_peak_A: float
    voltage_peak_V: float
    #: the current level of a pulse or phase: its mean late in each (after the edges' charging spikes)
    current_on_A: float
    #: median |v| while on (|v| above half its peak): the electrode voltage level of a pulse or phase
    voltage_on_V: float
    impedance_ohm: float
    #: net / transferred charge (0 = perfectly balanced, ±1 = all one polarity)
    charge_balance: float
    pulse_width_s: float
    frequency_Hz: float
    #: 1 − R(late in pulse) / R(early in pulse): ≈ 0 without electroporation, → 1 as the skin breaks down
    resistance_drop_index: float
    #: voltage-driven pulses: their carrier frequency (None: monophasic), and how many whole pulses the record
    #: holds
    carrier_Hz: float | None = None
    pulses: int = 0
    #: the pulses found (:class:`instruments.measures.PulseShape`), for per-pulse checks
    shapes: tuple = ()
    #: further measures of :func:`instruments.measures.measure_pair`, when available
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Flat dictionary for records and progress (floats, ``None`` for nan)."""

        def clean(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        out: dict[str, Any] = {
            "current_rms_A": clean(self.current_rms_A),
            "current_peak_A": clean(self.current_peak_A),
            "voltage_peak_V": clean(self.voltage_peak_V),
            "current_on_A": clean(self.current_on_A),
            "voltage_on_V": clean(self.voltage_on_V),
            "impedance_ohm": clean(self.impedance_ohm),
            "charge_balance": clean(self.charge_balance),
            "pulse_width_s": clean(self.pulse_width_s),
            "frequency_Hz": clean(self.frequency_Hz),
            "resistance_drop_index": clean(self.resistance_drop_index),
            "carrier_Hz": None if self.carrier_Hz is None else clean(self.carrier_Hz),
            "pulses": self.pulses,
            "mean_abs_current_A": clean(self.rates.abs_current_A),
            "mean_current_A": clean(self.rates.mean_current_A),
            "power_W": clean(self.rates.power_W),
        }
        for key, value in self.extra.items():
            out.setdefault(f"m_{key}", value)
        return out


def _pulse_timing(t: np.ndarray, mask: np.ndarray) -> tuple[float, float, list[tuple[int, int]]]:
    segs = true_runs(mask)
    # a pulse cut by the capture window edge has no trustworthy width
    inner = [(a, b) for a, b in segs if a > 0 and b < mask.size]
    if not inner or t.size < 2:
        return math.nan, math.nan, segs
    dt = float(t[1] - t[0])
    width = float(np.median([(b - a) * dt for a, b in inner]))
    starts = np.array([t[a] for a, _ in segs if a > 0])
    freq = float(1.0 / np.median(np.diff(starts))) if starts.size >= 2 else math.nan
    return width, freq, segs


def _drop_index(abs_v: np.ndarray, abs_i: np.ndarray, segs: list[tuple[int, int]]) -> float:
    """Median over the runs of ``1 − R_late / R_early``: |v|/|i| over each run's last fifth against its first.

    The sums over each run's first and last fifth are summed straight from ``abs_v`` and ``abs_i`` in one
    ``np.add.reduceat`` pass each over just those stretches (not running sums over the whole record).
    """
    runs = np.array([(a, b) for a, b in segs if b - a >= 10], dtype=np.int64).reshape(-1, 2)
    if not runs.size:
        return math.nan
    a, b = runs[:, 0], runs[:, 1]
    k = np.maximum((b - a) // 5, 2)
    # a < a + k < b − k < b for each run (k is at most a fifth of it), and runs follow one another: the bounds
    # are in order, so reduceat sums [a, a + k) and [b − k, b); the last stretch may run to the record's end
    bounds = np.stack([a, a + k, b - k, b], axis=1).ravel()
    if bounds[-1] >= abs_v.size:
        bounds = bounds[:-1]
    sv = np.add.reduceat(abs_v, bounds)
    si = np.add.reduceat(abs_i, bounds)
    # (sum over the first k samples, sum over the last k samples) of |v| and |i|: the means' common 1/k cancels
    v_early, v_late = sv[0::4], sv[2::4]
    i_early, i_late = si[0::4], si[2::4]
    with np.errstate(divide="ignore", invalid="ignore"):
        r_early = v_early / i_early
        r_late = v_late / i_late
    ok = (i_early > 0) & (i_late > 0) & (r_early > 0)
    return float(np.median(1.0 - r_late[ok] / r_early[ok])) if ok.any() else math.nan


def _noise_floor(values: np.ndarray, t: np.ndarray, trace: Any) -> float:
    """Smallest current told apart from zero: half a quantisation step, or the pre-trigger noise."""
    meta = getattr(trace, "meta", {}) or {}
    step = 0.0
    try:
        # the preamble's yinc is one step of the scaled volts; the driver divides by the shunt for amperes
        yinc = float(meta.get("yinc") or 0.0)
        shunt = float(meta.get("shunt_ohms") or 0.0)
        if yinc > 0 and shunt > 0:
            step = yinc / shunt
    except (TypeError, ValueError):
        step = 0.0
    pre = values[t < 0]
    noise = float(pre.std()) / math.sqrt(max(pre.size, 1)) * 3 if pre.size >= 10 else 0.0
    return max(step / 2, noise)


def _mean_floor(values: np.ndarray, t: np.ndarray, trace: Any, n: int) -> float:
    """Smallest mean of ``n`` samples told apart from zero: three standard errors of the scope's noise.

    The noise (estimated before the trigger, never below a quantisation step's own spread, step/√12) dithers
    the 8-bit steps, so a mean over many samples resolves currents far below one step.
    """
    meta = getattr(trace, "meta", {}) or {}
    try:
        yinc = float(meta.get("yinc") or 0.0)
        shunt = float(meta.get("shunt_ohms") or 0.0)
        step = yinc / shunt if yinc > 0 and shunt > 0 else 0.0
    except (TypeError, ValueError):
        step = 0.0
    pre = values[t < 0]
    sigma = max(float(pre.std()) if pre.size >= 10 else 0.0, step / math.sqrt(12))
    return 3 * sigma / math.sqrt(max(n, 1))


def _drive_mask(abs_i: np.ndarray, peak_i: float, abs_v: np.ndarray, peak_v: float, drive: str) -> np.ndarray:
    if drive == "voltage":
        return abs_v > 0.5 * peak_v if peak_v > 0 else np.zeros_like(abs_v, dtype=bool)
    return abs_i > 0.5 * peak_i if peak_i > 0 else np.zeros_like(abs_i, dtype=bool)


def _late_samples(mask: np.ndarray) -> np.ndarray:
    """The last fifth of every run of True (at least one sample)."""
    out = np.zeros_like(mask, dtype=bool)
    for a, b in true_runs(mask):
        k = max((b - a) // 5, 1)
        out[b - k : b] = True
    return out


def measure_capture(voltage: Any, current: Any, *, drive: str = "current") -> CaptureMeasures:
    """Measure one capture.

    Parameters
    ----------
    voltage, current : :class:`instruments.base.Trace`
        Electrode voltage (V) and current (A) traces of the same acquisition.
    drive : {'current', 'voltage'}
        What the stimulator sets: pulse timing is read from that signal (on skin the other one is shaped
        by the electrode capacitance).

    Returns
    -------
    CaptureMeasures
    """
    t = np.asarray(voltage.time_s, dtype=float)
    v = np.asarray(voltage.values, dtype=float)
    i = np.asarray(current.values, dtype=float)
    if v.shape != i.shape:
        raise ValueError(f"voltage and current traces differ in length ({v.size} vs {i.size})")
    if drive not in ("current", "voltage"):
        raise ValueError(f"drive must be 'current' or 'voltage', got {drive!r}")
    rates = rates_from_arrays(v, i)
    abs_i = np.abs(i)
    abs_v = np.abs(v)
    peak_i = float(abs_i.max()) if abs_i.size else math.nan
    peak_v = float(abs_v.max()) if v.size else math.nan
    rms_i = math.sqrt(rates.square_current_A2)
    # impedance late in each pulse or phase (the last fifth of it), where the electrode capacitance has
    # charged: what the skin presents to a steady current, after any electroporation within the pulse
    on_mask = _drive_mask(abs_i, peak_i, abs_v, peak_v, drive)
    late = _late_samples(on_mask)
    if late.any():
        # each signal is signed by the driven one, so scope noise on a collapsed signal (≈ 0 V across a
        # short, ≈ 0 A through a lifted electrode) averages out instead of adding up as |noise|
        if drive == "voltage":
            sign = np.sign(v[late])
            v_late = float(np.abs(v[late]).mean())
            i_late = abs(float((i[late] * sign).mean()))
            floor = _mean_floor(i, t, current, int(late.sum()))
        else:
            sign = np.sign(i[late])
            i_late = float(np.abs(i[late]).mean())
            v_late = abs(float((v[late] * sign).mean()))
            # a current that collapsed (a lifted electrode) is scope noise: its "on" samples are the noise peaks
            floor = _noise_floor(i, t, current)
            if float(abs_i.mean()) <= floor:
                i_late = 0.0
        impedance = v_late / i_late if i_late > floor else math.inf
    else:
        impedance = math.inf if peak_v > 0 else math.nan
    balance = rates.mean_current_A / rates.abs_current_A if rates.abs_current_A > 0 else math.nan
    # the half-peak masks of the current and of the voltage: the driven signal's is on_mask already
    on = on_mask if drive == "current" else _drive_mask(abs_i, peak_i, abs_v, peak_v, "current")
    if late.any():
        # the steady level late in each pulse or phase, averaged (scope noise and 8-bit steps average out;
        # charging spikes at the edges stay out)
        current_on = i_late
    else:
        current_on = float(np.median(abs_i[on])) if on.any() else 0.0
    v_on_mask = on_mask if drive == "voltage" else _drive_mask(abs_i, peak_i, abs_v, peak_v, "voltage")
    voltage_on = float(np.median(abs_v[v_on_mask])) if v_on_mask.any() else 0.0
    width, freq, segs = _pulse_timing(t, on if drive == "current" else v_on_mask)
    drop = _drop_index(abs_v, abs_i, segs)
    carrier, n_pulses, shapes = None, 0, []
    if drive == "voltage":
        from instruments.measures import find_pulses

        # a pulse is its envelope: a carrier's half-cycles inside it are not pulses of their own
        shapes = find_pulses(voltage)
        whole = [p for p in shapes if p.complete]
        n_pulses = len(whole)
        width = float(np.median([p.width_s for p in whole])) if whole else math.nan
        starts = [p.start_s for p in shapes if p.start_s > t[0]]
        freq = float(1.0 / np.median(np.diff(starts))) if len(starts) >= 2 else math.nan
        carriers = [p.carrier_Hz for p in whole if p.carrier_Hz is not None]
        carrier = float(np.median(carriers)) if carriers else None
    extra: dict[str, Any] = {}
    try:
        from instruments.measures import measure_pair

        measured = measure_pair(voltage, current)
        as_dict = measured.as_dict() if hasattr(measured, "as_dict") else dict(measured)
        extra = {k: _plain(val) for k, val in as_dict.items()}
    except ImportError:
        pass
    except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
        # a capture the instruments' measures cannot read is still checked with the figures above
        extra = {"error": str(exc)}
    return CaptureMeasures(
        rates=rates,
        current_rms_A=rms_i,
        current_peak_A=peak_i,
        voltage_peak_V=peak_v,
        current_on_A=current_on,
        voltage_on_V=voltage_on,
        impedance_ohm=impedance,
        charge_balance=balance,
        pulse_width_s=width,
        frequency_Hz=freq,
        resistance_drop_index=drop,
        carrier_Hz=carrier,
        pulses=n_pulses,
        extra=extra,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def phase_levels(time_s: np.ndarray, values: np.ndarray, *, period_s: float, first_phase_s: float,
                 bipolar: bool, span_s: float) -> float:
    """The level a waveform of known timing holds late in its phases, averaged (a capture starting at a burst).

    Phases start at the trigger: the first lasts ``first_phase_s``, the rest of the period is the second
    (reversed when ``bipolar``, else off and left out). The last fifth of every phase within ``span_s`` is
    averaged with the phase's sign, so noise and 8-bit steps average out and the charging spikes at the edges
    stay out — where the signal's own sign or threshold would be swamped by noise at low amplitude.

    Returns
    -------
    float
        The mean late level (the first phase's sign positive); nan without a whole phase in the record.
    """
    t = np.asarray(time_s, dtype=float)
    x = np.asarray(values, dtype=float)
    second = period_s - first_phase_s
    sums, count = 0.0, 0
    start = 0.0
    while start + period_s <= span_s + 1e-12:
        for offset, length, sign in ((0.0, first_phase_s, 1.0), (first_phase_s, second, -1.0 if bipolar else 0.0)):
            if sign == 0.0 or length <= 0:
                continue
            a = start + offset + 0.8 * length
            b = start + offset + length
            sel = (t >= a) & (t < b)
            sums += sign * float(x[sel].sum())
            count += int(sel.sum())
        start += period_s
    return sums / count if count else math.nan
