"""The one physical model shared by all twin instruments: source → (amplifier) → load with shunt → scope.

The load is either the bench's dummy resistor or electrodes on skin: ``Rs`` in series with the stratum
corneum ``Rp ‖ Cp``. Above about 30 V across the stratum corneum, pores form and ``Rp`` falls by up to three
orders of magnitude within the pulse (Chizmadzhev 1998); between pulses it recovers, partly within seconds,
and only over tens of minutes after pulses of 160 V or more. The current-sense shunt is in series with the
load; the electrode voltage is measured across the load (``Rs`` + stratum corneum).

The circuit is solved in closed form on short segments in which the source level and ``Rp`` are constant
(a first-order RC circuit), vectorised with numpy inside each segment; pore formation is integrated segment
by segment, so a 1 ms pulse is resolved in ``segments_per_phase`` steps. The first ``max_simulated_pulses``
pulses of a burst are simulated; the scope sees later pulses as repeats of the last one simulated. Within a
burst, recovery between pulses is neglected (it takes seconds, a burst lasts milliseconds to seconds).

A session re-triggers the same burst hundreds of times and the scope looks at few of them, so a burst is
simulated lazily: when it starts, only what later bursts depend on is updated — the pore state, integrated
with scalars through the same steps as the sampled path, or left as it is when the burst cannot reach the
electroporation threshold. The waveforms are simulated only when somebody looks at them (the scope), from the
state recorded at the burst's start, and kept in a bounded cache under everything they depend on, so a
repeated burst costs a dictionary look-up.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from instruments.twin.ledger import DeliveryLedger

__all__ = ["BenchModel", "Delivery", "SkinParameters", "VoltageDrive", "CurrentDrive"]


@dataclass(frozen=True)
class SkinParameters:
    """Electrode–skin model for one pair of electrodes (defaults fit ≈130 kΩ at 1 Hz, ≈30 kΩ at 1 kHz).

    Attributes
    ----------
    rs_ohms : float
        Series resistance (electrodes, gel, deep tissue).
    rp_ohms : float
        Intact stratum corneum resistance.
    cp_F : float
        Stratum corneum capacitance.
    threshold_V : float
        Voltage across the stratum corneum above which pores form.
    full_breakdown_V : float
        Voltage at which the resistance drop reaches its maximum.
    max_drop_decades : float
        Largest fall of ``Rp`` in decades (3 = a thousandfold).
    formation_tau_s : float
        Time constant of pore formation within a pulse.
    fast_recovery_tau_s, slow_recovery_tau_s, long_recovery_tau_s : float
        Recovery time constants: the fast part (seconds), the residual part, and the part left by strong
        pulses (≥ ``strong_pulse_V``), which takes tens of minutes.
    residual_fraction : float
        Fraction of the pore state that recovers only with ``slow_recovery_tau_s``.
    strong_pulse_V : float
        Voltage across the stratum corneum above which recovery becomes long.
    """

    rs_ohms: float = 500.0
    rp_ohms: float = 130e3
    cp_F: float = 5.2e-9
    threshold_V: float = 30.0
    full_breakdown_V: float = 150.0
    max_drop_decades: float = 3.0
    formation_tau_s: float = 300e-6
    fast_recovery_tau_s: float = 1.0
    slow_recovery_tau_s: float = 60.0
    long_recovery_tau_s: float = 1800.0
    residual_fraction: float = 0.3
    strong_pulse_V: float = 160.0

    def impedance_ohms(self, frequency_Hz: float) -> float:
        """Magnitude of the intact electrode–skin impedance ``|Rs + Rp ‖ Cp|`` at a frequency."""
        w = 2 * math.pi * frequency_Hz
        z = self.rs_ohms + self.rp_ohms / complex(1.0, w * self.rp_ohms * self.cp_F)
        return abs(z)


@dataclass(frozen=True)
class VoltageDrive:
    """A burst of rectangular voltage pulses at the generator's terminals (open-circuit EMF)."""

    high_V: float
    low_V: float
    pulse_width_s: float
    period_s: float
    pulses: int
    source_ohms: float = 50.0


@dataclass(frozen=True)
class CurrentDrive:
    """A burst of current: levels ``high_A`` for ``high_s`` then ``low_A`` for the rest of each period."""

    high_A: float
    low_A: float
    high_s: float
    period_s: float
    cycles: int
    compliance_V: float


