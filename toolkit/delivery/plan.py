"""From a prescription to instrument settings: what each burst is and what the scope should see.

A :class:`TreatmentPlan` is built once per treatment, before anything is sent: the prescription (already
inside the study's safety envelope) is mapped onto the bench — the current source for microcurrent, the
generator through the amplifier's gain for electroporation — and split into finite, re-triggered bursts of
at most ``max_burst_interval_s`` so a dead host stops stimulation within one burst. Anything the bench
cannot deliver exactly as prescribed is refused here with a :class:`~toolkit.errors.ConfigurationError`
naming the prescription field and the bench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.views import Need, edge_need, fit_view, per_pulse_need, scope_timebase
from toolkit.errors import ConfigurationError

__all__ = ["ExpectedSignal", "TreatmentPlan", "make_plan", "scope_timebase"]

#: stimulator waveform for each microcurrent waveform of the study model
_MC_WAVEFORMS = {"galvanic": "dc", "faradic": "square", "biphasic": "biphasic"}


@dataclass(frozen=True)
class ExpectedSignal:
    """What a capture must show for the output to count as delivered as prescribed.

    ``current_on_A`` is the current level while a pulse or phase is on (MC: the prescribed current; EP: the
    level the dummy load implies), ``voltage_on_V`` the electrode voltage while on (EP only).
    ``pulse_width_s`` / ``frequency_Hz`` are checked when set.
    """

    current_on_A: float | None = None
    voltage_on_V: float | None = None
    pulse_width_s: float | None = None
    frequency_Hz: float | None = None


@dataclass(frozen=True)
class TreatmentPlan:
    """One treatment (one arm on one side) mapped onto the bench.

    Attributes
    ----------
    modality : {'microcurrent', 'electroporation', 'sham'}
    arm_id, side : str
        Arm of the study and treated side (``None`` in a parallel design).
    role : {'stimulator', 'current_source'} or None
        Which instrument of the bench delivers (``None`` for sham: nothing does).
    channel : int
        Output channel of that instrument.
    duration_s : float
        Prescribed delivery time, ramps included.
    ramp_up_s, ramp_down_s : float
        Ramp times (microcurrent).
    trigger_interval_s : float
        Time from one burst's trigger to the next.
    burst_on_s : float
        How long one burst delivers (≤ the trigger interval).
    pulses_per_burst : int
        EP pulses, or MC waveform cycles, in one burst.
    flip_every_bursts : int or None
        Microcurrent polarity alternation: the sign flips every this many bursts.
    settings : dict
        The instrument call (``configure_current`` / ``configure_pulse_train``) keyword arguments at full
        amplitude, in SI units, as recorded.
    expected_dummy, expected_live : ExpectedSignal
        What the dummy-load verification and the live captures must show.
    scope : dict
        Oscilloscope views: ``live_window_s`` and ``dummy_window_s`` (time after the trigger to show),
        ``train_window_s`` (EP: several pulses, for the pulse rate), ``electrode_V`` and ``current_A`` ranges.
    """

    modality: str
    arm_id: str
    side: str | None
    role: str | None
    channel: int
    duration_s: float
    ramp_up_s: float
    ramp_down_s: float
    trigger_interval_s: float
    burst_on_s: float
    pulses_per_burst: int
    flip_every_bursts: int | None
    settings: dict[str, Any]
    expected_dummy: ExpectedSignal
    expected_live: ExpectedSignal
    scope: dict[str, float] = field(default_factory=dict)

    @property
    def sham(self) -> bool:
        """Whether this treatment delivers nothing."""
        return self.modality == "sham"

    @property
    def bursts(self) -> int:
        """Number of bursts that make up the prescribed duration."""
        return max(1, math.ceil(self.duration_s / self.trigger_interval_s - 1e-9))

    @property
    def pulse_period_s(self) -> float:
        """Period of the pulses (EP) or waveform cycles (MC) inside a burst."""
        return self.burst_on_s / self.pulses_per_burst if self.pulses_per_burst else 0.0

    @property
    def first_phase_s(self) -> float:
        """What must be delivered of a period for it to count: its first phase (an EP pulse, the first
        polarity of a microcurrent cycle, a whole period of direct current)."""
        if self.modality == "electroporation":
            return float(self.settings.get("pulse_width_s", self.pulse_period_s))
        if self.settings.get("waveform") in ("square", "biphasic"):
            return self.pulse_period_s / 2
        return self.pulse_period_s

    def amplitude_scale(self, t_s: float) -> float:
        """Fraction of the full amplitude at delivery time ``t_s`` (ramps up and down; 1 in between)."""
        if self.ramp_up_s > 0 and t_s < self.ramp_up_s:
            return max(t_s / self.ramp_up_s, 0.0)
        remaining = self.duration_s - t_s
        if self.ramp_down_s > 0 and remaining < self.ramp_down_s:
            return max(remaining / self.ramp_down_s, 0.0)
        return 1.0

    def polarity(self, burst_index: int) -> int:
        """+1 or −1 for a burst (microcurrent polarity alternation)."""
        if not self.flip_every_bursts:
            return 1
        return -1 if (burst_index // self.flip_every_bursts) % 2 else 1

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for the record's ``settings``."""
        return {
            "modality": self.modality,
            "arm_id": self.arm_id,
            "side": self.side,
            "role": self.role,
            "channel": self.channel,
            "duration_s": self.duration_s,
            "ramp_up_s": self.ramp_up_s,
            "ramp_down_s": self.ramp_down_s,
            "trigger_interval_s": self.trigger_interval_s,
            "burst_on_s": self.burst_on_s,
            "pulses_per_burst": self.pulses_per_burst,
            "flip_every_bursts": self.flip_every_bursts,
            "bursts": self.bursts,
            "instrument": dict(self.settings),
            "scope": dict(self.scope),
        }


