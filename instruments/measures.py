"""Waveform measures from a captured pair: electrode voltage and load current.

``measure_pair(voltage, current) -> WaveformMeasures`` (SI units). Pulses are found on the voltage trace at the
mid level between its extremes; edges are located to a fraction of a sample by linear interpolation. Per-pulse
quantities are integrated with cumulative sums, so a million-point capture costs a few passes over the data.

Definitions
-----------
amplitude_V
    Median level inside pulses minus median level outside (a biphasic train gives its peak-to-peak).
pulse_width_s, frequency_Hz, duty
    At the mid level, over complete pulses; ``duty = width × frequency``. An edge counts only when the signal
    also passes ±10 % of the swing around the mid level (hysteresis), so noise at the mid level makes no edges.
rise_time_s
    10 %–90 % of the amplitude, mean over rising edges.
current_rms_A, current_peak_A
    Over the whole record.
charge_per_phase_C
    Mean ∫ i dt over each pulse (between its mid-level edges).
net_dc_charge_C
    ∫ i dt over whole periods (first to last rising edge), or over the record if there are fewer than two.
energy_per_pulse_J
    Mean ∫ v·i dt over each pulse.
impedance_ohms, impedance_trend_ohms
    ``mean(v) / mean(i)`` over the middle half of each pulse: the median, and the per-pulse values.
resistance_drop_fraction
    ``1 − R_late / R_early`` within a pulse, R over the 10–30 % and 70–90 % parts of the pulse; the largest over
    the pulses (pores form during the first strong pulse), with the per-pulse values in
    ``resistance_drop_trend``: an index of pore formation under electroporation (≈0 for a resistor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from instruments.base import Trace

__all__ = ["CaptureTooCoarse", "PulseIntegrals", "PulseShape", "WaveformMeasures", "find_pulses", "measure_pair",
           "pulse_integrals", "true_runs"]


@dataclass(frozen=True)
class WaveformMeasures:
    """Measures of one capture (SI units; NaN where a measure is not defined, e.g. width without a pulse)."""

    amplitude_V: float
    pulse_width_s: float
    frequency_Hz: float
    duty: float
    rise_time_s: float
    current_rms_A: float
    current_peak_A: float
    charge_per_phase_C: float
    net_dc_charge_C: float
    energy_per_pulse_J: float
    impedance_ohms: float
    resistance_drop_fraction: float
    pulses: int
    impedance_trend_ohms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    resistance_drop_trend: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def as_dict(self) -> dict[str, Any]:
        """Plain dict; the impedance trend as a list of floats."""
        # the fields as they are (numbers), not dataclasses.asdict's deep copies: its copies of the two trend
        # arrays, replaced by lists just below, cost more than the rest of the dict
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["impedance_trend_ohms"] = [float(x) for x in self.impedance_trend_ohms]
        d["resistance_drop_trend"] = [float(x) for x in self.resistance_drop_trend]
        return d


def _crossings(x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``k`` with ``x[k] <= level < x[k+1]`` (rising) and ``x[k] > level >= x[k+1]`` (falling)."""
    above = x > level
    change = np.flatnonzero(above[1:] != above[:-1])
    rising = change[above[change + 1]]
    falling = change[~above[change + 1]]
    return rising, falling


