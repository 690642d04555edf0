"""The one physical model shared by all twin instruments: source → (amplifier) → load with shunt → scope.

The load is either the bench's dummy resistor or electrodes on skin: ``Rs`` in series with the stratum
corneum ``Rp ‖ Cp``. Above about 30 V across the stratum corneum, pores form and ``Rp`` falls by up to three
orders of magnitude within the pulse (Chizmadzhev 1998); between pulses it recovers, partly within seconds,
and only over tens of minutes after pulses of 160 V or more. The current-sense shunt is in series with the
load; the electrode voltage is measured across the load (``Rs`` + stratum corneum).

The circuit is solved in closed form (:mod:`instruments.twin.circuit`) on segments in which the source level
and ``Rp`` are constant; pore formation is integrated segment by segment, so ``Rp`` within a 1 ms pulse changes
in ``segments_per_phase`` steps, while the waveforms within each step are exact at any instant (a scope samples
them at whatever rate it runs, through the amplifier's and its own bandwidth). The first
``max_simulated_pulses`` pulses of a burst are solved; the scope sees later pulses as repeats of the last one
solved. Within a burst, recovery between pulses is neglected (it takes seconds, a burst lasts milliseconds to
seconds).

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
from functools import lru_cache
from typing import Literal

import numpy as np

from instruments.twin.circuit import Waveform, solve_piece
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
    """What the load received during one burst (simulated), as the scope will see it.

    ``waveform`` gives the exact electrode voltage and current at any instant; ``time_s``, ``electrode_V`` and
    ``current_A`` are samples of it (eight per solved segment) for inspection.
    """

    t0_s: float
    duration_s: float
    time_s: np.ndarray
    electrode_V: np.ndarray
    current_A: np.ndarray
    period_s: float = 0.0
    baseline_V: float = 0.0
    waveform: Waveform | None = None
    #: time constant of the band limit between source and load (the HV amplifier's), seconds
    bandwidth_tau_s: float = 0.0

    def end_s(self) -> float:
        """Simulated time at which the burst ends."""
        return self.t0_s + self.duration_s


@dataclass
class _PoreState:
    fast: float = 0.0
    slow: float = 0.0
    long: float = 0.0
    t_s: float = 0.0


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


def _walk_pores(b: _Burst, pores: _PoreState) -> None:
    """The pore state through a voltage burst on skin, as :meth:`BenchModel._walk` integrates it, without its
    waveform: each step's end and peak on ``Cp`` (:func:`~instruments.twin.circuit.voltage_driven_vc`) and the
    pores it forms (:func:`_form_pores`), written out in the same arithmetic in one loop — it runs at every
    burst start, where calling them step by step cost more than the arithmetic."""
    series, _, cp = b.load_terms
    s = b.skin
    nseg = b.segments_per_phase
    n_sim = min(b.cycles, b.max_simulated_pulses)
    r_ext = b.src_ohms + series + b.shunt_ohms
    rp_intact = s.rp_ohms * b.impedance_factor
    drop = -s.max_drop_decades
    threshold, span = s.threshold_V, s.full_breakdown_V - s.threshold_V
    residual, strong = s.residual_fraction, s.strong_pulse_V
    fast, slow, long = pores.fast, pores.slow, pores.long
    exp, isfinite = math.exp, math.isfinite
    vc = 0.0
    peak_sc = 0.0
    # max(a, b) and min(a, b) spelled out as the built-ins decide (b only when b > a, resp. b < a)
    for _ in range(n_sim):
        for level, dur in b.phases:
            seg = dur / nseg
            formation = exp(-seg / s.formation_tau_s)
            done = 0
            while done < nseg:
                f0, s0, l0 = fast, slow, long
                most = s0 if s0 > f0 else f0
                most = l0 if l0 > most else most
                rp = rp_intact * 10.0 ** (drop * most)
                done += 1
                # voltage_driven_vc(level, seg, vc, r_ext, rp, cp)
                tau = cp * (rp * r_ext / (rp + r_ext))
                if not (tau > 0 and isfinite(tau)):
                    vc_end = vc
                    peak = abs(vc)
                else:
                    vinf = level * rp / (rp + r_ext)
                    vc_end = vinf + (vc - vinf) * exp(-seg * (1.0 / tau))
                    a0, a1 = abs(vc), abs(vc_end)
                    peak = a1 if a1 > a0 else a0
                settled = vc_end == vc
                vc = vc_end
                if peak > peak_sc:
                    peak_sc = peak
                # _form_pores(s, pores, peak, seg)
                if not peak <= threshold:
                    target = (peak - threshold) / span
                    target = target if target < 1.0 else 1.0
                    if target > fast:
                        fast = target + (fast - target) * formation
                    kept = residual * fast
                    if kept > slow:
                        slow = kept
                    if peak >= strong:
                        kept = fast * 0.8
                        if kept > long:
                            long = kept
                if settled and (fast, slow, long) == (f0, s0, l0) and done < nseg:
                    # the rest of this phase repeats this step exactly: no change to the pores
                    break
    pores.fast, pores.slow, pores.long = fast, slow, long
    # the rest of a long burst is not solved step by step: its pore effect saturates quickly
    if b.cycles > n_sim and peak_sc > threshold:
        _form_pores(s, pores, peak_sc, (b.cycles - n_sim) * b.phases[0][1])


@lru_cache(maxsize=64)
def _phase_summary(phases: tuple[tuple[float, float], ...]) -> tuple[tuple[tuple[float, float], ...], float, float]:
    """The steps of a burst that last (``dur > 0``), their period and their largest level in magnitude.

    Worked out once per waveform: the delivery loop re-triggers the same bursts hundreds of times.
    """
    kept = tuple((float(lvl), float(dur)) for lvl, dur in phases if dur > 0)
    return kept, sum(d for _, d in kept), max((abs(lvl) for lvl, _ in kept), default=0.0)


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
    #: time constant of the band limit between source and load (an amplifier), seconds
    bandwidth_tau_s: float = 0.0
    #: one period of the phases (their summed durations), seconds
    period_s: float = 0.0
    #: the largest level of the phases in magnitude
    peak_level: float = 0.0

    @property
    def skin_connected(self) -> bool:
        return self.load_terms[2] is not None

    @property
    def duration_s(self) -> float:
        return self.cycles * self.period_s

    def rp_ohms(self, pores: tuple[float, float, float]) -> float:
        return self.skin.rp_ohms * self.impedance_factor * 10.0 ** (-self.skin.max_drop_decades * max(pores))

    def key(self) -> tuple:
        """Everything but the start time; a resistor neither forms pores nor depends on them."""
        skin = (self.skin, self.impedance_factor, self.pores_before) if self.skin_connected else None
        return (self.source, self.phases, self.cycles, self.src_ohms, self.compliance_V, self.baseline_V,
                self.load_terms, skin, self.shunt_ohms, self.segments_per_phase, self.max_simulated_pulses,
                self.bandwidth_tau_s)


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
        #: whose skin the model is (set by the operator that places the electrodes), and the others' skins
        self.skin_owner: object = None
        self.saved_skins: dict[object, tuple[float, float, float, float]] = {}
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

    def skin_state(self) -> tuple[float, float, float, float]:
        """The skin's pore state (fast, slow, long, time), to put back later with :meth:`set_skin_state`."""
        with self._lock:
            p = self._pores
            return (p.fast, p.slow, p.long, p.t_s)

    def set_skin_state(self, state: tuple[float, float, float, float] | None) -> None:
        """Put a saved skin in place (it recovers from its saved time on); None: an intact skin."""
        with self._lock:
            now = self._pores.t_s
            self._pores = _PoreState(t_s=now) if state is None else _PoreState(*state)

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
        phases = ((drive.high_V, drive.pulse_width_s), (drive.low_V, drive.period_s - drive.pulse_width_s))
        self.start_voltage_phases(phases, drive.pulses, t0_s, through_amplifier=through_amplifier,
                                  source_ohms=drive.source_ohms)

    def start_voltage_phases(self, phases: tuple[tuple[float, float], ...], cycles: int, t0_s: float, *,
                             through_amplifier: bool = True, source_ohms: float = 50.0,
                             simulated_periods: int | None = None) -> None:
        """Deliver a burst of ``cycles`` periods, each a sequence of ``(volts, seconds)`` steps at the source.

        An arbitrary waveform played sample-and-hold is such a sequence (equal neighbouring samples merged).
        Through the amplifier each level is multiplied by its gain and clipped at its output limit.
        ``simulated_periods`` caps the periods solved one by one below ``max_simulated_pulses`` (a continuous
        output settles in a few periods; the rest repeats the last).
        """
        with self._lock:
            gain = self.amplifier_gain if through_amplifier else 1.0
            vmax = self.amplifier_max_V if through_amplifier else math.inf
            src_ohms = self.amplifier_out_ohms if through_amplifier else source_ohms
            scaled = tuple((min(max(level * gain, -vmax), vmax), dur) for level, dur in phases)
            tau = (1.0 / (2 * math.pi * self.amplifier_bandwidth_Hz)
                   if through_amplifier and self.amplifier_bandwidth_Hz else 0.0)
            self._start(scaled, cycles, t0_s, source="voltage", src_ohms=src_ohms, compliance_V=math.inf,
                        baseline_V=scaled[-1][0] if scaled else 0.0, bandwidth_tau_s=tau,
                        simulated_periods=simulated_periods)

    def start_current_burst(self, drive: CurrentDrive, t0_s: float) -> None:
        """Deliver a current burst: update the skin's state now, simulate its waveforms only when asked.

        Parameters
        ----------
        drive : CurrentDrive
            The burst (levels, timing, compliance).
        t0_s : float
            Simulated start time.
        """
        phases = ((drive.high_A, drive.high_s), (drive.low_A, drive.period_s - drive.high_s))
        self.start_current_phases(phases, drive.cycles, t0_s, compliance_V=drive.compliance_V)

    def start_current_phases(self, phases: tuple[tuple[float, float], ...], cycles: int, t0_s: float, *,
                             compliance_V: float, counted_as: tuple[float, int, float] | None = None) -> None:
        """Deliver a current burst of ``cycles`` periods, each a sequence of ``(amperes, seconds)`` steps, limited
        by ``compliance_V`` (a sine or a ramp is such a sequence of held steps). ``counted_as`` — (period s,
        periods, first phase s) — is how the ledger counts the burst's pulses when a period of the steps holds
        several of them (an arbitrary waveform)."""
        with self._lock:
            self._start(phases, cycles, t0_s, source="current", src_ohms=0.0, compliance_V=compliance_V,
                        baseline_V=0.0, counted_as=counted_as)

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
            # the skin recovers from where the output stopped, not from the end the burst would have had
            self._pores.t_s = min(self._pores.t_s, t_s)
            return True

    def last_burst_start_s(self) -> float | None:
        """Simulated start time of the last burst delivered (no simulation needed), or None."""
        with self._lock:
            return None if self._last is None else self._last.t0_s

    # ---- bursts: bookkeeping now, waveforms on demand
    def _start(self, phases: tuple[tuple[float, float], ...], cycles: int, t0_s: float, *, source: str,
               src_ohms: float, compliance_V: float, baseline_V: float, bandwidth_tau_s: float = 0.0,
               simulated_periods: int | None = None,
               counted_as: tuple[float, int, float] | None = None) -> None:
        self._recover_to(t0_s)
        load_terms = self._load_terms()
        p = self._pores
        kept, period, peak = _phase_summary(tuple(phases))
        burst = _Burst(
            t0_s=t0_s, source=source, phases=kept, period_s=period, peak_level=peak,
            cycles=int(cycles), src_ohms=src_ohms, compliance_V=compliance_V, baseline_V=baseline_V,
            load_terms=load_terms, skin=self.skin, impedance_factor=self.impedance_factor,
            shunt_ohms=self.shunt_ohms, segments_per_phase=self.segments_per_phase,
            max_simulated_pulses=min(self.max_simulated_pulses, simulated_periods or self.max_simulated_pulses),
            pores_before=(p.fast, p.slow, p.long),
            bandwidth_tau_s=bandwidth_tau_s,
        )
        self._last = burst
        self._cut_at_s = None
        self._last_delivery = None
        self.deliveries += 1
        if counted_as is None:
            counted_as = (period, burst.cycles, burst.phases[0][1] if burst.phases else 0.0)
        self.ledger.start(source, t0_s, period_s=counted_as[0], cycles=counted_as[1], first_phase_s=counted_as[2],
                          load=self.load)
        if burst.skin_connected and not self._below_threshold(burst):
            self._walk(burst, p, keep=False)
        p.t_s = t0_s + burst.duration_s

    def _below_threshold(self, b: _Burst) -> bool:
        """True when no part of the burst can push the stratum corneum above the electroporation threshold.

        Starting from rest, the voltage on ``Cp`` moves within each constant-level step towards that step's
        final value, so it never exceeds the largest final value in magnitude; ``Rp`` only falls when pores
        form, so the bound computed with the present ``Rp`` holds for the whole burst.
        """
        rp = b.rp_ohms(b.pores_before)
        series = b.load_terms[0]
        peak = b.peak_level
        if b.source == "voltage":
            bound = peak * rp / (rp + b.src_ohms + series + b.shunt_ohms)
        elif peak * (rp + series + b.shunt_ohms) <= b.compliance_V:
            bound = peak * rp
        else:
            return False
        return bound <= b.skin.threshold_V

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

    @staticmethod
    def _walk(b: _Burst, pores: _PoreState, *, keep: bool) -> list:
        """Solve a burst segment by segment, integrating the pore state ``pores`` through it.

        Each of the ``segments_per_phase`` steps of a phase holds ``Rp`` constant and is solved exactly; pores
        form from the largest stratum-corneum voltage of the step. When a step ends where it started and
        changed no pore state, the rest of the phase repeats it exactly and is one piece (or skipped, when
        only the pore state is wanted: ``keep=False``). Returns the pieces (empty when not kept).
        """
        series, _, cp = b.load_terms
        skin = cp is not None
        if not keep and skin and b.source == "voltage" and math.isfinite(series):
            # only the pore state wanted from a voltage source on skin (every burst start)
            _walk_pores(b, pores)
            return []
        nseg = b.segments_per_phase
        n_sim = min(b.cycles, b.max_simulated_pulses)
        vc = 0.0
        peak_sc = 0.0
        pieces: list = []
        for _ in range(n_sim):
            for level, dur in b.phases:
                seg = dur / nseg
                done = 0
                while done < nseg:
                    before = (pores.fast, pores.slow, pores.long)
                    rp = b.rp_ohms(before) if skin else None
                    done += 1
                    step = solve_piece(level, seg, vc, source=b.source, src_ohms=b.src_ohms, series=series,
                                       shunt_ohms=b.shunt_ohms, rp=rp, cp=cp, compliance_V=b.compliance_V)
                    vc_end, peak = step[-1].vc_end, max(p.vc_peak for p in step)
                    settled = vc_end == vc
                    vc = vc_end
                    if skin:
                        peak_sc = max(peak_sc, peak)
                        _form_pores(b.skin, pores, peak, seg)
                    if keep:
                        pieces.extend(step)
                    if settled and (pores.fast, pores.slow, pores.long) == before and done < nseg:
                        # the rest of this phase repeats this step exactly: one piece, no change to the pores
                        if keep:
                            last = step[-1]
                            pieces.append(replace(last, dur_s=(nseg - done) * seg))
                        break
        # the rest of a long burst is not solved step by step: its pore effect saturates quickly
        if b.cycles > n_sim and skin and peak_sc > b.skin.threshold_V:
            _form_pores(b.skin, pores, peak_sc, (b.cycles - n_sim) * b.phases[0][1])
        return pieces

    def _simulate_samples(self, b: _Burst, pores: _PoreState) -> Delivery:
        """Solve a burst from ``pores`` (integrated through it) into its exact waveform."""
        period = b.period_s
        pieces = self._walk(b, pores, keep=True)
        wave = Waveform.from_pieces(pieces, duration_s=b.duration_s, period_s=period)
        t, v, i = wave.samples()
        return Delivery(t0_s=b.t0_s, duration_s=b.duration_s, time_s=t, electrode_V=v, current_A=i,
                        period_s=period, baseline_V=b.baseline_V, waveform=wave, bandwidth_tau_s=b.bandwidth_tau_s)

    def _filter_tau(self, dly: Delivery, scope_bandwidth_Hz: float) -> float:
        tau_scope = 1.0 / (2 * math.pi * scope_bandwidth_Hz) if scope_bandwidth_Hz > 0 else 0.0
        return math.hypot(dly.bandwidth_tau_s, tau_scope)

    def first_crossing(self, after_s: float, level: float, *, rising: bool, signal: str,
                       scope_bandwidth_Hz: float = 0.0) -> float | None:
        """Simulated time at which the last burst's ``signal`` (``'electrode'`` volts or ``'current'``
        amperes) first crosses ``level`` in the given direction at or after ``after_s``; None if never.

        This is what an edge trigger sees; a burst that started before ``after_s`` counts from there.
        """
        with self._lock:
            if self._last is None or self._last.t0_s + self._last.duration_s < after_s:
                return None
            dly = self.last_delivery
            cut = self._cut_at_s
        if dly is None or dly.waveform is None:
            return None
        end = None if cut is None else cut - dly.t0_s
        rel = dly.waveform.first_crossing(level, rising=rising, signal=signal, after_s=after_s - dly.t0_s,
                                          tau_filter_s=self._filter_tau(dly, scope_bandwidth_Hz), end_s=end)
        return None if rel is None else dly.t0_s + rel

    def render(self, t_abs_s: np.ndarray, *, scope_bandwidth_Hz: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Electrode voltage and current at absolute simulated times, exactly (zero outside the last burst).

        Parameters
        ----------
        t_abs_s : ndarray
            Simulated times.
        scope_bandwidth_Hz : float
            The observing scope's analogue bandwidth (0: unlimited); combined with the amplifier's, as
            rise times add in quadrature, into one pole.
        """
        with self._lock:
            dly = self.last_delivery
            cut = self._cut_at_s
        t_abs_s = np.asarray(t_abs_s, dtype=float)
        if dly is None or dly.waveform is None:
            z = np.zeros_like(t_abs_s)
            return z, z.copy()
        end = None if cut is None else cut - dly.t0_s
        return dly.waveform.evaluate(t_abs_s - dly.t0_s, tau_filter_s=self._filter_tau(dly, scope_bandwidth_Hz),
                                     end_s=end)