def _mc_plan(rx: Any, arm_id: str, side: str | None, bench: Any, settings: DeliverySettings,
             tolerances: Any) -> TreatmentPlan:
    where = f"arm {arm_id!r}"
    if rx.driver == "generator":
        raise ConfigurationError(
            f"{where}: microcurrent with driver: generator is not supported by the delivery runner; "
            "accepted: driver: current_source (a true current source on the bench)"
        )
    if bench.current_source is None:
        raise ConfigurationError(
            f"{where} prescribes microcurrent from a current source, but bench {bench.name!r} declares no "
            "current_source; use a bench file with one (e.g. instruments/benches/twin.yaml)"
        )
    waveform = _MC_WAVEFORMS[rx.waveform]
    current_A = rx.current_uA * 1e-6
    if rx.waveform == "faradic" and abs(float(rx.duty_cycle or 0.5) - 0.5) > 1e-9:
        raise ConfigurationError(
            f"{where}: faradic duty_cycle {rx.duty_cycle} is not supported by the current source "
            "(accepted: 0.5, a square wave)"
        )
    max_interval = settings.burst_interval_s
    if rx.polarity_period_s:
        # a burst never spans a polarity reversal
        max_interval = min(max_interval, rx.polarity_period_s / 2.0)
        if bench.current_source.driver != "keithley6221":
            raise ConfigurationError(
                f"{where}: polarity_period_s needs a current source whose polarity can be reversed between "
                f"bursts; bench {bench.name!r} uses driver {bench.current_source.driver!r} (accepted: keithley6221)"
            )
    if waveform == "dc":
        frequency_Hz = 1.0 / max_interval
        cycles = 1
    else:
        frequency_Hz = float(rx.frequency_Hz)
        period_s = 1.0 / frequency_Hz
        if period_s > max_interval + 1e-12:
            raise ConfigurationError(
                f"{where}: frequency_Hz {frequency_Hz:g} Hz gives a waveform period of {period_s:g} s, longer "
                f"than the {max_interval:g} s a single burst may last here (a dead host must stop stimulation "
                "within one burst, and a burst never spans a polarity reversal); accepted: frequency_Hz >= "
                f"{1 / max_interval:g} Hz"
            )
        cycles = max(1, math.floor(max_interval * frequency_Hz + 1e-9))
    burst_on_s = cycles / frequency_Hz
    # bursts follow back to back; the pacing adds the margin that keeps a start from arriving while the
    # previous burst still runs (an instrument ignores it then)
    trigger_interval_s = burst_on_s
    flip = None
    if rx.polarity_period_s:
        flip = max(1, round(rx.polarity_period_s / 2.0 / burst_on_s))
    # the source may apply up to the voltage the highest accepted impedance needs, plus headroom, so a lifted
    # electrode shows up as a collapsing current (and a high impedance) rather than as a high voltage
    compliance_V = min(max(current_A * tolerances.impedance_ohm_max * 1.25, 1.0), 105.0)
    instrument = {
        "amplitude_A": current_A,
        "waveform": waveform,
        "frequency_Hz": frequency_Hz,
        "compliance_V": compliance_V,
        "cycles_per_burst": cycles,
    }
    # two whole periods (or the whole burst when shorter) starting at the trigger, each phase resolved
    window_s = min(2.0 / frequency_Hz, burst_on_s)
    if waveform == "dc":
        needs = [Need(window_s / 100, "duration_min", "100 samples over the view of a direct current")]
    else:
        phase_s = (float(rx.duty_cycle or 0.5) if waveform == "square" else 0.5) / frequency_Hz
        needs = [per_pulse_need(phase_s, "frequency_Hz", "waveform phase")]
    views = fit_view(bench, "cycles", window_s, needs, where)
    return TreatmentPlan(
        modality="microcurrent",
        arm_id=arm_id,
        side=side,
        role="current_source",
        channel=bench.current_source.channel,
        duration_s=rx.duration_s,
        ramp_up_s=float(rx.ramp_up_s),
        ramp_down_s=float(rx.ramp_down_s),
        trigger_interval_s=trigger_interval_s,
        burst_on_s=burst_on_s,
        pulses_per_burst=cycles,
        flip_every_bursts=flip,
        settings=instrument,
        expected_dummy=ExpectedSignal(current_on_A=current_A, voltage_on_V=current_A * bench.dummy_load_ohms),
        expected_live=ExpectedSignal(current_on_A=current_A),
        scope={
            "live_window_s": window_s,
            "dummy_window_s": window_s,
            "electrode_V": compliance_V,
            "current_A": current_A,
            **views,
        },
    )


