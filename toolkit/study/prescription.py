"""Treatment prescriptions, one model per modality, and the electrical figures they imply.

A prescription says what the device delivers in one session. The study file picks the model with its
``modality`` key (a pydantic discriminated union): ``microcurrent``, ``electroporation`` or ``sham``.

Attribute names carry their unit (``current_uA``, ``pulse_width_ms``); properties with SI units
(``current_A``, ``pulse_width_s``, ``duration_s``) serve calculations. :meth:`figures` returns the computed
figures the safety envelope judges (see :class:`PrescriptionFigures` for the formulas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from toolkit.study.placement import PlacementField
from toolkit.study.problems import rule_error
from toolkit.study.quantities import (
    Fraction,
    Hertz,
    Microamperes,
    Milliseconds,
    Minutes,
    Ohms,
    Seconds,
    SquareCentimetres,
    Volts,
)

__all__ = [
    "REFERENCE_LOAD_OHM",
    "PrescriptionFigures",
    "MicrocurrentPrescription",
    "ElectroporationPrescription",
    "ShamPrescription",
    "Prescription",
    "Modality",
    "Waveform",
]

#: the standard load of IEC 60601-2-10 for pulse energy and, here, for the peak current of a voltage pulse
REFERENCE_LOAD_OHM = 500.0

Modality = Literal["electroporation", "microcurrent", "sham"]
#: microcurrent waveforms: galvanic = direct current (polarity may alternate slowly), faradic = monophasic
#: square pulses (polarity may alternate slowly), biphasic = symmetric square wave (balanced every cycle)
Waveform = Literal["galvanic", "faradic", "biphasic"]

#: a net charge below this fraction of the charge of one phase counts as balanced (floating-point slack)
_BALANCE_SLACK = 1e-9


@dataclass(frozen=True)
class PrescriptionFigures:
    """Electrical figures computed from a prescription (SI units; ``None`` where a figure does not apply).

    Formulas
    --------
    - pulse trains: I_rms = I_peak · √(pulse width × mean pulse rate); a biphasic square wave and a direct
      current have I_rms = I_peak; faradic pulses of duty cycle d have I_rms = I_peak · √d.
    - electroporation: I_peak = V / 500 Ω (the IEC 60601-2-10 reference load); energy per pulse
      = V² / 500 Ω · pulse width; mean pulse rate = pulses per train / train interval.
    - current density = I_rms / electrode area.
    - charge per phase: the charge one polarity phase carries (a pulse, a half cycle, or half an alternation
      period of a galvanic current).
    - net charge per period: the charge left over after one polarity alternation period (the whole session
      when the polarity never alternates); zero means charge-balanced.
    - direct charge: what the direct part of a microcurrent (galvanic, faradic pulses, the DC of DC + AC)
      moves in one direction before its polarity reverses — half a polarity period, or the whole session.
    - DC + AC (``biphasic`` with ``dc_offset_uA``): i = I_dc ± I_ac; I_peak = I_ac + |I_dc|,
      I_rms = √(I_ac² + I_dc²).
    """

    #: modality of the prescription
    modality: str
    #: peak current (A)
    peak_current_A: float
    #: r.m.s. current (A)
    rms_current_A: float
    #: r.m.s. current density on one electrode (mA/cm², the unit of IEC 60601-2-10)
    current_density_rms_mA_per_cm2: float
    #: charge carried by one phase (C)
    charge_per_phase_C: float | None
    #: time-averaged (direct) current (A)
    dc_current_A: float
    #: net charge after one polarity alternation period, or after the session when it never alternates (C)
    net_charge_per_period_C: float | None
    #: True when no net charge accumulates
    charge_balanced: bool
    #: session duration (s)
    duration_s: float
    #: peak voltage across the electrodes (V); electroporation only
    peak_voltage_V: float | None = None
    #: energy of one pulse into 500 Ω (J); electroporation only
    energy_per_pulse_J: float | None = None
    #: mean pulse rate over a train interval (Hz); electroporation only
    mean_pulse_rate_Hz: float | None = None
    #: duration of one train (s); electroporation only
    train_duration_s: float | None = None
    #: charge the direct part of the current carries in one direction before the polarity reverses (the
    #: whole session when it never does), C; microcurrent only
    direct_charge_C: float | None = None

    def as_dict(self) -> dict[str, object]:
        """The figures as a plain dictionary (for tables and JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _PrescriptionBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def duration_s(self) -> float:
        """Session duration in seconds."""
        return self.duration_min * 60.0  # type: ignore[attr-defined]


def _require_positive_session(value: float) -> float:
    if value <= 0:
        raise rule_error("positive", "the session duration must be > 0 min, got {v}", {"v": value})
    return value


class MicrocurrentPrescription(_PrescriptionBase):
    """A microcurrent session: a sub-milliamp current between electrode pairs.

    The current is set as a peak value. ``galvanic`` is a direct current; with ``polarity_period_s`` its
    polarity reverses every half period. ``faradic`` is a train of monophasic square pulses at
    ``frequency_Hz`` with ``duty_cycle`` (default 0.5), polarity reversed every half ``polarity_period_s``.
    ``biphasic`` is a symmetric square wave at ``frequency_Hz``, charge-balanced in every cycle.
    """

    #: discriminator
    modality: Literal["microcurrent"] = "microcurrent"
    #: peak current (µA)
    current_uA: Microamperes = Field(gt=0)
    #: waveform: galvanic (DC), faradic (monophasic pulses) or biphasic (symmetric square)
    waveform: Waveform
    #: waveform frequency (Hz); faradic and biphasic only
    frequency_Hz: Hertz | None = Field(default=None, validate_default=True)
    #: on-time fraction of a faradic pulse period (0 < d ≤ 1; default 0.5)
    duty_cycle: Fraction | None = Field(default=None, validate_default=True)
    #: direct current added to a biphasic waveform (µA, signed): a combined DC + AC protocol; ``current_uA`` is
    #: then the AC amplitude. Its polarity reverses with ``polarity_period_s`` when that is set
    dc_offset_uA: Microamperes | None = None
    #: full period of polarity alternation (s): one polarity for half of it, the other for the rest
    polarity_period_s: Seconds | None = Field(default=None, gt=0)
    #: ramp from zero to the set current at the start (s)
    ramp_up_s: Seconds = Field(default=0.0, ge=0)
    #: ramp from the set current to zero at the end (s)
    ramp_down_s: Seconds = Field(default=0.0, ge=0)
    #: session duration (min)
    duration_min: Minutes
    #: electrode pairs
    placement: PlacementField
    #: area of one electrode (cm²)
    electrode_area_cm2: SquareCentimetres = Field(gt=0)
    #: what drives the current: a current source, or a voltage generator through a series resistor
    driver: Literal["current_source", "generator"] = "current_source"
    #: series resistor (Ω) between generator and electrode; required with ``driver: generator``
    series_resistor_ohm: Ohms | None = Field(default=None, validate_default=True)

    @field_validator("duration_min")
    @classmethod
    def _session_holds_ramps(cls, value: float, info: ValidationInfo) -> float:
        _require_positive_session(value)
        ramps = info.data.get("ramp_up_s", 0.0) + info.data.get("ramp_down_s", 0.0)
        if ramps > value * 60.0:
            raise rule_error(
                "ramps_too_long",
                "a session of {d} min ({s} s) is shorter than its ramps (ramp_up_s + ramp_down_s = {r} s)",
                {"d": value, "s": value * 60.0, "r": ramps},
            )
        return value

    @field_validator("frequency_Hz")
    @classmethod
    def _frequency_fits_waveform(cls, value: float | None, info: ValidationInfo) -> float | None:
        waveform = info.data.get("waveform")
        if waveform in ("faradic", "biphasic") and value is None:
            raise rule_error(
                "missing_for_waveform", "a {w} waveform needs frequency_Hz (> 0 Hz)", {"w": waveform}
            )
        if waveform == "galvanic" and value is not None:
            raise rule_error(
                "not_for_waveform",
                "a galvanic (direct) current has no frequency; remove frequency_Hz or choose faradic/biphasic",
            )
        if value is not None and value <= 0:
            raise rule_error("positive", "frequency_Hz must be > 0 Hz, got {v}", {"v": value})
        return value

    @field_validator("duty_cycle")
    @classmethod
    def _duty_fits_waveform(cls, value: float | None, info: ValidationInfo) -> float | None:
        waveform = info.data.get("waveform")
        if value is None:
            return 0.5 if waveform == "faradic" else None
        if waveform != "faradic":
            raise rule_error(
                "not_for_waveform", "duty_cycle applies to faradic pulses only, not to {w}", {"w": waveform}
            )
        if not 0 < value <= 1:
            raise rule_error("range", "duty_cycle must be in (0, 1], got {v}", {"v": value})
        return value

    @field_validator("dc_offset_uA")
    @classmethod
    def _dc_fits_waveform(cls, value: float | None, info: ValidationInfo) -> float | None:
        waveform = info.data.get("waveform")
        if value is not None and waveform != "biphasic":
            raise rule_error(
                "not_for_waveform",
                "dc_offset_uA makes a combined DC + AC protocol of a biphasic waveform, not of {w}; use "
                "waveform: galvanic for a direct current alone", {"w": waveform},
            )
        if value == 0:
            return None
        return value

    @field_validator("series_resistor_ohm")
    @classmethod
    def _resistor_fits_driver(cls, value: float | None, info: ValidationInfo) -> float | None:
        driver = info.data.get("driver")
        if driver == "generator" and (value is None or value <= 0):
            raise rule_error(
                "missing_for_driver",
                "driver: generator needs series_resistor_ohm (> 0 Ω), the resistor that sets the current",
            )
        if driver == "current_source" and value is not None:
            raise rule_error(
                "not_for_driver", "series_resistor_ohm applies to driver: generator only; remove it"
            )
        return value

    @property
    def current_A(self) -> float:
        """Peak current in amperes (the AC amplitude of a DC + AC protocol)."""
        return self.current_uA * 1e-6

    @property
    def dc_offset_A(self) -> float:
        """Direct current added to a biphasic waveform, in amperes (0 without)."""
        return float(self.dc_offset_uA or 0.0) * 1e-6

    @property
    def electrode_area_m2(self) -> float:
        """Area of one electrode in m²."""
        return self.electrode_area_cm2 * 1e-4

    def _on_time_s(self, span_s: float) -> float:
        """Time the output is on during ``[0, span_s)`` (pulses start at t = 0)."""
        if self.waveform != "faradic":
            return span_s
        frequency, duty = self._frequency, self._duty
        cycles = span_s * frequency
        whole = math.floor(cycles)
        return (whole * duty + min(cycles - whole, duty)) / frequency

    @property
    def _frequency(self) -> float:
        # the validators make frequency_Hz present for faradic and biphasic waveforms
        return float(self.frequency_Hz or 0.0)

    @property
    def _duty(self) -> float:
        return float(self.duty_cycle if self.duty_cycle is not None else 0.5)

    def figures(self) -> PrescriptionFigures:
        """Electrical figures of this prescription (see :class:`PrescriptionFigures`)."""
        current = self.current_A
        dc = self.dc_offset_A
        # the stretch the direct part flows one way: half a polarity period, or the whole session
        one_way_s = self.polarity_period_s / 2.0 if self.polarity_period_s else self.duration_s
        if self.waveform == "biphasic":
            rms = math.hypot(current, dc)
            phase_charge = (current + abs(dc)) / (2.0 * self._frequency)
            period = self.polarity_period_s or (self.duration_s if dc else None)
            # a DC part that reverses with the polarity period cancels over it; one that never does remains
            net = dc * self.duration_s if dc and not self.polarity_period_s else 0.0
            direct = abs(dc) * one_way_s
        elif self.waveform == "faradic":
            rms = current * math.sqrt(self._duty)
            phase_charge = current * self._duty / self._frequency
            direct = current * self._on_time_s(one_way_s)
            if self.polarity_period_s is None:
                period = self.duration_s
                net = current * self._on_time_s(period)
            else:
                period = self.polarity_period_s
                first = self._on_time_s(period / 2.0)
                second = self._on_time_s(period) - first
                net = current * (first - second)
        else:  # galvanic
            rms = current
            direct = current * one_way_s
            if self.polarity_period_s is None:
                period = self.duration_s
                phase_charge = current * period
                net = phase_charge
            else:
                period = self.polarity_period_s
                phase_charge = current * period / 2.0
                net = 0.0
        balanced = abs(net) <= _BALANCE_SLACK * phase_charge
        if balanced:
            net = 0.0
        dc_current = 0.0 if balanced or not period else net / period
        return PrescriptionFigures(
            modality=self.modality,
            peak_current_A=current + abs(dc),
            rms_current_A=rms,
            current_density_rms_mA_per_cm2=rms * 1e3 / self.electrode_area_cm2,
            charge_per_phase_C=phase_charge,
            dc_current_A=dc_current,
            net_charge_per_period_C=net,
            charge_balanced=balanced,
            duration_s=self.duration_s,
            direct_charge_C=direct,
        )


class ElectroporationPrescription(_PrescriptionBase):
    """An electroporation session: trains of short voltage pulses, re-triggered every train interval.

    Each train holds ``pulses_per_train`` pulses of ``pulse_width_ms`` at ``pulse_rate_Hz``; a new train
    starts every ``train_interval_s`` (so the output stops by itself if triggering stops). With
    ``carrier_Hz`` each pulse is a bipolar square carrier of that frequency instead of a monophasic pulse.
    """

    #: discriminator
    modality: Literal["electroporation"] = "electroporation"
    #: pulse amplitude across the electrodes (V, peak)
    amplitude_V: Volts = Field(gt=0)
    #: width of one pulse (ms)
    pulse_width_ms: Milliseconds = Field(gt=0)
    #: pulse repetition rate within a train (Hz)
    pulse_rate_Hz: Hertz = Field(gt=0)
    #: pulses in one train (burst)
    pulses_per_train: int = Field(ge=1, le=100_000, strict=True)
    #: time from the start of one train to the start of the next (s)
    train_interval_s: Seconds = Field(gt=0)
    #: carrier frequency inside each pulse (Hz), if the pulse is a carrier burst
    carrier_Hz: Hertz | None = Field(default=None, gt=0)
    #: session duration (min)
    duration_min: Minutes
    #: electrode pairs
    placement: PlacementField
    #: area of one electrode (cm²)
    electrode_area_cm2: SquareCentimetres = Field(gt=0)

    @field_validator("duration_min")
    @classmethod
    def _positive_session(cls, value: float) -> float:
        return _require_positive_session(value)

    @field_validator("pulse_rate_Hz")
    @classmethod
    def _pulse_fits_period(cls, value: float, info: ValidationInfo) -> float:
        width_ms = info.data.get("pulse_width_ms")
        if width_ms is not None and width_ms * 1e-3 * value >= 1.0:
            raise rule_error(
                "pulse_overlap",
                "pulses of {w} ms at {f} Hz overlap (width × rate = {d:.3g} ≥ 1); lower the rate below {m:.4g} Hz",
                {"w": width_ms, "f": value, "d": width_ms * 1e-3 * value, "m": 1.0 / (width_ms * 1e-3)},
            )
        return value

    @field_validator("train_interval_s")
    @classmethod
    def _train_fits_interval(cls, value: float, info: ValidationInfo) -> float:
        rate = info.data.get("pulse_rate_Hz")
        pulses = info.data.get("pulses_per_train")
        if rate is not None and pulses is not None and value < pulses / rate:
            raise rule_error(
                "train_overlap",
                "a train of {n} pulses at {f} Hz lasts {t:.4g} s, longer than train_interval_s = {v} s",
                {"n": pulses, "f": rate, "t": pulses / rate, "v": value},
            )
        return value

    @field_validator("carrier_Hz")
    @classmethod
    def _carrier_fits_pulse(cls, value: float | None, info: ValidationInfo) -> float | None:
        width_ms = info.data.get("pulse_width_ms")
        if value is not None and width_ms is not None and value * width_ms * 1e-3 < 1.0:
            raise rule_error(
                "carrier_too_slow",
                "carrier_Hz = {c} Hz does not fit one full cycle in a {w} ms pulse; use ≥ {m:.4g} Hz",
                {"c": value, "w": width_ms, "m": 1.0 / (width_ms * 1e-3)},
            )
        return value

    @property
    def pulse_width_s(self) -> float:
        """Pulse width in seconds."""
        return self.pulse_width_ms * 1e-3

    @property
    def mean_pulse_rate_Hz(self) -> float:
        """Pulses per second averaged over a train interval."""
        return self.pulses_per_train / self.train_interval_s

    def figures(self) -> PrescriptionFigures:
        """Electrical figures of this prescription (see :class:`PrescriptionFigures`)."""
        peak = self.amplitude_V / REFERENCE_LOAD_OHM
        width = self.pulse_width_s
        rms = peak * math.sqrt(width * self.mean_pulse_rate_Hz)
        if self.carrier_Hz is None:
            phase_charge = peak * width
            net = phase_charge * self.pulses_per_train
        else:
            # a bipolar square carrier starting positive: a pulse that ends mid-cycle leaves a net charge
            half_cycle = 0.5 / self.carrier_Hz
            cycles = math.floor(width * self.carrier_Hz)
            rest = width - cycles / self.carrier_Hz
            positive = cycles * half_cycle + min(rest, half_cycle)
            phase_charge = peak * half_cycle
            net = peak * (2.0 * positive - width) * self.pulses_per_train
            if abs(net) <= _BALANCE_SLACK * phase_charge:
                net = 0.0
        return PrescriptionFigures(
            modality=self.modality,
            peak_current_A=peak,
            rms_current_A=rms,
            current_density_rms_mA_per_cm2=rms * 1e3 / self.electrode_area_cm2,
            charge_per_phase_C=phase_charge,
            dc_current_A=net / self.train_interval_s,
            net_charge_per_period_C=net,
            charge_balanced=net == 0.0,
            duration_s=self.duration_s,
            peak_voltage_V=self.amplitude_V,
            energy_per_pulse_J=self.amplitude_V**2 / REFERENCE_LOAD_OHM * width,
            mean_pulse_rate_Hz=self.mean_pulse_rate_Hz,
            train_duration_s=self.pulses_per_train / self.pulse_rate_Hz,
        )


class ShamPrescription(_PrescriptionBase):
    """A sham session: the same schedule, placement and handling, with the output never enabled."""

    #: discriminator
    modality: Literal["sham"] = "sham"
    #: session duration (min)
    duration_min: Minutes
    #: electrode pairs (placed as for the active arm the sham imitates)
    placement: PlacementField
    #: arm id of the active treatment whose handling the sham imitates, if any
    mimics: str | None = None

    @field_validator("duration_min")
    @classmethod
    def _positive_session(cls, value: float) -> float:
        return _require_positive_session(value)

    def figures(self) -> PrescriptionFigures:
        """Electrical figures of a sham session: no output at all."""
        return PrescriptionFigures(
            modality=self.modality,
            peak_current_A=0.0,
            rms_current_A=0.0,
            current_density_rms_mA_per_cm2=0.0,
            charge_per_phase_C=None,
            dc_current_A=0.0,
            net_charge_per_period_C=None,
            charge_balanced=True,
            duration_s=self.duration_s,
        )


#: a prescription of any modality, selected by its ``modality`` key
Prescription = Annotated[
    MicrocurrentPrescription | ElectroporationPrescription | ShamPrescription, Field(discriminator="modality")
]
