"""The bench circuit solved exactly: piecewise-exponential waveforms that a scope can sample at any rate.

Source (voltage through an output resistance, or current with a compliance voltage) → load → shunt. The load is
a resistor, an open or a short, or electrodes on skin: ``Rs`` in series with the stratum corneum ``Rp ‖ Cp``.
While the source level and ``Rp`` are constant the voltage on ``Cp`` follows one exponential,
``vc(s) = vc∞ + (vc0 − vc∞)·exp(−s/τ)``, and the electrode voltage and the current are affine in ``vc``; so
each output is ``A + B·exp(−s/τ)`` on such a piece, exactly, at any instant. A current source that reaches
its compliance becomes a voltage source at ±compliance part-way through a piece: the switching instant is
solved for and the piece split there.

Bandwidth (the HV amplifier's, the scope's front end) is a single pole ``τf`` applied to the outputs. A
one-pole filter of ``A + B·exp(−s/τ)`` is again a sum of exponentials in closed form, so the filtered
waveform is exact too: a microsecond transient sampled every two milliseconds is seen, or missed, the way a
real scope sees it — never smeared into a ramp by interpolating a coarse simulation.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Piece", "Waveform", "solve_piece"]


@dataclass(frozen=True)
class Piece:
    """One piece: on ``[0, dur_s)`` the outputs are ``X∞ + X_amp·exp(−s·inv_tau)`` (``inv_tau`` 0: constant)."""

    dur_s: float
    inv_tau: float
    v_inf: float
    v_amp: float
    i_inf: float
    i_amp: float
    #: voltage on Cp at the end of the piece, and its largest magnitude within it
    vc_end: float
    vc_peak: float


def _exp_piece(dur: float, vc0: float, vinf: float, tau: float, a_i: float, b_i: float, a_v: float,
               b_v: float) -> Piece:
    """A piece with ``vc`` relaxing from ``vc0`` to ``vinf`` (time constant ``tau``); ``i = a_i + b_i·vc`` and
    ``v = a_v + b_v·vc``."""
    inv = 1.0 / tau if tau > 0 and math.isfinite(tau) else 0.0
    delta = vc0 - vinf if inv > 0 else 0.0
    vc_end = vinf + delta * math.exp(-dur * inv) if inv > 0 else vc0
    base = vinf if inv > 0 else vc0
    return Piece(dur, inv, a_v + b_v * base, b_v * delta, a_i + b_i * base, b_i * delta, vc_end,
                 max(abs(vc0), abs(vc_end)))


def _switch_time(vc0: float, vinf: float, tau: float, vc_star: float, dur: float) -> float | None:
    """When ``vc`` (relaxing from ``vc0`` to ``vinf``) reaches ``vc_star`` within ``(0, dur)``, else None."""
    if not (tau > 0 and math.isfinite(tau)) or vc0 == vinf:
        return None
    ratio = (vc_star - vinf) / (vc0 - vinf)
    if not 0.0 < ratio < 1.0:
        return None
    s = -tau * math.log(ratio)
    return s if 0.0 < s < dur else None


def solve_piece(level: float, dur: float, vc0: float, *, source: str, src_ohms: float, series: float,
                shunt_ohms: float, rp: float | None, cp: float | None, compliance_V: float) -> list[Piece]:
    """Solve the circuit for ``dur`` seconds at a constant source ``level`` and ``Rp``.

    Parameters
    ----------
    level : float
        Source EMF (volts) or current (amperes).
    dur : float
        Length in seconds.
    vc0 : float
        Voltage on ``Cp`` at the start.
    source : {'voltage', 'current'}
    src_ohms : float
        Output resistance of a voltage source.
    series : float
        Series resistance of the load (``inf`` for an open circuit, 0 for a short).
    shunt_ohms : float
        Current-sense shunt.
    rp, cp : float or None
        Stratum corneum resistance and capacitance (None for a resistive load).
    compliance_V : float
        Largest voltage a current source applies.

    Returns
    -------
    list of Piece
        One piece, or two when a current source enters or leaves its compliance part-way.
    """
    if math.isinf(series):  # open circuit: no current; the electrodes see the open-circuit source
        v = level if source == "voltage" else (math.copysign(compliance_V, level) if level else 0.0)
        return [Piece(dur, 0.0, v, 0.0, 0.0, 0.0, vc0, abs(vc0))]
    if source == "voltage":
        r_ext = src_ohms + series + shunt_ohms
        if rp is None or cp is None:
            i = level / r_ext if r_ext else 0.0
            return [Piece(dur, 0.0, i * series, 0.0, i, 0.0, vc0, abs(vc0))]
        return [_voltage_driven(level, dur, vc0, r_ext, series, rp, cp)]
    r_ext = series + shunt_ohms
    sign = 1.0 if level >= 0 else -1.0
    if rp is None or cp is None:
        i = level
        if abs(level) * r_ext > compliance_V:
            i = sign * compliance_V / r_ext if r_ext else level
        return [Piece(dur, 0.0, i * series, 0.0, i, 0.0, vc0, abs(vc0))]
    # the source holds its current until that would need more than the compliance; then it holds ±compliance
    vc_star = sign * compliance_V - level * r_ext
    in_current = level == 0 or sign * (level * r_ext + vc0) <= compliance_V
    pieces: list[Piece] = []
    remaining, vc = dur, vc0
    for _ in range(2):
        if in_current:
            tau, vinf = rp * cp, level * rp
        else:
            r_par = rp * r_ext / (rp + r_ext)
            tau, vinf = cp * r_par, sign * compliance_V * rp / (rp + r_ext)
        s = None if level == 0 else _switch_time(vc, vinf, tau, vc_star, remaining)
        length = remaining if s is None else s
        if in_current:
            piece = _exp_piece(length, vc, vinf, tau, level, 0.0, level * series, 1.0)
        else:
            v_src = sign * compliance_V
            piece = _exp_piece(length, vc, vinf, tau, v_src / r_ext, -1.0 / r_ext, v_src * series / r_ext,
                               1.0 - series / r_ext)
        pieces.append(piece)
        if s is None:
            break
        remaining -= s
        vc = vc_star
        in_current = not in_current
    return pieces


def _voltage_driven(level: float, dur: float, vc0: float, r_ext: float, series: float, rp: float,
                    cp: float) -> Piece:
    r_par = rp * r_ext / (rp + r_ext)
    return _exp_piece(dur, vc0, level * rp / (rp + r_ext), cp * r_par, level / r_ext, -1.0 / r_ext,
                      level * series / r_ext, 1.0 - series / r_ext)


def voltage_driven_vc(level: float, dur: float, vc0: float, r_ext: float, rp: float, cp: float
                      ) -> tuple[float, float]:
    """``(vc_end, vc_peak)`` of the piece :func:`solve_piece` returns for a voltage source on skin (``r_ext``:
    source, series and shunt resistance), in the same arithmetic, without building it: for integrating the
    pore state through a burst whose waveform is not wanted."""
    r_par = rp * r_ext / (rp + r_ext)
    tau = cp * r_par
    if not (tau > 0 and math.isfinite(tau)):
        return vc0, abs(vc0)
    vinf = level * rp / (rp + r_ext)
    vc_end = vinf + (vc0 - vinf) * math.exp(-dur * (1.0 / tau))
    return vc_end, max(abs(vc0), abs(vc_end))


#: samples per piece from which a record in time order is evaluated piece by piece (a few array operations
#: per piece) rather than with every piece's constants gathered for every sample
_SORTED_MIN_PER_PIECE = 256
#: pieces of the first stretch :meth:`Waveform.crossings` evaluates (each further stretch is twice as long)
_CROSSING_PIECES = 8


@dataclass
class Waveform:
    """The outputs of one burst as pieces (times relative to the burst start).

    Attributes
    ----------
    t0_s, dur_s, inv_tau, v_inf, v_amp, i_inf, i_amp : (K,) ndarray
        The pieces in order (see :class:`Piece`).
    duration_s : float
        Length of the whole burst.
    period_s : float
        Period of its cycles; beyond the resolved pieces the last period repeats.
    """

    t0_s: np.ndarray
    dur_s: np.ndarray
    inv_tau: np.ndarray
    v_inf: np.ndarray
    v_amp: np.ndarray
    i_inf: np.ndarray
    i_amp: np.ndarray
    duration_s: float
    period_s: float
    _filtered: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_pieces(cls, pieces: list[Piece], *, duration_s: float, period_s: float) -> Waveform:
        """Assemble pieces laid end to end from time 0."""
        dur = np.array([p.dur_s for p in pieces], dtype=float)
        t0 = np.concatenate(([0.0], np.cumsum(dur)[:-1])) if dur.size else np.zeros(0)
        arr = {name: np.array([getattr(p, name) for p in pieces], dtype=float)
               for name in ("inv_tau", "v_inf", "v_amp", "i_inf", "i_amp")}
        return cls(t0, dur, duration_s=duration_s, period_s=period_s, **arr)

    @property
    def resolved_s(self) -> float:
        """End of the pieces solved one by one (the rest of a long burst repeats the last period)."""
        return float(self.t0_s[-1] + self.dur_s[-1]) if self.t0_s.size else 0.0

    def _fold(self, rel: np.ndarray) -> np.ndarray:
        end = self.resolved_s
        if self.duration_s <= end + 1e-15 or self.period_s <= 0:
            return rel
        out = rel.copy()
        beyond = rel >= end
        if beyond.any():
            out[beyond] = end - self.period_s + np.mod(rel[beyond] - end, self.period_s)
        return out

    def _piece_starts(self, tau_f: float) -> tuple[np.ndarray, np.ndarray]:
        """Filtered values of (v, i) at the start of every piece (the filter starts settled at 0)."""
        hit = self._filtered.get(tau_f)
        if hit is not None:
            return hit
        inv_f = 1.0 / tau_f
        # a recurrence over the pieces: plain floats (an array per piece cost more than the arithmetic)
        yv = yi = 0.0
        sv, si = [], []
        for d, inv, av, bv, ai, bi in zip(self.dur_s.tolist(), self.inv_tau.tolist(), self.v_inf.tolist(),
                                          self.v_amp.tolist(), self.i_inf.tolist(), self.i_amp.tolist(),
                                          strict=True):
            sv.append(yv)
            si.append(yi)
            yv = _filtered_value(d, av, bv, inv, inv_f, yv)
            yi = _filtered_value(d, ai, bi, inv, inv_f, yi)
        starts = (np.array(sv, dtype=float), np.array(si, dtype=float))
        self._filtered[tau_f] = starts
        return starts

    def evaluate(self, rel: np.ndarray, *, tau_filter_s: float = 0.0,
                 end_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Electrode voltage and current at times ``rel`` after the burst start, exactly.

        Parameters
        ----------
        rel : ndarray
            Seconds after the burst start; zero output before 0 and after ``end_s``.
        tau_filter_s : float
            Time constant of a single-pole low-pass applied to both outputs (0: none).
        end_s : float, optional
            Where the output stopped (a cut burst); default: the burst's length.
        """
        rel = np.asarray(rel, dtype=float)
        end = self.duration_s if end_s is None else min(end_s, self.duration_s)
        v = np.zeros_like(rel)
        i = np.zeros_like(rel)
        if not self.t0_s.size:
            return v, i
        if (rel.ndim == 1 and rel.size >= _SORTED_MIN_PER_PIECE * self.t0_s.size
                and bool((rel[1:] >= rel[:-1]).all())):
            # a scope's record: instants in order, so the burst is one stretch of them and each piece another
            inside = slice(int(np.searchsorted(rel, 0.0, side="left")), int(np.searchsorted(rel, end, side="left")))
            if inside.start < inside.stop:
                self._evaluate_sorted(rel[inside], tau_filter_s, v[inside], i[inside])
            inside = None
        else:
            inside = (rel >= 0) & (rel < end)
        if inside is not None and rel[inside].size:
            r = self._fold(rel[inside])
            k = np.clip(np.searchsorted(self.t0_s, r, side="right") - 1, 0, self.t0_s.size - 1)
            s = r - self.t0_s[k]
            inv = self.inv_tau[k]
            if tau_filter_s > 0:
                yv0, yi0 = self._piece_starts(tau_filter_s)
                # both outputs share the pieces' exponentials: computed once
                terms = _filter_terms(s, inv, 1.0 / tau_filter_s)
                v[inside] = _filtered_from(terms, self.v_inf[k], self.v_amp[k], yv0[k])
                i[inside] = _filtered_from(terms, self.i_inf[k], self.i_amp[k], yi0[k])
            else:
                e = np.exp(-s * inv)
                v[inside] = self.v_inf[k] + self.v_amp[k] * e
                i[inside] = self.i_inf[k] + self.i_amp[k] * e
        if tau_filter_s > 0:
            after = rel >= end
            if after.any():
                # the output stops; what the filter holds decays with its own time constant
                v_end, i_end = self.evaluate(np.array([np.nextafter(end, -np.inf)]), tau_filter_s=tau_filter_s,
                                             end_s=end)
                decay = np.exp(-(rel[after] - end) / tau_filter_s)
                v[after] = v_end[0] * decay
                i[after] = i_end[0] * decay
        return v, i

    def _evaluate_sorted(self, rel: np.ndarray, tau_filter_s: float, v: np.ndarray, i: np.ndarray) -> None:
        """:meth:`evaluate` of times in order inside the burst, piece by piece into ``v`` and ``i`` (views).

        The same formulas with each piece's constants as scalars (the same operations in the same order, so
        the same values) instead of gathered for every sample. Times past the solved pieces (a long burst
        repeats its last period) are folded back as :meth:`_fold` does: each repeat of the period is a stretch
        of folded times in order (from one fall of the folded times to the next), evaluated the same way.
        """
        resolved = self.resolved_s
        split = rel.size
        if rel[-1] >= resolved and self.duration_s > resolved + 1e-15 and self.period_s > 0:
            split = int(np.searchsorted(rel, resolved, side="left"))
            folded = self._fold(rel[split:])
            restarts = (np.flatnonzero(folded[1:] < folded[:-1]) + 1).tolist()
            for lo, hi in zip([0, *restarts], [*restarts, folded.size], strict=True):
                self._evaluate_stretch(folded[lo:hi], tau_filter_s, v[split + lo:split + hi],
                                       i[split + lo:split + hi])
        if split:
            self._evaluate_stretch(rel[:split], tau_filter_s, v[:split], i[:split])

    def _evaluate_stretch(self, rel: np.ndarray, tau_filter_s: float, v: np.ndarray, i: np.ndarray) -> None:
        """Times in order within the solved pieces (earlier than the first piece: the first; later than the
        last: the last, as :meth:`evaluate`'s piece index clips them), piece by piece into ``v`` and ``i``."""
        t0 = self.t0_s
        # samples of piece j: from the first at or after its start (before piece 0: none inside the burst)
        bounds = np.searchsorted(rel, t0[1:], side="left").tolist()
        lows, highs = [0, *bounds], [*bounds, rel.size]
        outputs = ((v, self.v_inf.tolist(), self.v_amp.tolist()), (i, self.i_inf.tolist(), self.i_amp.tolist()))
        with np.errstate(divide="ignore", invalid="ignore"):
            self._pieces_into(rel, lows, highs, tau_filter_s, outputs)

    def _pieces_into(self, rel: np.ndarray, lows: list[int], highs: list[int], tau_filter_s: float,
                     outputs: tuple) -> None:
        """Each piece's samples ``rel[lo:hi]`` into the (array, X∞, X_amp) ``outputs``.

        The formulas of :func:`_filtered_value` (and ``a + b·exp(−s·inv)`` without a filter), each operation
        written into the output or a scratch buffer reused from piece to piece instead of a new temporary: a
        record's pieces run to tens of thousands of samples, where fresh arrays cost as much as the arithmetic.
        Products and sums are taken with their operands swapped where that saves a copy (exact in floating
        point), so every sample is the same float as the expression gives.
        """
        inv_all = self.inv_tau.tolist()
        t0_all = self.t0_s.tolist()
        if tau_filter_s > 0:
            yv0, yi0 = self._piece_starts(tau_filter_s)
            inv_f = 1.0 / tau_filter_s
            starts = (yv0.tolist(), yi0.tolist())
        longest = max((hi - lo for lo, hi in zip(lows, highs, strict=True)), default=0)
        s_buf, e_buf, ef_buf, tmp_buf = (np.empty(longest) for _ in range(4))
        for j, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
            if lo >= hi:
                continue
            n = hi - lo
            s = np.subtract(rel[lo:hi], t0_all[j], out=s_buf[:n])
            inv = inv_all[j]
            # exp(−s·inv): s·(−inv) is the same float as (−s)·inv
            e = _exp_decay(s, inv, e_buf[:n])
            if tau_filter_s > 0:
                ef = _exp_decay(s, inv_f, ef_buf[:n])
                if abs(inv_f - inv) <= 1e-9 * inv_f:
                    for (out, a_all, b_all), y0_all in zip(outputs, starts, strict=True):
                        a, b, y0 = a_all[j], b_all[j], y0_all[j]
                        out[lo:hi] = a + b * s * inv_f * ef + (y0 - a) * ef
                    continue
                c = inv_f / (inv_f - inv)
                tmp = tmp_buf[:n]
                for (out, a_all, b_all), y0_all in zip(outputs, starts, strict=True):
                    a, b, y0 = a_all[j], b_all[j], y0_all[j]
                    # a + b·c·e + (y0 − a − b·c)·ef
                    dst = np.multiply(e, b * c, out=out[lo:hi])
                    dst += a
                    dst += np.multiply(ef, y0 - a - b * c, out=tmp)
            else:
                for out, a_all, b_all in outputs:
                    dst = np.multiply(e, b_all[j], out=out[lo:hi])
                    dst += a_all[j]

    def crossings(self, level: float, *, rising: bool, signal: str, tau_filter_s: float = 0.0,
                  limit: int = 64, start_s: float = 0.0) -> np.ndarray:
        """Times (after the burst start, within the solved pieces) at which ``signal`` (``'electrode'`` or
        ``'current'``) crosses ``level`` upward (``rising``) or downward; the first ``limit`` at or after
        ``start_s``, in order."""
        k = self.t0_s.size
        if not k:
            return np.zeros(0)
        # each piece is a sum of two exponentials (at most one extremum): a log-spaced grid finds every
        # crossing, bisection then places it
        u = np.concatenate(([0.0], np.geomspace(1e-9, 1.0, 48)))
        # only the pieces that end at or after start_s (and the one before, whose end may cross)
        first = max(int(np.searchsorted(self.t0_s, start_s, side="right")) - 2, 0)
        ceiling = np.nextafter(self.resolved_s, 0.0)
        which = 0 if signal == "electrode" else 1
        sign = -1.0 if not rising else 1.0
        # the grid is evaluated a stretch of pieces at a time, growing, until enough crossings are found (an
        # edge trigger wants the first, near the start of a burst of hundreds of pieces); each stretch starts
        # with the last point of the one before, so the pairs of neighbouring points are those of the whole
        # grid, and every point is the same value as in one evaluation of it (evaluate works point by point).
        # Of the first limit + 1 pairs that straddle the level, each is placed by bisection in turn; only the
        # first can place its crossing before start_s, so once limit are kept the rest would change nothing
        out: list[float] = []
        placed = 0
        value_at = self._scalar(which, tau_filter_s)
        t_prev = y_prev = None
        lo_piece, count = first, _CROSSING_PIECES
        while lo_piece < k and placed <= limit and len(out) < limit:
            hi_piece = min(lo_piece + count, k)
            t = (self.t0_s[lo_piece:hi_piece, None] + self.dur_s[lo_piece:hi_piece, None] * u[None, :]).ravel()
            t = np.minimum(t, ceiling)
            y = self.evaluate(t, tau_filter_s=tau_filter_s)[which] - level
            if t_prev is not None:
                t, y = np.concatenate(([t_prev], t)), np.concatenate(([y_prev], y))
            for j in np.flatnonzero((sign * y[:-1] <= 0) & (sign * y[1:] > 0) & (t[1:] >= start_s)).tolist():
                lo, hi = float(t[j]), float(t[j + 1])
                for _ in range(40):
                    mid = 0.5 * (lo + hi)
                    if sign * (value_at(mid) - level) > 0:
                        hi = mid
                    else:
                        lo = mid
                placed += 1
                if hi >= start_s:
                    out.append(hi)
                if placed > limit or len(out) == limit:
                    break
            t_prev, y_prev = t[-1], y[-1]
            lo_piece, count = hi_piece, 2 * count
        return np.array(out)

    def _scalar(self, which: int, tau_filter_s: float) -> Callable[[float], float]:
        """``evaluate`` at one instant inside the solved pieces (``0 <= t < resolved_s``) in plain float
        arithmetic, for the bisection of a crossing: the same formulas without an array per call."""
        t0 = self.t0_s.tolist()
        a_all = (self.v_inf if which == 0 else self.i_inf).tolist()
        b_all = (self.v_amp if which == 0 else self.i_amp).tolist()
        inv_all = self.inv_tau.tolist()
        last = len(t0) - 1
        if tau_filter_s > 0:
            y0_all = self._piece_starts(tau_filter_s)[which].tolist()
            inv_f = 1.0 / tau_filter_s

            def filtered(t: float) -> float:
                k = min(max(bisect.bisect_right(t0, t) - 1, 0), last)
                return _filtered_value(t - t0[k], a_all[k], b_all[k], inv_all[k], inv_f, y0_all[k])

            return filtered

        def plain(t: float) -> float:
            k = min(max(bisect.bisect_right(t0, t) - 1, 0), last)
            return a_all[k] + b_all[k] * math.exp(-(t - t0[k]) * inv_all[k])

        return plain

    def first_crossing(self, level: float, *, rising: bool, signal: str, after_s: float,
                       tau_filter_s: float = 0.0, end_s: float | None = None) -> float | None:
        """The first crossing (see :meth:`crossings`) at or after ``after_s``, counting the repeats of the
        last period beyond the solved pieces, before ``end_s``; None if there is none."""
        end = self.duration_s if end_s is None else min(end_s, self.duration_s)
        hit = self.crossings(level, rising=rising, signal=signal, tau_filter_s=tau_filter_s, limit=1,
                             start_s=after_s)
        if hit.size:
            return float(hit[0]) if hit[0] < end else None
        resolved = self.resolved_s
        if self.duration_s <= resolved + 1e-15 or self.period_s <= 0:
            return None
        # the crossings of the last solved period (a long burst may have more than ``limit`` before it)
        last = self.crossings(level, rising=rising, signal=signal, tau_filter_s=tau_filter_s,
                              start_s=resolved - self.period_s) - (resolved - self.period_s)
        if not last.size:
            return None
        # the last period repeats from ``resolved``: the first repeat of one of its crossings after after_s
        k0 = max(math.floor((after_s - resolved) / self.period_s), 0)
        for k in (k0, k0 + 1):
            cand = resolved + k * self.period_s + last
            cand = cand[cand >= after_s]
            if cand.size:
                return float(cand[0]) if cand[0] < end else None
        return None

    def samples(self, per_piece: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, v, i) at ``per_piece`` instants in every piece plus its start: for inspection and tests."""
        frac = np.arange(per_piece, dtype=float) / per_piece
        t = (self.t0_s[:, None] + self.dur_s[:, None] * frac[None, :]).ravel()
        t = np.append(t, self.resolved_s * (1 - 1e-12)) if t.size else t
        v, i = self.evaluate(t)
        return t, v, i


#: exp(x) is 0.0 for every x below this (it is 0.0 from x ≈ −745.13, where the result would be under half the
#: smallest subnormal); costlier than a normal exp there, so those samples are not evaluated
_EXP_ZERO_BELOW = -760.0


def _exp_decay(s: np.ndarray, inv: float, out: np.ndarray) -> np.ndarray:
    """``exp(s·(−inv))`` into ``out`` for times ``s`` in order (``inv >= 0``): the same floats as ``np.exp`` of
    them; where ``s·inv`` is beyond ~745 the result is 0.0, which is written without evaluating ``exp``
    (most of a long piece after a fast edge, where exp of such arguments costs several times more)."""
    np.multiply(s, -inv, out=out)
    # s·(−inv) falls as s grows: from the first s beyond 760/inv on every argument is below −760·(1 − 2⁻⁵²)
    cut = int(np.searchsorted(s, -_EXP_ZERO_BELOW / inv, side="left")) if 0.0 < inv < math.inf else s.size
    np.exp(out[:cut], out=out[:cut])
    out[cut:] = 0.0
    return out


def _filtered_value(s: float, a: float, b: float, inv: float, inv_f: float, y0: float) -> float:
    """One-pole low-pass (``1/inv_f``) of ``a + b·exp(−s·inv)`` starting from ``y0``, at one time ``s``.

    ``y = a + b·c·exp(−s·inv) + (y0 − a − b·c)·exp(−s·inv_f)`` with ``c = inv_f / (inv_f − inv)``; when the
    two time constants coincide the resonant form ``a + b·s·inv_f·exp(−s·inv_f) + (y0 − a)·exp(−s·inv_f)``.
    The array form is :func:`_filter_terms` with :func:`_filtered_from`.
    """
    ef = math.exp(-s * inv_f)
    if abs(inv_f - inv) <= 1e-9 * inv_f:
        return a + b * s * inv_f * ef + (y0 - a) * ef
    c = inv_f / (inv_f - inv)
    return a + b * c * math.exp(-s * inv) + (y0 - a - b * c) * ef


def _filter_terms(s: np.ndarray, inv: np.ndarray, inv_f: float) -> tuple:
    """What :func:`_filtered_value` needs, for arrays, of the times and time constants alone (shared by both
    outputs): ``exp(−s·inv_f)``, ``exp(−s·inv)``, ``c``, where the constants coincide, ``inv_f``, and the times when
    the resonant form is needed."""
    ef = np.exp(-s * inv_f)
    close = np.abs(inv_f - inv) <= 1e-9 * inv_f
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(close, 0.0, inv_f / (inv_f - inv))
        e = np.exp(-s * inv)
    return ef, e, c, close, inv_f, (s if close.any() else None)


def _filtered_from(terms: tuple, a: np.ndarray, b: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """:func:`_filtered_value` for arrays, from its shared terms (see :func:`_filter_terms`)."""
    ef, e, c, close, inv_f, s = terms
    with np.errstate(divide="ignore", invalid="ignore"):
        general = a + b * c * e + (y0 - a - b * c) * ef
        if s is None:
            return general
        resonant = a + b * s * inv_f * ef + (y0 - a) * ef
    return np.where(close, resonant, general)
