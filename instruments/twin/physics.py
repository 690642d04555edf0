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
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

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

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._pores = _PoreState()
        #: multiplier on the skin impedance (``impedance_step``)
        self.impedance_factor = 1.0
        #: 'open' (electrode lifted), 'short' (electrodes shorted) or None
        self.contact_fault: str | None = None
        self.last_delivery: Delivery | None = None
        self.deliveries = 0

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
        """Simulate a voltage burst starting at simulated time ``t0_s`` and keep it for the scope."""
        with self._lock:
            self._recover_to(t0_s)
            gain = self.amplifier_gain if through_amplifier else 1.0
            vmax = self.amplifier_max_V if through_amplifier else math.inf
            src_ohms = self.amplifier_out_ohms if through_amplifier else drive.source_ohms
            high = float(np.clip(drive.high_V * gain, -vmax, vmax))
            low = float(np.clip(drive.low_V * gain, -vmax, vmax))
            phases = [(high, drive.pulse_width_s), (low, drive.period_s - drive.pulse_width_s)]
            dly = self._simulate(phases, drive.pulses, t0_s, source="voltage", src_ohms=src_ohms)
            dly.baseline_V = low
            return dly

    def deliver_current(self, drive: CurrentDrive, t0_s: float) -> Delivery:
        """Simulate a current burst (a source with compliance) starting at ``t0_s``."""
        with self._lock:
            self._recover_to(t0_s)
            phases = [(drive.high_A, drive.high_s), (drive.low_A, drive.period_s - drive.high_s)]
            return self._simulate(phases, drive.cycles, t0_s, source="current",
                                  compliance_V=drive.compliance_V)

    def _simulate(self, phases: list[tuple[float, float]], cycles: int, t0_s: float, *, source: str,
                  src_ohms: float = 0.0, compliance_V: float = math.inf) -> Delivery:
        phases = [(lvl, dur) for lvl, dur in phases if dur > 0]
        period = sum(d for _, d in phases)
        n_sim = min(cycles, self.max_simulated_pulses)
        series, _, cp = self._load_terms()
        skin = cp is not None
        rsh = self.shunt_ohms
        pores = self._pores
        vc = 0.0  # voltage on Cp (stratum corneum)
        times, volts, amps = [], [], []
        t_rel = 0.0
        nseg = self.segments_per_phase
        pts = 8  # samples per segment
        # the first sample of each segment sits just after its start, so level steps stay sharp edges
        frac = np.concatenate(([1e-6], np.arange(1, pts + 1, dtype=float) / pts))
        peak_sc = 0.0
        for _ in range(n_sim):
            for level, dur in phases:
                seg = dur / nseg
                tt = frac * seg
                for _s in range(nseg):
                    rp = self._rp(self._pore_level()) if skin else None
                    v_el, i, vc_end, vsc = self._segment(level, tt, vc, source, src_ohms, series, rsh, rp, cp or 0.0,
                                                         compliance_V)
                    times.append(t_rel + tt)
                    volts.append(v_el)
                    amps.append(i)
                    t_rel += seg
                    vc = vc_end
                    if skin:
                        peak_sc = max(peak_sc, abs(vsc))
                        self._form_pores(abs(vsc), seg)
        # the rest of a long burst is not resolved sample by sample: its pore effect saturates quickly
        if cycles > n_sim and skin and peak_sc > self.skin.threshold_V:
            self._form_pores(peak_sc, (cycles - n_sim) * phases[0][1])
        duration = cycles * period
        pores.t_s = t0_s + duration
        time_s = np.concatenate([[0.0], *times])
        first_v = volts[0][0] if volts else 0.0
        first_i = amps[0][0] if amps else 0.0
        electrode = np.concatenate([[first_v], *volts])
        current = np.concatenate([[first_i], *amps])
        dly = Delivery(t0_s=t0_s, duration_s=duration, time_s=time_s, electrode_V=electrode, current_A=current,
                       period_s=period)
        self.last_delivery = dly
        self.deliveries += 1
        return dly

    def _form_pores(self, v_sc: float, dt: float) -> None:
        s = self.skin
        if v_sc <= s.threshold_V:
            return
        target = min(1.0, (v_sc - s.threshold_V) / (s.full_breakdown_V - s.threshold_V))
        p = self._pores
        if target > p.fast:
            p.fast = target + (p.fast - target) * math.exp(-dt / s.formation_tau_s)
        p.slow = max(p.slow, s.residual_fraction * p.fast)
        if v_sc >= s.strong_pulse_V:
            p.long = max(p.long, p.fast * 0.8)

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
