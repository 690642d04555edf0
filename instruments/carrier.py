"""One period of a carrier pulse train as an arbitrary waveform: a bipolar square carrier inside each pulse.

Cosmetic electroporation devices fill each pulse with a 1.2–1.8 kHz bipolar carrier. A function generator
plays it as an arbitrary waveform (ARB) of one pulse period — the carrier for the pulse width, then zero —
repeated ``pulses_per_burst`` times by a triggered burst, with its sample-and-hold output (no smoothing
filter) so every edge is a step. :func:`carrier_arb` picks a sample rate at which a carrier half-cycle and the
pulse are whole numbers of samples (to within a tolerance), or refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from instruments.errors import OutOfRange

__all__ = ["CarrierArb", "carrier_arb"]


@dataclass(frozen=True)
class CarrierArb:
    """The ARB of one pulse period and what it realises."""

    #: normalised samples: +1 and −1 for the carrier's half-cycles, 0 between pulses
    samples: np.ndarray
    sample_rate_Sa_s: float
    #: realised pulse width, carrier frequency and period (seconds, hertz, seconds)
    pulse_width_s: float
    carrier_Hz: float
    period_s: float

    @property
    def points(self) -> int:
        """Number of samples."""
        return int(self.samples.size)


def carrier_arb(*, pulse_width_s: float, carrier_Hz: float, period_s: float, max_points: int,
                max_sample_rate_Sa_s: float, rel_tol: float = 1e-3, resource: str = "") -> CarrierArb:
    """The ARB for pulses of ``pulse_width_s`` filled with a ``carrier_Hz`` square, every ``period_s``.

    The sample rate is ``2 · carrier_Hz · k`` (``k`` samples per half-cycle, 4 to 64): the smallest ``k`` for
    which the pulse width and the period come out as whole samples within ``rel_tol`` is used.

    Raises
    ------
    OutOfRange
        When no such rate fits the generator's memory and sample-rate limits.
    """
    if not (carrier_Hz > 0 and 0 < pulse_width_s < period_s):
        raise OutOfRange(f"carrier {carrier_Hz!r} Hz in {pulse_width_s!r} s pulses every {period_s!r} s is not a "
                         "pulse train", resource=resource)
    best: tuple[float, int] | None = None
    for k in range(4, 65):
        rate = 2.0 * carrier_Hz * k
        if rate > max_sample_rate_Sa_s:
            break
        n_width, n_period = pulse_width_s * rate, period_s * rate
        if round(n_period) > max_points:
            break
        err = max(abs(n_width - round(n_width)) / n_width, abs(n_period - round(n_period)) / n_period)
        if err <= rel_tol:
            best = (rate, k)
            break
    if best is None:
        need = math.ceil(period_s * 8 * carrier_Hz)
        raise OutOfRange(
            f"a {carrier_Hz:g} Hz carrier in {pulse_width_s * 1e3:g} ms pulses every {period_s:g} s needs an arbitrary "
            f"waveform of at least {need} samples at {8 * carrier_Hz:g} Sa/s with the pulse a whole number of "
            f"samples; {resource or 'the generator'} offers {max_points} samples at up to "
            f"{max_sample_rate_Sa_s:g} Sa/s", resource=resource)
    rate, k = best
    n_width, n_period = round(pulse_width_s * rate), round(period_s * rate)
    i = np.arange(n_period)
    samples = np.where(i < n_width, np.where((i // k) % 2 == 0, 1.0, -1.0), 0.0)
    return CarrierArb(samples, rate, n_width / rate, rate / (2 * k), n_period / rate)
