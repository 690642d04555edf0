"""Both polarities of a microcurrent in one burst: the arbitrary waveform the current source plays.

With ``polarity_period_s``, the current reverses every half period. When a whole period fits in one burst
(at most ``max_burst_interval_s``, the time within which a dead host must stop stimulation) and the source
holds an arbitrary waveform (the Keithley 6221's ``ARB0``), one waveform holds the forward half then the
reversed half, and each trigger plays one period: no command reverses the current between bursts, so each
burst costs one exchange with the instrument.

The reversed half is the forward half with every level negated — the current of swapped electrodes:

* faradic: +A pulses for ``duty_cycle`` of each period, then −A pulses;
* galvanic: +A, then −A;
* biphasic with a direct part: the square about +DC, then the mirror image about −DC (a biphasic without a
  direct part is its own mirror image once each cycle is shifted by half a period; its ±A phases swap order).

Every point is normalised to the waveform's peak, which must be the prescription's peak (current plus the
direct part), and one period of the waveform carries no net charge: both are checked before anything is sent
(:func:`alternating_waveform`). Elsewhere — a generator through its series resistor, a source without an
arbitrary waveform, a period longer than a burst may last, or a waveform the instrument cannot hold — the
current is reversed between bursts as before (:mod:`toolkit.delivery.plan_microcurrent` records which, and
why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from toolkit.errors import ConfigurationError

__all__ = ["AlternatingWaveform", "WaveformDoesNotFit", "alternating_waveform"]

#: most points of one waveform period used to place a faradic duty cycle exactly
_MAX_POINTS_PER_CYCLE = 1000


class WaveformDoesNotFit(ConfigurationError):
    """The alternating waveform cannot be played by this instrument (the caller reverses between bursts)."""


@dataclass(frozen=True)
class AlternatingWaveform:
    """One polarity period as an arbitrary waveform.

    Attributes
    ----------
    points : tuple of float
        Levels from −1 to +1 (peak 1), each held for ``1 / (len(points) × frequency_Hz)``.
    frequency_Hz : float
        Repetition frequency: one over the polarity period the waveform holds.
    peak_A : float
        Current at a point of magnitude 1 (the prescription's peak).
    half_s : float
        Length of each half (forward, then reversed).
    cycles_per_half : int
        Waveform cycles (faradic pulses, biphasic cycles, galvanic stretches) in each half.
    points_per_cycle : int
        Points of one cycle.
    """

    points: tuple[float, ...]
    frequency_Hz: float
    peak_A: float
    half_s: float
    cycles_per_half: int
    points_per_cycle: int

    @property
    def period_s(self) -> float:
        """Length of the whole waveform (one polarity period)."""
        return 2.0 * self.half_s

    def net_charge_C(self, scale: float = 1.0) -> float:
        """Charge one period carries at ``scale`` × the peak (0 for a balanced waveform)."""
        dt = self.period_s / len(self.points)
        return math.fsum(self.points) * self.peak_A * scale * dt

    def as_dict(self) -> dict[str, Any]:
        """For the record: the shape in a few numbers (the points themselves follow from the prescription)."""
        return {"points": len(self.points), "frequency_Hz": self.frequency_Hz, "peak_A": self.peak_A,
                "half_s": self.half_s, "cycles_per_half": self.cycles_per_half,
                "points_per_cycle": self.points_per_cycle, "net_charge_C": self.net_charge_C()}


def _cycle(waveform: str, amplitude_A: float, dc_A: float, duty: float, where: str) -> list[float]:
    """One forward cycle in amperes, as few equal points as place its phases exactly."""
    if waveform == "dc":
        return [amplitude_A, amplitude_A]
    if waveform == "biphasic":
        return [dc_A + amplitude_A, dc_A - amplitude_A]
    frac = Fraction(duty).limit_denominator(_MAX_POINTS_PER_CYCLE)
    if not math.isclose(float(frac), duty, rel_tol=0, abs_tol=1e-9) or not 0 < frac < 1:
        raise WaveformDoesNotFit(
            f"{where}: duty_cycle {duty:g} is not a fraction k/n with n ≤ {_MAX_POINTS_PER_CYCLE} strictly "
            "between 0 and 1, so its pulses cannot be placed on equal arbitrary-waveform points"
        )
    n = max(frac.denominator, 2)
    high = round(frac * n)
    return [amplitude_A] * high + [0.0] * (n - high)


def alternating_waveform(settings: dict[str, Any], *, cycles_per_half: int, half_s: float, peak_A: float,
                         where: str) -> AlternatingWaveform:
    """The waveform holding ``cycles_per_half`` forward cycles then as many reversed ones.

    Parameters
    ----------
    settings : dict
        The plan's microcurrent settings (``waveform`` 'dc'/'square'/'biphasic', ``amplitude_A``,
        ``dc_offset_A``, ``duty_cycle``).
    cycles_per_half : int
        Cycles in each half.
    half_s : float
        Length of each half.
    peak_A : float
        The prescription's peak current (current plus the direct part): the waveform's peak must equal it.
    where : str
        Names the arm in messages.

    Raises
    ------
    WaveformDoesNotFit
        When the duty cycle cannot be placed on equal points.
    ConfigurationError
        When the waveform's peak differs from ``peak_A`` or one period carries a net charge (a defect: the
        waveform would not be what was prescribed).
    """
    amplitude = float(settings["amplitude_A"])
    dc = float(settings.get("dc_offset_A", 0.0))
    cycle = _cycle(settings["waveform"], amplitude, dc, float(settings.get("duty_cycle", 0.5)), where)
    forward = cycle * cycles_per_half
    levels = forward + [-x for x in forward]
    top = max(abs(x) for x in levels)
    if not math.isclose(top, peak_A, rel_tol=1e-9):
        raise ConfigurationError(
            f"{where}: the alternating waveform peaks at {top * 1e6:g} µA, not at the prescribed peak "
            f"{peak_A * 1e6:g} µA (current_uA plus |dc_offset_uA|); nothing was sent"
        )
    points = tuple(x / top for x in levels)
    wave = AlternatingWaveform(points=points, frequency_Hz=1.0 / (2.0 * half_s), peak_A=top, half_s=half_s,
                               cycles_per_half=cycles_per_half, points_per_cycle=len(cycle))
    # one period: the forward half's charge, then the same charge reversed
    limit = 1e-9 * top * wave.period_s
    if abs(wave.net_charge_C()) > limit:
        raise ConfigurationError(
            f"{where}: one polarity period of the alternating waveform carries {wave.net_charge_C():.3g} C net; "
            "a reversed polarity must balance it (polarity_period_s); nothing was sent"
        )
    return wave