def _ep_plan(rx: Any, arm_id: str, side: str | None, bench: Any, settings: DeliverySettings,
             envelope: Any) -> TreatmentPlan:
    where = f"arm {arm_id!r}"
    if rx.carrier_Hz is not None:
        raise ConfigurationError(
            f"{where}: carrier_Hz (pulses filled with a carrier) is not supported by the delivery runner; "
            "accepted: monophasic pulses (remove carrier_Hz)"
        )
    train_s = rx.pulses_per_train / rx.pulse_rate_Hz
    if train_s > settings.max_burst_interval_s:
        raise ConfigurationError(
            f"{where}: a train of {rx.pulses_per_train} pulses at {rx.pulse_rate_Hz:g} Hz lasts {train_s:g} s, "
            f"longer than the {settings.max_burst_interval_s:g} s one burst may last; accepted: "
            f"pulses_per_train / pulse_rate_Hz <= {settings.max_burst_interval_s:g} s"
        )
    gain = bench.amplifier_gain
    amp = bench.amplifier
    if amp is not None and rx.amplitude_V > amp.max_output_V:
        raise ConfigurationError(
            f"{where}: amplitude_V {rx.amplitude_V:g} V exceeds the amplifier's max_output_V "
            f"{amp.max_output_V:g} V (bench {bench.name!r})"
        )
    setting_V = rx.amplitude_V / gain
    if amp is not None and setting_V > amp.max_input_V:
        raise ConfigurationError(
            f"{where}: amplitude_V {rx.amplitude_V:g} V needs {setting_V:g} V at the amplifier input, above its "
            f"max_input_V {amp.max_input_V:g} V (bench {bench.name!r})"
        )
    # instrument-side clamp just above the setting, never above what the envelope allows at the electrodes
    ceiling_V = envelope.ep_peak_voltage_max_V / gain
    limit_V = max(setting_V, min(setting_V * 1.05, ceiling_V))
    instrument = {
        "amplitude_V": setting_V,
        "pulse_width_s": rx.pulse_width_s,
        "frequency_Hz": float(rx.pulse_rate_Hz),
        "pulses_per_burst": int(rx.pulses_per_train),
        "offset_V": 0.0,
        "limit_V": limit_V,
        "electrode_amplitude_V": float(rx.amplitude_V),
        "amplifier_gain": gain,
    }
    dummy_current = rx.amplitude_V / bench.dummy_load_ohms
    # one pulse fills the live view at a rate that resolves its edges (its integrals make the dose); the
    # dummy-load check adds a view of the whole train, every pulse with its own samples, for rate and count
    pulse_window_s = 2.5 * rx.pulse_width_s
    pulse_needs = [per_pulse_need(rx.pulse_width_s, "pulse_width_ms", "pulse")]
    edge = edge_need(bench)
    if edge is not None:
        pulse_needs.append(edge)
    views = fit_view(bench, "pulse", pulse_window_s, pulse_needs, where)
    train_window_s = train_s if rx.pulses_per_train >= 2 else 0.0
    if train_window_s:
        views.update(fit_view(bench, "train", train_window_s,
                              [per_pulse_need(rx.pulse_width_s, "pulse_width_ms", "pulse")], where))
    return TreatmentPlan(
        modality="electroporation",
        arm_id=arm_id,
        side=side,
        role="stimulator",
        channel=bench.stimulator.channel,
        duration_s=rx.duration_s,
        ramp_up_s=0.0,
        ramp_down_s=0.0,
        trigger_interval_s=float(rx.train_interval_s),
        burst_on_s=train_s,
        pulses_per_burst=int(rx.pulses_per_train),
        flip_every_bursts=None,
        settings=instrument,
        expected_dummy=ExpectedSignal(current_on_A=dummy_current, voltage_on_V=float(rx.amplitude_V),
                                      pulse_width_s=rx.pulse_width_s),
        expected_live=ExpectedSignal(voltage_on_V=float(rx.amplitude_V), pulse_width_s=rx.pulse_width_s),
        scope={
            "live_window_s": pulse_window_s,
            "dummy_window_s": pulse_window_s,
            "train_window_s": train_window_s,
            "pulse_rate_Hz": float(rx.pulse_rate_Hz),
            "electrode_V": float(rx.amplitude_V),
            "current_A": dummy_current,
            **views,
        },
    )


