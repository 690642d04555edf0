"""The prescribed waveform of a capture and the band its level was checked against.

A capture is judged by its measures (the level while a pulse or phase is on, the pulse width, the carrier …),
each within the study's tolerance. So that a reader can see what was asked beside what was delivered, each
capture also stores its *envelope*: the waveform the prescription asks for over the capture's time (the
instrument's output as programmed, at the burst's ramp scale and polarity, phases counted from the trigger)
and, where the session checks the level, the band of the study's tolerance around it.

The envelope is a short table of segments, one row per pulse, carrier half-cycle or waveform phase within
the capture: ``start_s, end_s, level, lower, upper`` (the capture's unit). Between segments the output is
off. The band is the tolerance plus how far one sample may stray from the level it measures (the scope's
8-bit step, or its noise): the session checks means of many samples. ``lower``/``upper`` are NaN where the
level is not checked: off-time, and a phase whose level is zero
(a faradic pulse's pause). The band covers the middle of each phase, from a fifth after its start to a tenth
before its end: edges (the amplifier's rise, a series resistor's charging spikes, the trigger's own delay
after the true start) are judged by the pulse-width check, not by level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from instruments.units import format_quantity
from toolkit.delivery.plan_model import ExpectedSignal, TreatmentPlan

__all__ = ["BAND_FROM", "BAND_TO", "Envelope", "capture_envelope", "envelope_samples", "sample_resolution"]

#: the part of each phase where the level is checked (fractions of the phase's length)
BAND_FROM, BAND_TO = 0.2, 0.9
#: columns of :attr:`Envelope.segments`
COLUMNS = ("start_s", "end_s", "level", "lower", "upper")


@dataclass(frozen=True)
class Envelope:
    """What one capture was asked to show.

    Attributes
    ----------
    unit : {'V', 'A'}
        ``'V'``: the electrode voltage (electroporation); ``'A'``: the current (microcurrent).
    segments : (S, 5) float ndarray
        ``start_s, end_s, level, lower, upper`` per pulse, carrier half-cycle or phase, in time order.
    describe : dict
        For the capture's metadata: the quantity, the tolerance and what it is relative to.
    """

    unit: str
    segments: np.ndarray
    describe: dict[str, Any]

    @property
    def key(self) -> str:
        """Name of the array in the capture file."""
        return f"envelope_{self.unit}"


def _cycle_phases(settings: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(start, end, level) of the phases of one forward microcurrent cycle: fractions of the period, amperes.

    Direct current holds its level; a biphasic cycle is the direct part plus, then minus, the amplitude; a
    faradic (square) cycle is the amplitude for its duty cycle, then a pause.
    """
    amplitude = float(settings["amplitude_A"])
    waveform = settings["waveform"]
    if waveform == "dc":
        return [(0.0, 1.0, amplitude)]
    if waveform == "biphasic":
        dc = float(settings.get("dc_offset_A", 0.0) or 0.0)
        return [(0.0, 0.5, dc + amplitude), (0.5, 1.0, dc - amplitude)]
    duty = float(settings.get("duty_cycle", 0.5))
    return [(0.0, duty, amplitude), (duty, 1.0, 0.0)]


def _ep_segments(plan: TreatmentPlan, level: float, t_end: float) -> list[tuple[float, float, float]]:
    s = plan.settings
    width = float(s["pulse_width_s"])
    period = 1.0 / float(s["frequency_Hz"])
    carrier = s.get("carrier_Hz")
    half = 0.5 / float(carrier) if carrier else width
    # half-cycles in a pulse (the last one cut short when the pulse is not a whole number of them)
    halves = max(1, math.ceil(width / half - 1e-9))
    out = []
    for k in range(plan.pulses_per_burst):
        start = k * period
        if start >= t_end:
            break
        for j in range(halves):
            # a carrier starts positive and alternates every half-cycle; a plain pulse is one phase
            sign = 1.0 if j % 2 == 0 else -1.0
            out.append((start + j * half, start + min((j + 1) * half, width), sign * level))
    return out


def _mc_segments(plan: TreatmentPlan, scale: float, polarity: int, t_end: float) -> list[tuple[float, float, float]]:
    s = plan.settings
    cycle = _cycle_phases(s)
    period = 1.0 / float(s["frequency_Hz"])
    alt = plan.alternating
    per_half = alt.cycles_per_half if alt is not None else plan.pulses_per_burst
    out = []
    for c in range(plan.pulses_per_burst):
        start = c * period
        if start >= t_end:
            break
        # a burst that reverses within it: its second half is the first reversed
        sign = polarity * (-1.0 if alt is not None and c >= per_half else 1.0)
        out += [(start + a * period, start + b * period, sign * scale * level) for a, b, level in cycle]
    return out