def _hysteresis_edges(x: np.ndarray, mid: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Mid-level crossings confirmed by a Schmitt trigger of half-width ``h`` (noise at mid makes no edges).

    The trigger switches up where ``x`` rises through ``mid + h`` and down where it falls through ``mid - h``;
    only alternating switches count, and each is dated by the last mid-level crossing before it.
    """
    r_mid, f_mid = _crossings(x, mid)
    ups, _ = _crossings(x, mid + h)
    _, downs = _crossings(x, mid - h)
    idx = np.concatenate((ups, downs))
    kind = np.concatenate((np.ones(ups.size, dtype=np.int8), np.zeros(downs.size, dtype=np.int8)))
    order = np.argsort(idx, kind="stable")
    idx, kind = idx[order], kind[order]
    initial = 1 if x[0] > mid else 0
    keep = np.empty(kind.size, dtype=bool)
    if kind.size:
        keep[0] = kind[0] != initial
        keep[1:] = kind[1:] != kind[:-1]
    up, down = idx[keep & (kind == 1)], idx[keep & (kind == 0)]
    ku = np.searchsorted(r_mid, up, side="right") - 1
    kd = np.searchsorted(f_mid, down, side="right") - 1
    return r_mid[ku[ku >= 0]], f_mid[kd[kd >= 0]]


def _median_of(x: np.ndarray, idx: np.ndarray, cap: int = 20_000) -> float:
    """Median of ``x[idx]`` from an evenly strided subset of at most ``cap`` indices."""
    step = max(1, idx.size // cap)
    return float(np.median(x[idx[::step]]))


def _frac(x: np.ndarray, k: np.ndarray, level: float) -> np.ndarray:
    """Sub-sample position of the crossing between ``k`` and ``k + 1``."""
    x0, x1 = x[k], x[k + 1]
    d = x1 - x0
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(d != 0, (level - x0) / d, 0.5)
    return k + np.clip(f, 0.0, 1.0)


def _piece_sums(x: np.ndarray, cuts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sums of ``x`` over the pieces between consecutive cuts of each pulse (``cuts`` shape (P, 7)).

    One ``np.add.reduceat`` pass; the piece after the last cut ends at ``ends``. Empty pieces sum to zero.
    """
    p, k = cuts.shape
    bounds = np.empty((p, k + 1), dtype=np.int64)
    bounds[:, :k] = cuts
    bounds[:, k] = ends
    flat = np.minimum(bounds.ravel(), x.size)
    src = np.concatenate((x, [0.0])) if flat[-1] >= x.size else x
    sums = np.add.reduceat(src, flat)
    empty = np.append(flat[1:] <= flat[:-1], True)
    sums[empty] = 0.0
    return sums.reshape(p, k + 1)[:, :k]


def _rise_time(sig: np.ndarray, rising: np.ndarray, falling: np.ndarray, base: float, amplitude: float,
               max_edges: int = 64) -> float:
    """Mean 10-90 % rise time in samples over the first ``max_edges`` rising edges (NaN if none resolvable)."""
    lo_l, hi_l = base + 0.1 * amplitude, base + 0.9 * amplitude
    out = []
    for r in rising[:max_edges]:
        k = np.searchsorted(falling, r)
        start = int(falling[k - 1]) + 1 if k > 0 else 0
        stop = int(falling[k]) + 1 if k < falling.size else sig.size
        # look near the edge first; widen to the whole segment only for slow edges
        near = max(start, r - 256)
        below = np.flatnonzero(sig[near:r + 1] <= lo_l)
        if below.size:
            below += near - start
        else:
            below = np.flatnonzero(sig[start:r + 1] <= lo_l)
        above = np.flatnonzero(sig[r:min(stop, r + 257)] > hi_l)
        if not above.size:
            above = np.flatnonzero(sig[r:stop] > hi_l)
        if not below.size or not above.size:
            continue
        k10 = start + int(below[-1])
        k90 = r + int(above[0]) - 1
        if k10 + 1 >= sig.size or k90 < 0:
            continue
        t10 = float(_frac(sig, np.array([k10]), lo_l)[0])
        t90 = float(_frac(sig, np.array([k90]), hi_l)[0])
        out.append(t90 - t10)
    return float(np.mean(out)) if out else float("nan")


def measure_pair(voltage: Trace, current: Trace, *, level_fraction: float = 0.5) -> WaveformMeasures:
    """Measure a (voltage, current) capture pair.

    Parameters
    ----------
    voltage : Trace
        Electrode voltage, unit ``'V'``.
    current : Trace
        Load current, unit ``'A'``, sampled on the same time base.
    level_fraction : float
        Where between the extremes a pulse edge is detected (0.5 = mid level).

    Returns
    -------
    WaveformMeasures

    Raises
    ------
    ValueError
        If the traces have the wrong units, lengths or sample intervals.
    """
    if voltage.unit != "V" or current.unit != "A":
        raise ValueError(f"measure_pair needs a voltage trace in 'V' and a current trace in 'A', got "
                         f"{voltage.unit!r} and {current.unit!r}")
    v = np.asarray(voltage.values, dtype=np.float64)
    i = np.asarray(current.values, dtype=np.float64)
    if v.shape != i.shape or v.size < 4:
        raise ValueError(f"voltage and current traces must have the same length (>= 4 samples), got {v.size} "
                         f"and {i.size}")
    dt = voltage.sample_interval_s
    if not math.isclose(dt, current.sample_interval_s, rel_tol=1e-6):
        raise ValueError(f"voltage and current sample intervals differ ({dt:g} s vs {current.sample_interval_s:g} s)")
    if not 0 < level_fraction < 1:
        raise ValueError(f"level_fraction must be between 0 and 1, got {level_fraction!r}")

    nan = float("nan")
    vmin, vmax = float(v.min()), float(v.max())
    # pulses go away from the baseline; the baseline is the extreme the signal spends most time nearest to
    mid = vmin + level_fraction * (vmax - vmin)
    above = v > mid
    frac_above = float(np.count_nonzero(above)) / v.size
    flip = frac_above > 0.5 and abs(vmin) > abs(vmax)
    sig = -v if flip else v
    if flip:
        mid = -mid
        above = ~above
    n_above = int(np.count_nonzero(above))
    # state levels as medians (edges and overshoot barely move them) of a strided subset: every sample of a
    # record below 100 000 points, else every (n // 50 000)-th (50 000 to 100 000 samples); each level's
    # median is of the subset's samples on its side of the mid level (a 60 000-point record: all of them)
    step = max(1, sig.size // 50_000)
    sub = sig[::step]
    sub_above = sub > mid
    n_sub = int(np.count_nonzero(sub_above))
    if not n_above:
        top = nan
    elif n_sub >= 500:
        top = float(np.median(sub[sub_above]))
    else:  # short pulses: too few in the strided subset, so take their own samples
        top = _median_of(sig, np.flatnonzero(above))
    if n_above == sig.size:
        base = nan
    elif sub.size - n_sub >= 500:
        base = float(np.median(sub[~sub_above]))
    else:
        base = _median_of(sig, np.flatnonzero(~above))
    amplitude = (top - base) if n_above and n_above < sig.size and np.isfinite(top - base) else 0.0
    amplitude_V = -amplitude if flip else amplitude

    rising, falling = _hysteresis_edges(sig, mid, 0.1 * (vmax - vmin))
    r_t = _frac(sig, rising, mid)
    f_t = _frac(sig, falling, mid)
    # pair each rising edge with the next falling edge (complete pulses only)
    if f_t.size and r_t.size:
        j = np.searchsorted(f_t, r_t)
        ok = j < f_t.size
        starts, ends = r_t[ok], f_t[j[ok]]
        if starts.size > 1:  # a rise must not be followed by another rise before its fall
            valid = np.ones(starts.size, dtype=bool)
            valid[:-1] = ends[:-1] <= starts[1:]
            starts, ends = starts[valid], ends[valid]
    else:
        starts = ends = np.zeros(0)
    pulses = int(starts.size)
    width = float(np.mean(ends - starts) * dt) if pulses else nan
    freq = float(1.0 / (np.mean(np.diff(r_t)) * dt)) if r_t.size >= 2 else nan
    duty = width * freq if pulses and r_t.size >= 2 else nan

    rise = _rise_time(sig, rising, falling, base, amplitude) * dt if rising.size and amplitude > 0 else nan

    # (i*i).sum() rather than np.dot: BLAS threads contend badly on a busy host for no gain here
    i_rms = float(np.sqrt(np.square(i).sum() / i.size))
    i_peak = float(max(-i.min(), i.max()))

    charge = energy = impedance = drop = nan
    trend = drops = np.zeros(0)
    if pulses:
        a = np.ceil(starts).astype(np.int64)
        b = np.floor(ends).astype(np.int64) + 1
        length = b - a
        # seven pieces per pulse (cuts at 10, 25, 30, 70, 75, 90 %) summed in one pass per signal
        cuts = np.stack([a, a + length // 10, a + length // 4, a + 3 * length // 10, b - 3 * length // 10,
                         b - length // 4, b - length // 10], axis=1)
        pv, pi = _piece_sums(v, cuts, b), _piece_sums(i, cuts, b)
        charge = float(np.mean(pi.sum(axis=1)) * dt)
        energy = float(np.mean(_piece_sums(v * i, cuts, b).sum(axis=1)) * dt)

        def ratio(cols: list[int]) -> np.ndarray:
            sv, si = pv[:, cols].sum(axis=1), pi[:, cols].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(si != 0, sv / si, np.inf)

        trend = ratio([2, 3, 4])  # 25-75 %
        impedance = float(np.median(trend))
        with np.errstate(divide="ignore", invalid="ignore"):
            drops = 1.0 - ratio([4, 5]) / ratio([1, 2])  # 70-90 % against 10-30 %
        finite = drops[np.isfinite(drops)]
        drop = float(np.max(finite)) if finite.size else nan
    if r_t.size >= 2:
        a0, b0 = int(np.ceil(r_t[0])), int(np.ceil(r_t[-1]))
        net = float(i[a0:b0].sum() * dt)
    else:
        net = float(i.sum() * dt)

    return WaveformMeasures(
        amplitude_V=amplitude_V, pulse_width_s=width, frequency_Hz=freq, duty=duty, rise_time_s=rise,
        current_rms_A=i_rms, current_peak_A=i_peak, charge_per_phase_C=charge, net_dc_charge_C=net,
        energy_per_pulse_J=energy, impedance_ohms=impedance, resistance_drop_fraction=drop, pulses=pulses,
        impedance_trend_ohms=trend, resistance_drop_trend=drops,
    )


class CaptureTooCoarse(ValueError):
    """A capture has too few samples for the measure asked of it; it is refused, never interpolated."""


@dataclass(frozen=True)
class PulseIntegrals:
    """Integrals of the first whole pulse of a voltage-driven capture (SI units).

    ``charge_C`` is the charge the pulse carried while it was on, from the start of its rising edge to its
    falling edge: |∫ i dt| over each stretch of one drive polarity, summed (∫|i| dt for a clean signal; a
    carrier burst counts every half-cycle); the current that flows back afterwards (an electrode capacitance discharging through
    the source) is not part of it. ``net_charge_C``, ``i2t_A2s`` and ``energy_J`` run from the pulse's start to
    the end of the record and so include that return: for a monophasic pulse into a resistor the net charge
    equals the charge; into skin it is less by the charge the capacitance gave back.
    """

    charge_C: float
    net_charge_C: float
    i2t_A2s: float
    energy_J: float
    #: mid-level width of the pulse envelope
    width_s: float
    #: samples while the pulse was on
    samples: int
    #: time of the pulse's start and of its end (falling edge), relative to the trigger
    start_s: float
    end_s: float


def pulse_integrals(voltage: Trace, current: Trace, *, min_samples: int = 20) -> PulseIntegrals:
    """Integrate the first whole pulse of a capture (a pulse may be a burst of carrier inside its envelope).

    The pulse is where ``|v|`` (about its baseline) exceeds half the pulse height; it starts where ``|v|`` last
    rose through a tenth of it before that and ends where ``|v|`` last falls below half of it before a quiet
    stretch of at least half the pulse. Integrals are sums of samples times the sample interval.

    Parameters
    ----------
    voltage, current : Trace
        Electrode voltage (V) and current (A) of one acquisition.
    min_samples : int
        Fewest samples the pulse may have; fewer raise :class:`CaptureTooCoarse`.

    Returns
    -------
    PulseIntegrals

    Raises
    ------
    CaptureTooCoarse
        Fewer than ``min_samples`` samples while the pulse is on.
    ValueError
        No whole pulse in the record.
    """
    v = np.asarray(voltage.values, dtype=float)
    i = np.asarray(current.values, dtype=float)
    t = np.asarray(voltage.time_s, dtype=float)
    if v.shape != i.shape or v.size < 4:
        raise ValueError("voltage and current traces must have the same length (>= 4 samples)")
    dt = voltage.sample_interval_s
    pre = v[t < 0]
    base = float(np.median(pre)) if pre.size >= 4 else float(np.median(v[: max(v.size // 20, 2)]))
    # |v − base| in the difference's own array (one record-long array, not two)
    mag = np.subtract(v, base)
    np.abs(mag, out=mag)
    height = float(mag.max())
    if not height > 0:
        raise ValueError("no pulse in the record (the electrode voltage never leaves its baseline)")
    high = mag > 0.5 * height
    first = int(np.argmax(high))
    if first == 0:
        raise ValueError("the record starts inside a pulse: no whole pulse")
    low = np.flatnonzero(mag[:first] <= 0.1 * height)
    start = int(low[-1]) + 1 if low.size else 0
    # the envelope ends at the last high sample before a quiet stretch as long as half the pulse so far
    idx = np.flatnonzero(high[first:]) + first
    gaps = np.diff(idx)
    quiet = np.flatnonzero(gaps > np.maximum((idx[:-1] - first) // 2, 4))
    end = int(idx[quiet[0]] if quiet.size else idx[-1]) + 1
    if end >= v.size:
        raise ValueError("the pulse runs past the end of the record: no whole pulse")
    samples = end - start
    if samples < min_samples:
        raise CaptureTooCoarse(
            f"the pulse has {samples} samples (every {dt:.3g} s), fewer than the {min_samples} its integrals need"
        )
    tail = slice(start, v.size)
    # the charge of each stretch of one polarity of the drive, then their magnitudes: a monophasic pulse is
    # one stretch, a carrier burst one per half-cycle; summing within a stretch first lets scope noise cancel
    # (∫|i| sample by sample would add it up)
    polarity = np.sign(v[start:end] - base)
    polarity[polarity == 0] = 1
    cuts = np.flatnonzero(np.diff(polarity)) + 1
    charge = float(sum(abs(part.sum()) for part in np.split(i[start:end], cuts)) * dt)
    return PulseIntegrals(
        charge_C=charge,
        net_charge_C=float(i[tail].sum() * dt),
        i2t_A2s=float(np.square(i[tail]).sum() * dt),
        energy_J=float((v[tail] * i[tail]).sum() * dt),
        width_s=float(np.count_nonzero(high[first:end]) * dt) if samples else math.nan,
        samples=samples,
        start_s=float(t[start]),
        end_s=float(t[end - 1] + dt),
    )


@dataclass(frozen=True)
class PulseShape:
    """One pulse of a voltage capture, found by its envelope (a carrier inside it counts as one pulse)."""

    #: start (the envelope's rise through half height), relative to the trigger, seconds
    start_s: float
    #: envelope width between half-height crossings, seconds
    width_s: float
    #: median |v| about the baseline while on, volts
    height_V: float
    #: stretches of one polarity inside the pulse (1 for a monophasic pulse, 2 per carrier cycle)
    half_cycles: int
    #: carrier frequency (from the spacing of its half-cycles), or None for a monophasic pulse
    carrier_Hz: float | None
    #: whether the whole pulse is inside the record
    complete: bool


def find_pulses(voltage: Trace) -> list[PulseShape]:
    """The pulses of a capture by their envelope: ``|v|`` (about its baseline) above half its largest value.

    Stretches above half height separated by less than half the shorter of them belong to one pulse — the
    short dips of a bipolar carrier's transitions; the silence between pulses is far longer.

    Parameters
    ----------
    voltage : Trace
        Electrode voltage.

    Returns
    -------
    list of PulseShape
        In time order; the first and last may be incomplete (cut by the record's edges).
    """
    v = np.asarray(voltage.values, dtype=float)
    t = np.asarray(voltage.time_s, dtype=float)
    if v.size < 4:
        return []
    dt = voltage.sample_interval_s
    pre = v[t < 0]
    base = float(np.median(pre)) if pre.size >= 4 else float(np.median(v))
    # |v − base| in the difference's own array (one record-long array, not two)
    mag = np.subtract(v, base)
    np.abs(mag, out=mag)
    height = float(mag.max())
    if not height > 0:
        return []
    runs = true_runs(mag > 0.5 * height)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged:
            pa, pb = merged[-1][-2], merged[-1][-1]
            if a - pb < 0.5 * min(pb - pa, b - a):
                merged[-1].extend((a, b))
                continue
        merged.append([a, b])
    out = []
    for pulse in merged:
        a, b = pulse[0], pulse[-1]
        # the pulse's own samples [a, b): above half height in its stretches, not in the dips between them
        on = np.zeros(b - a, dtype=bool)
        for k in range(0, len(pulse), 2):
            on[pulse[k] - a:pulse[k + 1] - a] = True
        sign = np.sign(v[a:b] - base)
        sign[~on] = 0
        stretches = [(x, y) for x, y in true_runs(sign > 0)] + [(x, y) for x, y in true_runs(sign < 0)]
        stretches.sort()
        half_cycles = len(stretches)
        width = (b - a) * dt
        carrier = None
        if half_cycles >= 2:
            # whole half-cycles only: a pulse may end part-way through its last one
            starts = np.array([x for x, _ in stretches], dtype=float)
            carrier = float(1.0 / (2 * np.median(np.diff(starts)) * dt))
        out.append(PulseShape(
            start_s=float(t[a]), width_s=float(width), height_V=float(np.median(mag[a:b][on])),
            half_cycles=half_cycles, carrier_Hz=carrier, complete=a > 0 and b < v.size,
        ))
    return out


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop (exclusive) indices of the runs of True in a boolean array, in order.

    Found from where neighbouring samples differ (one comparison over the record, no integer copies).
    """
    m = np.asarray(mask, dtype=bool)
    if not m.size:
        return []
    bounds = np.concatenate(([0], np.flatnonzero(m[1:] != m[:-1]) + 1, [m.size]))
    first = 0 if m[0] else 1
    return list(zip(bounds[first:-1:2].tolist(), bounds[first + 1::2].tolist(), strict=True))