def _sham_plan(rx: Any, arm_id: str, side: str | None, bench: Any, settings: DeliverySettings,
               mimic: TreatmentPlan | None) -> TreatmentPlan:
    # a sham follows the handling of the arm it imitates (same role, channel and burst rhythm), sending nothing
    role = mimic.role if mimic else "stimulator"
    channel = mimic.channel if mimic else bench.stimulator.channel
    interval = mimic.trigger_interval_s if mimic else settings.burst_interval_s
    return TreatmentPlan(
        modality="sham",
        arm_id=arm_id,
        side=side,
        role=role,
        channel=channel,
        duration_s=rx.duration_s,
        ramp_up_s=0.0,
        ramp_down_s=0.0,
        trigger_interval_s=interval,
        burst_on_s=0.0,
        pulses_per_burst=0,
        flip_every_bursts=None,
        settings={"output": "never enabled", "mimics": getattr(rx, "mimics", None)},
        expected_dummy=ExpectedSignal(),
        expected_live=ExpectedSignal(),
        scope={},
    )


def make_plan(
    prescription: Any,
    *,
    arm_id: str,
    side: str | None,
    bench: Any,
    settings: DeliverySettings,
    tolerances: Any,
    envelope: Any,
    mimic_prescription: Any = None,
) -> TreatmentPlan:
    """Map one prescription onto a bench.

    Parameters
    ----------
    prescription : MicrocurrentPrescription, ElectroporationPrescription or ShamPrescription
        Already checked against the safety envelope.
    arm_id, side : str
        Arm id and treated side (``None`` for a parallel design).
    bench : instruments.bench.Bench
        The bench configuration (amplifier gain, channels, dummy load).
    settings : DeliverySettings
        Burst interval, capture cadence.
    tolerances : study tolerances
        ``impedance_ohm_max`` sets the current source's compliance.
    envelope : SafetyEnvelope
        Sets the generator's instrument-side voltage clamp.
    mimic_prescription : prescription, optional
        For a sham: the active prescription whose handling it imitates.

    Returns
    -------
    TreatmentPlan

    Raises
    ------
    ConfigurationError
        If the bench cannot deliver the prescription exactly.
    """
    modality = prescription.modality
    if modality == "microcurrent":
        return _mc_plan(prescription, arm_id, side, bench, settings, tolerances)
    if modality == "electroporation":
        return _ep_plan(prescription, arm_id, side, bench, settings, envelope)
    if modality == "sham":
        mimic = None
        if mimic_prescription is not None and mimic_prescription.modality != "sham":
            try:
                mimic = make_plan(mimic_prescription, arm_id=arm_id, side=side, bench=bench, settings=settings,
                                  tolerances=tolerances, envelope=envelope)
            except ConfigurationError:
                mimic = None
        return _sham_plan(prescription, arm_id, side, bench, settings, mimic)
    raise ConfigurationError(
        f"arm {arm_id!r}: unknown modality {modality!r}; accepted: microcurrent, electroporation, sham"
    )