def sample_resolution(trace: Any) -> float:
    """How far one sample of ``trace`` may stray from the level it measures (its unit): one step of the
    scope's 8-bit scaling (``yinc``, over the shunt for a current), or three standard deviations of the
    noise before the trigger when that is larger. The session checks levels as means of many samples, which
    average both away; a band drawn over single samples must make room for them."""
    meta = getattr(trace, "meta", {}) or {}
    try:
        step = float(meta.get("yinc") or 0.0)
        shunt = float(meta.get("shunt_ohms") or 0.0)
    except (TypeError, ValueError):
        step, shunt = 0.0, 0.0
    if shunt > 0:
        step /= shunt
    t = np.asarray(trace.time_s, dtype=float)
    pre = np.asarray(trace.values, dtype=float)[t < 0]
    noise = 3.0 * float(pre.std()) if pre.size >= 10 else 0.0
    return max(step, noise) if math.isfinite(noise) else step


def capture_envelope(plan: TreatmentPlan, expected: ExpectedSignal, tolerances: Any, voltage: Any, current: Any, *,
                     scale: float, polarity: int = 1, unchecked: str | None = None) -> Envelope | None:
    """The envelope of one capture of ``plan`` (see the module docstring).

    Parameters
    ----------
    plan : TreatmentPlan
        The treatment whose burst was captured.
    expected : ExpectedSignal
        What this capture was checked against (the dummy-load or the live expectation).
    tolerances : study tolerances
        ``amplitude_rel`` (electrode voltage) and ``current_rel`` (current).
    voltage, current : traces
        The capture's electrode voltage and current (``time_s`` 0 at the trigger, ``values``, ``meta``): the
        envelope is of the voltage for electroporation, of the current for microcurrent, its band widened by
        how far one of that trace's samples may stray (:func:`sample_resolution`).
    scale, polarity : float, int
        The burst's ramp scale and polarity, as it was fired.
    unchecked : str, optional
        Why this capture's level is not checked (a generator's first burst, set for an assumed load): the
        prescribed waveform is kept, the band left out, and the reason stored.

    Returns
    -------
    Envelope or None
        None for a sham, a scale of zero, or a capture with no level to check.
    """
    trace = voltage if plan.modality == "electroporation" else current
    time_s = np.asarray(trace.time_s, dtype=float)
    if plan.sham or scale <= 0 or len(time_s) == 0:
        return None
    t_end = float(np.max(time_s))
    if plan.modality == "electroporation":
        if expected.voltage_on_V is None:
            return None
        unit, rel, reference = "V", float(tolerances.amplitude_rel), float(expected.voltage_on_V) * scale
        rows = _ep_segments(plan, reference, t_end)
        quantity = "electrode voltage"
    else:
        if expected.current_on_A is None:
            return None
        unit, rel, reference = "A", float(tolerances.current_rel), float(expected.current_on_A) * scale
        rows = _mc_segments(plan, scale, polarity, t_end)
        quantity = "current"
    resolution = sample_resolution(trace)
    band = rel * abs(reference) + resolution
    table = np.full((len(rows), 5), np.nan)
    for r, (a, b, level) in enumerate(rows):
        table[r, :3] = (a, b, level)
        if level != 0.0 and unchecked is None:
            table[r, 3:] = (level - band, level + band)
    words = f"± {rel:.0%} of {format_quantity(abs(reference), unit)}"
    if resolution > 0:
        words += f" + {format_quantity(resolution, unit)} sample resolution"
    describe = {"unit": unit, "quantity": quantity, "tolerance_rel": rel, "reference": abs(reference),
                "resolution": float(resolution), "band": words, "checked_part": [BAND_FROM, BAND_TO],
                "scale": scale, "polarity": polarity}
    if unchecked is not None:
        describe.update(band=f"level not checked: {unchecked}", unchecked=unchecked)
    return Envelope(unit, table, describe)


def envelope_samples(segments: np.ndarray, time_s: np.ndarray, *,
                     band_from: float = BAND_FROM, band_to: float = BAND_TO) -> Mapping[str, np.ndarray]:
    """The envelope at each sample time: ``prescribed`` (0 between segments), ``lower`` and ``upper`` (NaN
    where the level is not checked: between segments, at their edges, in phases of level 0)."""
    t = np.asarray(time_s, dtype=float)
    seg = np.asarray(segments, dtype=float).reshape(-1, 5)
    prescribed = np.zeros(t.shape)
    lower = np.full(t.shape, np.nan)
    upper = np.full(t.shape, np.nan)
    if seg.size == 0:
        return {"prescribed": prescribed, "lower": lower, "upper": upper}
    order = np.argsort(seg[:, 0], kind="stable")
    seg = seg[order]
    # the segment each sample falls in (segments do not overlap)
    k = np.searchsorted(seg[:, 0], t, side="right") - 1
    inside = (k >= 0) & (t < seg[np.clip(k, 0, None), 1])
    idx = k[inside]
    prescribed[inside] = seg[idx, 2]
    length = seg[idx, 1] - seg[idx, 0]
    pos = (t[inside] - seg[idx, 0]) / np.where(length > 0, length, math.inf)
    checked = (pos >= band_from) & (pos <= band_to) & np.isfinite(seg[idx, 3])
    where = np.flatnonzero(inside)[checked]
    lower[where] = seg[idx[checked], 3]
    upper[where] = seg[idx[checked], 4]
    return {"prescribed": prescribed, "lower": lower, "upper": upper}
