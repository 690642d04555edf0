"""Dose accounting: what actually went into the subject, from the measured waveforms.

Each live capture gives the waveform's rates while the output is delivering (mean |i|, mean i, mean i²,
mean v·i). Every burst the session adds the time the output delivered, multiplied by the rates of the most
recent capture. The totals are the recorded dose:

* ``duration_s`` — delivery time: the session time the bursts cover (first trigger to the end), ramps included
* ``on_time_s`` — time the output actually carried a burst (equal to ``duration_s`` for back-to-back bursts)
* ``charge_C`` — transferred charge ∫|i| dt; ``net_charge_C`` — ∫i dt (≈ 0 for a charge-balanced waveform)
* ``rms_current_A`` — √(∫i² dt / duration_s), comparable with the prescription's r.m.s. figure
* ``energy_J`` — ∫v·i dt delivered into the electrodes
* ``pulse_count`` — EP pulses delivered; for microcurrent, waveform cycles delivered
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Dose", "DoseAccumulator", "WaveformRates", "rates_from_arrays"]


@dataclass(frozen=True)
class WaveformRates:
    """Time averages of one captured waveform while the output delivers (SI units)."""

    #: mean |i| in A
    abs_current_A: float
    #: mean i in A (the DC component)
    mean_current_A: float
    #: mean i² in A²
    square_current_A2: float
    #: mean v·i in W
    power_W: float

    @classmethod
    def zero(cls) -> WaveformRates:
        """Rates of an output that delivers nothing (sham)."""
        return cls(0.0, 0.0, 0.0, 0.0)

    def at_full_amplitude(self, scale: float, polarity: int = 1) -> WaveformRates:
        """The rates this waveform would have at full amplitude, measured at ``scale`` × it (a ramp step):
        currents divided by ``scale``, i² and power by its square; the net current signed by ``polarity``."""
        return WaveformRates(self.abs_current_A / scale, self.mean_current_A / scale * polarity,
                             self.square_current_A2 / scale**2, self.power_W / scale**2)


def rates_from_arrays(volts_V: np.ndarray, amps_A: np.ndarray) -> WaveformRates:
    """Average rates of a uniformly sampled capture.

    Parameters
    ----------
    volts_V, amps_A : (N,) ndarray
        Electrode voltage in volts and current in amperes, sampled at the same instants.

    Returns
    -------
    WaveformRates

    Examples
    --------
    >>> import numpy as np
    >>> r = rates_from_arrays(np.array([1.0, -1.0]), np.array([1e-4, -1e-4]))
    >>> round(r.abs_current_A, 9), r.mean_current_A, round(r.power_W, 9)
    (0.0001, 0.0, 0.0001)
    """
    v = np.asarray(volts_V, dtype=float)
    i = np.asarray(amps_A, dtype=float)
    if v.shape != i.shape or v.ndim != 1 or v.size == 0:
        raise ValueError(f"voltage and current must be 1-D arrays of one length, got {v.shape} and {i.shape}")
    # |i|, i·i and v·i in turn in one array (the same values as three fresh ones, averaged the same way)
    work = np.abs(i)
    abs_current = float(np.mean(work))
    square_current = float(np.mean(np.multiply(i, i, out=work)))
    power = float(np.mean(np.multiply(v, i, out=work)))
    return WaveformRates(
        abs_current_A=abs_current,
        mean_current_A=float(np.mean(i)),
        square_current_A2=square_current,
        power_W=power,
    )


@dataclass(frozen=True)
class Dose:
    """The delivered dose of a session (see the module docstring for the definitions)."""

    duration_s: float
    on_time_s: float
    charge_C: float
    net_charge_C: float
    rms_current_A: float
    energy_J: float
    pulse_count: int
    bursts: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain dictionary for the store."""
        return asdict(self)


class DoseAccumulator:
    """Sums the dose burst by burst.

    Examples
    --------
    >>> acc = DoseAccumulator()
    >>> acc.add_burst(on_s=1.0, period_s=1.0, rates=WaveformRates(1e-4, 0.0, 1e-8, 1e-3), pulses=10)
    >>> d = acc.dose()
    >>> d.duration_s, round(d.charge_C, 9), round(d.rms_current_A, 9), d.pulse_count
    (1.0, 0.0001, 0.0001, 10)
    """

    def __init__(self) -> None:
        self._on_s = 0.0
        self._duration_s = 0.0
        self._charge = 0.0
        self._net = 0.0
        self._i2t = 0.0
        self._energy = 0.0
        self._pulses = 0
        self._bursts = 0

    def add_burst(
        self, *, on_s: float, period_s: float, rates: WaveformRates, pulses: int, scale: float = 1.0,
        polarity: int = 1, split: tuple[float, WaveformRates] | None = None,
    ) -> None:
        """Add one burst.

        Parameters
        ----------
        on_s : float
            How long the burst delivered (s).
        period_s : float
            Session time the burst accounts for (its trigger interval, s).
        rates : WaveformRates
            Rates at full amplitude (from the latest capture, normalised by its amplitude scale).
        pulses : int
            Pulses (EP) or cycles (MC) in the burst.
        scale : float
            Amplitude fraction of this burst (ramps): currents scale with it, i² and power with its square.
        polarity : {1, -1}
            Polarity of this burst relative to ``rates`` (reversed microcurrent): flips the net current only.
        split : (float, WaveformRates), optional
            A burst whose polarity reverses within it: after this many seconds of ``on_s`` it delivers with
            these rates instead (full amplitude, signed as measured; scaled by ``scale``, not signed by
            ``polarity``).
        """
        if on_s < 0 or period_s < 0 or pulses < 0:
            raise ValueError("a burst cannot last a negative time or hold a negative pulse count")
        self._on_s += on_s
        self._duration_s += period_s
        parts = [(on_s, rates, polarity)]
        if split is not None:
            first = min(on_s, split[0])
            parts = [(first, rates, polarity), (on_s - first, split[1], 1)]
        for seconds, r, sign in parts:
            self._charge += r.abs_current_A * scale * seconds
            self._net += r.mean_current_A * scale * sign * seconds
            self._i2t += r.square_current_A2 * scale * scale * seconds
            self._energy += r.power_W * scale * scale * seconds
        self._pulses += pulses
        self._bursts += 1

    @property
    def duration_s(self) -> float:
        """Delivery time covered so far in seconds."""
        return self._duration_s

    def dose(self) -> Dose:
        """The totals so far."""
        rms = math.sqrt(self._i2t / self._duration_s) if self._duration_s > 0 else 0.0
        return Dose(
            duration_s=self._duration_s,
            on_time_s=self._on_s,
            charge_C=self._charge,
            net_charge_C=self._net,
            rms_current_A=rms,
            energy_J=self._energy,
            pulse_count=self._pulses,
            bursts=self._bursts,
        )