@dataclass
class Delivery:
    """What the load received during one burst (simulated), as the scope will see it."""

    t0_s: float
    duration_s: float
    time_s: np.ndarray
    electrode_V: np.ndarray
    current_A: np.ndarray
    period_s: float = 0.0
    baseline_V: float = 0.0

    def end_s(self) -> float:
        """Simulated time at which the burst ends."""
        return self.t0_s + self.duration_s


@dataclass
class _PoreState:
    fast: float = 0.0
    slow: float = 0.0
    long: float = 0.0
    t_s: float = 0.0


#: where the first sample of a segment sits, as a fraction of the segment (just after its start)
_FIRST_SAMPLE = 1e-6


def _form_pores(s: SkinParameters, p: _PoreState, v_sc: float, dt: float) -> None:
    """Advance the pore state ``p`` by ``dt`` seconds at ``v_sc`` volts across the stratum corneum."""
    if v_sc <= s.threshold_V:
        return
    target = min(1.0, (v_sc - s.threshold_V) / (s.full_breakdown_V - s.threshold_V))
    if target > p.fast:
        p.fast = target + (p.fast - target) * math.exp(-dt / s.formation_tau_s)
    p.slow = max(p.slow, s.residual_fraction * p.fast)
    if v_sc >= s.strong_pulse_V:
        p.long = max(p.long, p.fast * 0.8)


@dataclass(frozen=True)
class _Burst:
    """One delivered burst as recorded when it started: everything its waveforms depend on."""

    t0_s: float
    source: str
    phases: tuple[tuple[float, float], ...]
    cycles: int
    src_ohms: float
    compliance_V: float
    baseline_V: float
    load_terms: tuple[float, float | None, float | None]
    skin: SkinParameters
    impedance_factor: float
    shunt_ohms: float
    segments_per_phase: int
    max_simulated_pulses: int
    pores_before: tuple[float, float, float]

    @property
    def skin_connected(self) -> bool:
        return self.load_terms[2] is not None

    @property
    def duration_s(self) -> float:
        return self.cycles * sum(d for _, d in self.phases)

    def rp_ohms(self, pores: tuple[float, float, float]) -> float:
        return self.skin.rp_ohms * self.impedance_factor * 10.0 ** (-self.skin.max_drop_decades * max(pores))

    def key(self) -> tuple:
        """Everything but the start time; a resistor neither forms pores nor depends on them."""
        skin = (self.skin, self.impedance_factor, self.pores_before) if self.skin_connected else None
        return (self.source, self.phases, self.cycles, self.src_ohms, self.compliance_V, self.baseline_V,
                self.load_terms, skin, self.shunt_ohms, self.segments_per_phase, self.max_simulated_pulses)


@dataclass
class BenchModel:
    """Physics of the twin bench, shared by the generator, current source and scope.

    Attributes
    ----------
    load : {'dummy', 'skin'}
        What is connected: the dummy resistor, or electrodes on skin.
    skin : SkinParameters
        Electrode–skin parameters.
    dummy_load_ohms : float
        Dummy load resistance.
    amplifier_gain : float
        HV amplifier gain between generator channel 1 and the load (1 = no amplifier).
    amplifier_max_V : float
        Clipping level of the amplifier output.
    amplifier_out_ohms : float
        Amplifier output resistance.
    shunt_ohms : float
        Current-sense shunt.
    probe_attenuation : dict
        Physical probe ratio per scope channel.
    """

    load: Literal["dummy", "skin"] = "dummy"
    skin: SkinParameters = field(default_factory=SkinParameters)
    dummy_load_ohms: float = 1000.0
    amplifier_gain: float = 20.0
    amplifier_max_V: float = 400.0
    amplifier_out_ohms: float = 5.0
    amplifier_bandwidth_Hz: float = 200e3
    shunt_ohms: float = 10.0
    probe_attenuation: dict[int, float] = field(default_factory=lambda: {1: 10.0, 2: 1.0, 3: 1.0, 4: 1.0})
    segments_per_phase: int = 12
    max_simulated_pulses: int = 100
    burst_cache_size: int = 64

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._pores = _PoreState()
        #: multiplier on the skin impedance (``impedance_step``)
        self.impedance_factor = 1.0
        #: 'open' (electrode lifted), 'short' (electrodes shorted) or None
        self.contact_fault: str | None = None
        #: bursts delivered so far
        self.deliveries = 0
        #: bursts whose waveforms were simulated sample by sample, and those served from the cache
        self.bursts_simulated = 0
        self.bursts_cached = 0
        self._last: _Burst | None = None
        #: simulated time at which the last burst was cut short (output off, abort), or None
        self._cut_at_s: float | None = None
        #: what the outputs truly delivered, burst by burst
        self.ledger = DeliveryLedger()
        self._last_delivery: Delivery | None = None
        self._burst_cache: OrderedDict[tuple, Delivery] = OrderedDict()

    # ---- state
    def set_load(self, load: str) -> None:
        """Switch between the dummy resistor (``'dummy'``) and electrodes on skin (``'skin'``)."""
        if load not in ("dummy", "skin"):
            raise ValueError(f"load must be 'dummy' or 'skin', got {load!r}")
        with self._lock:
            self.load = load  # type: ignore[assignment]

    def set_skin(self, **params: float) -> None:
        """Replace skin parameters by name (see :class:`SkinParameters`)."""
        with self._lock:
            self.skin = replace(self.skin, **params)

    def pore_fraction(self, t_s: float) -> float:
        """Pore state in [0, 1] at simulated time ``t_s`` (0 intact, 1 full breakdown)."""
        with self._lock:
            self._recover_to(t_s)
            return self._pore_level()

    def skin_rp_ohms(self, t_s: float) -> float:
        """Current stratum-corneum resistance at simulated time ``t_s``."""
        return self._rp(self.pore_fraction(t_s))

    def reset_pores(self) -> None:
        """Return the skin to its intact state."""
        with self._lock:
            self._pores = _PoreState(t_s=self._pores.t_s)

    def _pore_level(self) -> float:
        p = self._pores
        return max(p.fast, p.slow, p.long)

    def _rp(self, pore: float) -> float:
        return self.skin.rp_ohms * self.impedance_factor * 10.0 ** (-self.skin.max_drop_decades * pore)

    def _recover_to(self, t_s: float) -> None:
        p = self._pores
        dt = t_s - p.t_s
        if dt <= 0:
            return
        s = self.skin
        p.fast *= math.exp(-dt / s.fast_recovery_tau_s)
        p.slow *= math.exp(-dt / s.slow_recovery_tau_s)
        p.long *= math.exp(-dt / s.long_recovery_tau_s)
        p.t_s = t_s

    # ---- circuit
    def _load_terms(self) -> tuple[float, float | None, float | None]:
        """(series ohms of the load, Rp or None, Cp or None) for the connected load."""
        if self.contact_fault == "open":
            return math.inf, None, None
        if self.contact_fault == "short":
            return 0.0, None, None
        if self.load == "dummy":
            return self.dummy_load_ohms, None, None
        return self.skin.rs_ohms * self.impedance_factor, None, self.skin.cp_F

    def deliver_voltage(self, drive: VoltageDrive, t0_s: float, *, through_amplifier: bool = True) -> Delivery:
        """Deliver a voltage burst starting at simulated time ``t0_s`` and return its simulated waveforms."""
        with self._lock:
            self.start_voltage_burst(drive, t0_s, through_amplifier=through_amplifier)
            return self._materialize()

    def deliver_current(self, drive: CurrentDrive, t0_s: float) -> Delivery:
        """Deliver a current burst (a source with compliance) starting at ``t0_s``; return its waveforms."""
        with self._lock:
            self.start_current_burst(drive, t0_s)
            return self._materialize()

    def start_voltage_burst(self, drive: VoltageDrive, t0_s: float, *, through_amplifier: bool = True) -> None:
        """Deliver a voltage burst: update the skin's state now, simulate its waveforms only when asked.

        Parameters
        ----------
        drive : VoltageDrive
            The burst at the source's terminals.
        t0_s : float
            Simulated start time.
        through_amplifier : bool
            Whether the source feeds the load through the bench amplifier (gain, clipping, output resistance).
        """
        with self._lock:
            gain = self.amplifier_gain if through_amplifier else 1.0
            vmax = self.amplifier_max_V if through_amplifier else math.inf
            src_ohms = self.amplifier_out_ohms if through_amplifier else drive.source_ohms
            high = min(max(drive.high_V * gain, -vmax), vmax)
            low = min(max(drive.low_V * gain, -vmax), vmax)
            phases = ((high, drive.pulse_width_s), (low, drive.period_s - drive.pulse_width_s))
            self._start(phases, drive.pulses, t0_s, source="voltage", src_ohms=src_ohms, compliance_V=math.inf,
                        baseline_V=low)

    def start_current_burst(self, drive: CurrentDrive, t0_s: float) -> None:
        """Deliver a current burst: update the skin's state now, simulate its waveforms only when asked.

        Parameters
        ----------
        drive : CurrentDrive
            The burst (levels, timing, compliance).
        t0_s : float
            Simulated start time.
        """
        with self._lock:
            phases = ((drive.high_A, drive.high_s), (drive.low_A, drive.period_s - drive.high_s))
            self._start(phases, drive.cycles, t0_s, source="current", src_ohms=0.0,
                        compliance_V=drive.compliance_V, baseline_V=0.0)

    @property
    def last_delivery(self) -> Delivery | None:
        """Waveforms of the last burst delivered (simulated on first access), or None."""
        with self._lock:
            return self._materialize() if self._last is not None else None

    def cut(self, t_s: float) -> bool:
        """Stop the burst being delivered at simulated time ``t_s`` (output off, abort); True if one ran."""
        with self._lock:
            if not self.ledger.cut(t_s):
                return False
            self._cut_at_s = t_s
            return True

    def last_burst_start_s(self) -> float | None:
        """Simulated start time of the last burst delivered (no simulation needed), or None."""
        with self._lock:
            return None if self._last is None else self._last.t0_s

    # ---- bursts: bookkeeping now, waveforms on demand
    def _start(self, phases: tuple[tuple[float, float], ...], cycles: int, t0_s: float, *, source: str,
               src_ohms: float, compliance_V: float, baseline_V: float) -> None:
        self._recover_to(t0_s)
        load_terms = self._load_terms()
        p = self._pores
        burst = _Burst(
            t0_s=t0_s, source=source, phases=tuple((lvl, dur) for lvl, dur in phases if dur > 0),
            cycles=int(cycles), src_ohms=src_ohms, compliance_V=compliance_V, baseline_V=baseline_V,
            load_terms=load_terms, skin=self.skin, impedance_factor=self.impedance_factor,
            shunt_ohms=self.shunt_ohms, segments_per_phase=self.segments_per_phase,
            max_simulated_pulses=self.max_simulated_pulses, pores_before=(p.fast, p.slow, p.long),
        )
        self._last = burst
        self._cut_at_s = None
        self._last_delivery = None
        self.deliveries += 1
        self.ledger.start(source, t0_s, period_s=sum(d for _, d in burst.phases), cycles=burst.cycles,
                          first_phase_s=burst.phases[0][1] if burst.phases else 0.0,
                          load=self.load)
        if (burst.skin_connected and not self._below_threshold(burst)
                and not self._form_pores_fast(burst, p)):
                # a current source reaching its compliance on skin: the exact sample-by-sample path
                self._last_delivery = self._simulate_samples(burst, p)
        p.t_s = t0_s + burst.duration_s

    def _below_threshold(self, b: _Burst) -> bool:
        """True when no part of the burst can push the stratum corneum above the electroporation threshold.

        Starting from rest, the voltage on ``Cp`` moves within each constant-level step towards that step's
        final value, so it never exceeds the largest final value in magnitude; ``Rp`` only falls when pores
        form, so the bound computed with the present ``Rp`` holds for the whole burst.
        """
        rp = b.rp_ohms(b.pores_before)
        series = b.load_terms[0]
        peak = max((abs(lvl) for lvl, _ in b.phases), default=0.0)
        if b.source == "voltage":
            bound = peak * rp / (rp + b.src_ohms + series + b.shunt_ohms)
        elif peak * (rp + series + b.shunt_ohms) <= b.compliance_V:
            bound = peak * rp
        else:
            return False
        return bound <= b.skin.threshold_V

    def _form_pores_fast(self, b: _Burst, p: _PoreState) -> bool:
        """Integrate the pore state through the burst with scalars only (the same steps as the sampled path).

        Returns False, leaving ``p`` untouched, for a current source that reaches its compliance, whose
        limited segments are not monotonic in general.
        """
        series, _, cp = b.load_terms
        assert cp is not None  # only called for skin
        rsh = b.shunt_ohms
        nseg = b.segments_per_phase
        work = _PoreState(*b.pores_before, t_s=p.t_s)
        vc = 0.0
        peak_sc = 0.0
        for _ in range(min(b.cycles, b.max_simulated_pulses)):
            for level, dur in b.phases:
                seg = dur / nseg
                t_first = _FIRST_SAMPLE * seg
                for _s in range(nseg):
                    before = (work.fast, work.slow, work.long)
                    rp = b.rp_ohms(before)
                    if b.source == "voltage":
                        r_ext = b.src_ohms + series + rsh
                        tau = cp * (rp * r_ext / (rp + r_ext))
                        vinf = level * rp / (rp + r_ext)
                    else:
                        r_ext = series + rsh
                        tau = rp * cp
                        vinf = level * rp
                    v_first = vinf + (vc - vinf) * math.exp(-t_first / tau)
                    v_end = vinf + (vc - vinf) * math.exp(-seg / tau)
                    if b.source == "current" and max(abs(level * r_ext + v_first),
                                                     abs(level * r_ext + v_end)) > b.compliance_V:
                        return False
                    settled = v_end == vc
                    vc = v_end
                    vsc = max(abs(v_first), abs(v_end))  # an exponential step peaks at one of its ends
                    peak_sc = max(peak_sc, vsc)
                    _form_pores(b.skin, work, vsc, seg)
                    if settled and (work.fast, work.slow, work.long) == before:
                        break  # the rest of this step would repeat this segment exactly: nothing changes
        if b.cycles > b.max_simulated_pulses and peak_sc > b.skin.threshold_V:
            _form_pores(b.skin, work, peak_sc, (b.cycles - b.max_simulated_pulses) * b.phases[0][1])
        p.fast, p.slow, p.long = work.fast, work.slow, work.long
        return True

    def _materialize(self) -> Delivery:
        """Waveforms of the last burst: from the cache, or simulated sample by sample from its recorded start."""
        b = self._last
        if b is None:
            raise RuntimeError("no burst has been delivered")
        if self._last_delivery is not None:
            return self._last_delivery
        key = b.key()
        hit = self._burst_cache.get(key)
        if hit is None:
            dly = self._simulate_samples(b, _PoreState(*b.pores_before))
            for arr in (dly.time_s, dly.electrode_V, dly.current_A):
                arr.setflags(write=False)  # shared by every replay of this burst
            self._burst_cache[key] = dly
            while len(self._burst_cache) > max(self.burst_cache_size, 1):
                self._burst_cache.popitem(last=False)
            self.bursts_simulated += 1
        else:
            self._burst_cache.move_to_end(key)
            self.bursts_cached += 1
            dly = replace(hit, t0_s=b.t0_s)
        self._last_delivery = dly
        return dly

    def _simulate_samples(self, b: _Burst, pores: _PoreState) -> Delivery:
        """Simulate a burst sample by sample, integrating the pore state ``pores`` through it."""
        phases = b.phases
        period = sum(d for _, d in phases)
        n_sim = min(b.cycles, b.max_simulated_pulses)
        series, _, cp = b.load_terms
        skin = cp is not None
        rsh = b.shunt_ohms
        vc = 0.0  # voltage on Cp (stratum corneum)
        times, volts, amps = [], [], []
        t_rel = 0.0
        nseg = b.segments_per_phase
        pts = 8  # samples per segment
        # the first sample of each segment sits just after its start, so level steps stay sharp edges
        frac = np.concatenate(([_FIRST_SAMPLE], np.arange(1, pts + 1, dtype=float) / pts))
        peak_sc = 0.0
        for _ in range(n_sim):
            for level, dur in phases:
                seg = dur / nseg
                tt = frac * seg
                for _s in range(nseg):
                    rp = b.rp_ohms((pores.fast, pores.slow, pores.long)) if skin else None
                    v_el, i, vc_end, vsc = self._segment(level, tt, vc, b.source, b.src_ohms, series, rsh, rp,
                                                         cp or 0.0, b.compliance_V)
                    times.append(t_rel + tt)
                    volts.append(v_el)
                    amps.append(i)
                    t_rel += seg
                    vc = vc_end
                    if skin:
                        peak_sc = max(peak_sc, abs(vsc))
                        _form_pores(b.skin, pores, abs(vsc), seg)
        # the rest of a long burst is not resolved sample by sample: its pore effect saturates quickly
        if b.cycles > n_sim and skin and peak_sc > b.skin.threshold_V:
            _form_pores(b.skin, pores, peak_sc, (b.cycles - n_sim) * phases[0][1])
        time_s = np.concatenate([[0.0], *times])
        first_v = volts[0][0] if volts else 0.0
        first_i = amps[0][0] if amps else 0.0
        electrode = np.concatenate([[first_v], *volts])
        current = np.concatenate([[first_i], *amps])
        return Delivery(t0_s=b.t0_s, duration_s=b.duration_s, time_s=time_s, electrode_V=electrode,
                        current_A=current, period_s=period, baseline_V=b.baseline_V)

    @staticmethod
    def _segment(level: float, tt: np.ndarray, vc0: float, source: str, src_ohms: float, series: float,
                 rsh: float, rp: float | None, cp: float, compliance_V: float
                 ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """One constant-level segment; returns electrode volts, current, end Cp voltage, peak Cp voltage."""
        if math.isinf(series):  # open circuit: no current, the electrode sees the open-circuit source
            if source == "voltage":
                v = np.full_like(tt, level)
            else:
                v = np.full_like(tt, math.copysign(compliance_V, level) if level else 0.0)
            return v, np.zeros_like(tt), vc0, 0.0
        if source == "current":
            r_ext = series + rsh
            if rp is None:  # resistive load
                i_val = level
                if abs(level) * r_ext > compliance_V:
                    i_val = math.copysign(compliance_V / r_ext, level) if r_ext else level
                i = np.full_like(tt, i_val)
                return i * series, i, vc0, 0.0
            vinf = level * rp
            vc = vinf + (vc0 - vinf) * np.exp(-tt / (rp * cp))
            i = np.full_like(tt, level)
            if np.any(np.abs(i * r_ext + vc) > compliance_V):
                # at compliance the source holds ±compliance_V; the current never exceeds its setpoint
                v_src = math.copysign(compliance_V, level) if level else 0.0
                r_par = rp * r_ext / (rp + r_ext)
                vinf_v = v_src * rp / (rp + r_ext)
                vc_v = vinf_v + (vc0 - vinf_v) * np.exp(-tt / (cp * r_par))
                i_v = (v_src - vc_v) / r_ext
                limited = np.abs(i_v) <= abs(level)
                i = np.where(limited, i_v, i)
                vc = np.where(limited, vc_v, vc)
            v_el = i * series + vc
            return v_el, i, float(vc[-1]), float(np.max(np.abs(vc)))
        # voltage source with output resistance
        if rp is None:
            r_tot = src_ohms + series + rsh
            i = np.full_like(tt, level / r_tot if r_tot else 0.0)
            return i * series, i, vc0, 0.0
        assert cp is not None
        r_ext = src_ohms + series + rsh
        r_par = rp * r_ext / (rp + r_ext)
        tau = cp * r_par
        vinf = level * rp / (rp + r_ext)
        vc = vinf + (vc0 - vinf) * np.exp(-tt / tau)
        i = (level - vc) / r_ext
        v_el = i * series + vc
        return v_el, i, float(vc[-1]), float(np.max(np.abs(vc)))

    def render(self, t_abs_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Electrode voltage and current at absolute simulated times (zero outside the last burst)."""
        with self._lock:
            dly = self.last_delivery
        if dly is None:
            z = np.zeros_like(t_abs_s)
            return z, z.copy()
        rel = t_abs_s - dly.t0_s
        v = np.interp(rel, dly.time_s, dly.electrode_V, left=0.0, right=0.0)
        i = np.interp(rel, dly.time_s, dly.current_A, left=0.0, right=0.0)
        inside = (rel >= 0) & (rel <= dly.duration_s)
        cut = self._cut_at_s
        if cut is not None:
            after = rel > cut - dly.t0_s
            v[after] = 0.0
            i[after] = 0.0
            inside &= ~after
        # beyond what was resolved sample by sample, a long burst repeats its last period
        last_t = dly.time_s[-1]
        if dly.duration_s > last_t:
            per_mask = inside & (rel > last_t)
            if per_mask.any():
                period = dly.period_s
                folded = last_t - period + np.mod(rel[per_mask] - last_t, period)
                v[per_mask] = np.interp(folded, dly.time_s, dly.electrode_V)
                i[per_mask] = np.interp(folded, dly.time_s, dly.current_A)
        return v, i
