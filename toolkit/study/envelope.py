"""The safety envelope: hard limits every prescription must respect.

Defaults come from IEC 60601-2-10 (nerve and muscle stimulators) and the project's domain notes:

========================================  =========  ================================================
limit                                     default    why
========================================  =========  ================================================
r.m.s. current density on an electrode    2 mA/cm²   above it IEC 60601-2-10 asks for special attention
microcurrent peak current                 1000 µA    "microcurrent" is sub-milliamp
microcurrent charge balance               required   the DC component must be declared; galvanic only
                                                     when the study allows it, with a DC limit and a
                                                     limit on the charge a direct current carries in one
                                                     direction (electrochemistry at the electrodes)
electroporation energy per pulse          300 mJ     into 500 Ω (IEC 60601-2-10)
electroporation peak voltage              500 V      open circuit (IEC 60601-2-10)
session duration                          60 min     longest session in the seed literature
current path across the eyes              refused    always (see :mod:`toolkit.study.placement`)
========================================  =========  ================================================

A study's ``envelope:`` section may only tighten these limits; a looser value is an error naming the
default. :meth:`SafetyEnvelope.check` is a pure function of a prescription, reused by delivery before any
output is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from toolkit.study.prescription import (
    ElectroporationPrescription,
    MicrocurrentPrescription,
    PrescriptionFigures,
    ShamPrescription,
)
from toolkit.study.problems import rule_error
from toolkit.study.quantities import (
    Microamperes,
    MilliampsPerSquareCm,
    Millicoulombs,
    Millijoules,
    Minutes,
    Volts,
)

__all__ = ["SafetyEnvelope", "Violation", "DEFAULT_LIMITS"]

#: default limits: field -> (value, unit, source)
DEFAULT_LIMITS: dict[str, tuple[float, str, str]] = {
    "current_density_rms_max_mA_per_cm2": (2.0, "mA/cm²", "IEC 60601-2-10"),
    "microcurrent_max_uA": (1000.0, "µA", "sub-milliamp microcurrent"),
    "ep_energy_per_pulse_max_mJ": (300.0, "mJ", "IEC 60601-2-10, into 500 Ω"),
    "ep_peak_voltage_max_V": (500.0, "V", "IEC 60601-2-10, open circuit"),
    "session_duration_max_min": (60.0, "min", "seed literature"),
}


@dataclass(frozen=True)
class Violation:
    """One limit a prescription breaks."""

    #: prescription field the limit is about (``current_uA``, ``amplitude_V``, ``placement`` ...)
    field: str
    #: the computed quantity that breaks the limit (``current_density_rms``, ``energy_per_pulse`` ...)
    quantity: str
    #: its computed value (in ``unit``), or ``None`` for a rule without a number
    value: float | None
    #: the limit (in ``unit``), or ``None`` for a rule without a number
    limit: float | None
    #: unit of ``value`` and ``limit``
    unit: str
    #: a complete sentence: field, computed value, limit and where the limit comes from
    message: str

    def __str__(self) -> str:
        return self.message


def _no_looser(value: float | None, info: ValidationInfo) -> float | None:
    default, unit, source = DEFAULT_LIMITS[str(info.field_name)]
    if value is not None and value > default:
        raise rule_error(
            "envelope_loosened",
            "{v:g} {u} loosens the default limit {d:g} {u} ({s}); a study may only tighten the safety envelope",
            {"v": value, "u": unit, "d": default, "s": source},
        )
    if value is not None and value <= 0:
        raise rule_error("positive", "a limit must be > 0, got {v:g}", {"v": value})
    return value


class SafetyEnvelope(BaseModel):
    """Limits every prescription of a study must respect (defaults from IEC 60601-2-10; only tightened).

    Examples
    --------
    >>> envelope = SafetyEnvelope()
    >>> envelope.current_density_rms_max_mA_per_cm2
    2.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: r.m.s. current density limit on one electrode (mA/cm²)
    current_density_rms_max_mA_per_cm2: MilliampsPerSquareCm = 2.0
    #: peak microcurrent limit (µA)
    microcurrent_max_uA: Microamperes = 1000.0
    #: allow microcurrent waveforms that are not charge-balanced (galvanic DC); needs ``galvanic_dc_max_uA``
    galvanic_allowed: bool = False
    #: limit of the direct (time-averaged) current when galvanic is allowed (µA)
    galvanic_dc_max_uA: Microamperes | None = Field(default=None, validate_default=True)
    #: limit of the charge a direct current (galvanic, faradic pulses, the DC of DC + AC) carries in one
    #: direction before its polarity reverses, or over the session (mC); required with galvanic_allowed
    galvanic_charge_max_mC: Millicoulombs | None = Field(default=None, validate_default=True)
    #: electroporation energy per pulse into 500 Ω (mJ)
    ep_energy_per_pulse_max_mJ: Millijoules = 300.0
    #: electroporation peak voltage (V)
    ep_peak_voltage_max_V: Volts = 500.0
    #: longest session (min)
    session_duration_max_min: Minutes = 60.0

    _tighten_only = field_validator(
        "current_density_rms_max_mA_per_cm2",
        "microcurrent_max_uA",
        "ep_energy_per_pulse_max_mJ",
        "ep_peak_voltage_max_V",
        "session_duration_max_min",
    )(_no_looser)

    @field_validator("galvanic_dc_max_uA")
    @classmethod
    def _dc_limit_with_galvanic(cls, value: float | None, info: ValidationInfo) -> float | None:
        allowed = info.data.get("galvanic_allowed", False)
        if allowed and value is None:
            raise rule_error(
                "missing_dc_limit",
                "galvanic_allowed: true needs galvanic_dc_max_uA, the direct-current limit in µA",
            )
        if not allowed and value is not None:
            raise rule_error(
                "dc_limit_without_galvanic", "galvanic_dc_max_uA applies only with galvanic_allowed: true"
            )
        if value is not None:
            limit = info.data.get("microcurrent_max_uA", DEFAULT_LIMITS["microcurrent_max_uA"][0])
            if not 0 < value <= limit:
                raise rule_error(
                    "range", "galvanic_dc_max_uA must be in (0, {m:g}] µA, got {v:g}", {"m": limit, "v": value}
                )
        return value

    @field_validator("galvanic_charge_max_mC")
    @classmethod
    def _charge_limit_with_galvanic(cls, value: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("galvanic_allowed", False) and value is None:
            raise rule_error(
                "missing_dc_charge_limit",
                "galvanic_allowed: true needs galvanic_charge_max_mC, the charge a direct current may carry in "
                "one direction (mC, e.g. 120 or '2 mA·min')",
            )
        if value is not None and value <= 0:
            raise rule_error("positive", "galvanic_charge_max_mC must be > 0 mC, got {v:g}", {"v": value})
        return value

    def check(
        self, prescription: MicrocurrentPrescription | ElectroporationPrescription | ShamPrescription
    ) -> list[Violation]:
        """Every limit ``prescription`` breaks (an empty list when it is inside the envelope).

        Parameters
        ----------
        prescription : MicrocurrentPrescription, ElectroporationPrescription or ShamPrescription
            The prescription to judge.

        Returns
        -------
        list of Violation
            One entry per broken limit, each naming the field, the computed value and the limit.
        """
        figures = prescription.figures()
        out: list[Violation] = []
        self._check_duration(prescription, out)
        self._check_placement(prescription, out)
        if isinstance(prescription, MicrocurrentPrescription):
            self._check_microcurrent(prescription, figures, out)
        elif isinstance(prescription, ElectroporationPrescription):
            self._check_electroporation(prescription, figures, out)
        return out

    def is_safe(
        self, prescription: MicrocurrentPrescription | ElectroporationPrescription | ShamPrescription
    ) -> bool:
        """True when :meth:`check` finds nothing."""
        return not self.check(prescription)

    # -- rules ---------------------------------------------------------------------------------------

    def _check_duration(self, prescription, out: list[Violation]) -> None:
        limit = self.session_duration_max_min
        if prescription.duration_min > limit:
            out.append(
                Violation(
                    "duration_min", "session_duration", prescription.duration_min, limit, "min",
                    f"duration_min: session of {prescription.duration_min:g} min exceeds the limit {limit:g} min",
                )
            )

    def _check_placement(self, prescription, out: list[Violation]) -> None:
        for why in prescription.placement.eye_path_problems():
            out.append(Violation("placement", "eye_path", None, None, "", f"placement: {why}"))

    def _check_density(self, field: str, figures: PrescriptionFigures, area_cm2: float, out: list) -> None:
        density = figures.current_density_rms_mA_per_cm2
        limit = self.current_density_rms_max_mA_per_cm2
        if density > limit:
            out.append(
                Violation(
                    field, "current_density_rms", density, limit, "mA/cm²",
                    f"{field}: r.m.s. current density {density:.4g} mA/cm² "
                    f"(I_rms {figures.rms_current_A * 1e3:.4g} mA over {area_cm2:g} cm²) exceeds the limit "
                    f"{limit:g} mA/cm²",
                )
            )

    def _check_microcurrent(
        self, prescription: MicrocurrentPrescription, figures: PrescriptionFigures, out: list[Violation]
    ) -> None:
        limit = self.microcurrent_max_uA
        peak_uA = figures.peak_current_A * 1e6
        if peak_uA > limit * (1 + 1e-12):
            with_dc = f" (AC {prescription.current_uA:g} µA + DC {abs(prescription.dc_offset_uA or 0):g} µA)" \
                if prescription.dc_offset_uA else ""
            out.append(
                Violation(
                    "current_uA", "peak_current", peak_uA, limit, "µA",
                    f"current_uA: peak current {peak_uA:g} µA{with_dc} exceeds the microcurrent limit {limit:g} µA",
                )
            )
        self._check_density("current_uA", figures, prescription.electrode_area_cm2, out)
        self._check_direct_charge(prescription, figures, out)
        if figures.charge_balanced:
            return
        dc_uA = abs(figures.dc_current_A) * 1e6
        net_uC = abs(figures.net_charge_per_period_C or 0.0) * 1e6
        if not self.galvanic_allowed:
            field = "polarity_period_s" if prescription.polarity_period_s is not None else "waveform"
            out.append(
                Violation(
                    field, "net_charge_per_period", net_uC, 0.0, "µC",
                    f"{field}: the {prescription.waveform} waveform is not charge-balanced (net {net_uC:.4g} µC "
                    f"per period, direct current {dc_uA:.4g} µA); the envelope requires charge balance unless "
                    "galvanic_allowed is set with galvanic_dc_max_uA",
                )
            )
            return
        dc_limit = float(self.galvanic_dc_max_uA or 0.0)
        if dc_uA > dc_limit:
            out.append(
                Violation(
                    "current_uA", "dc_current", dc_uA, dc_limit, "µA",
                    f"current_uA: direct current {dc_uA:.4g} µA exceeds galvanic_dc_max_uA {dc_limit:g} µA",
                )
            )

    def _check_direct_charge(self, prescription: MicrocurrentPrescription, figures: PrescriptionFigures,
                             out: list[Violation]) -> None:
        limit = self.galvanic_charge_max_mC
        charge_mC = (figures.direct_charge_C or 0.0) * 1e3
        if limit is None or charge_mC <= limit * (1 + 1e-12):
            return
        field = "dc_offset_uA" if prescription.dc_offset_uA else "current_uA"
        span = (f"half the polarity_period_s ({prescription.polarity_period_s / 2:g} s)"
                if prescription.polarity_period_s else f"the whole session (duration_min {prescription.duration_min:g})")
        out.append(
            Violation(
                field, "direct_charge", charge_mC, limit, "mC",
                f"{field}: the direct current carries {charge_mC:.4g} mC in one direction over {span}, above "
                f"galvanic_charge_max_mC {limit:g} mC",
            )
        )

    def _check_electroporation(
        self, prescription: ElectroporationPrescription, figures: PrescriptionFigures, out: list[Violation]
    ) -> None:
        limit_V = self.ep_peak_voltage_max_V
        if prescription.amplitude_V > limit_V:
            out.append(
                Violation(
                    "amplitude_V", "peak_voltage", prescription.amplitude_V, limit_V, "V",
                    f"amplitude_V: peak {prescription.amplitude_V:g} V exceeds the limit {limit_V:g} V",
                )
            )
        energy_mJ = (figures.energy_per_pulse_J or 0.0) * 1e3
        limit_mJ = self.ep_energy_per_pulse_max_mJ
        if energy_mJ > limit_mJ:
            out.append(
                Violation(
                    "pulse_width_ms", "energy_per_pulse", energy_mJ, limit_mJ, "mJ",
                    f"pulse_width_ms: energy per pulse {energy_mJ:.4g} mJ into 500 Ω "
                    f"({prescription.amplitude_V:g} V, {prescription.pulse_width_ms:g} ms) exceeds the limit "
                    f"{limit_mJ:g} mJ",
                )
            )
        self._check_density("amplitude_V", figures, prescription.electrode_area_cm2, out)

    def limits(self) -> list[tuple[str, float | None, str]]:
        """The limits as ``(name, value, unit)`` rows, for summaries."""
        return [
            ("r.m.s. current density", self.current_density_rms_max_mA_per_cm2, "mA/cm²"),
            ("microcurrent peak", self.microcurrent_max_uA, "µA"),
            (
                "microcurrent direct current",
                self.galvanic_dc_max_uA if self.galvanic_allowed else 0.0,
                "µA" if self.galvanic_allowed else "µA (charge-balanced)",
            ),
            ("direct charge in one direction", self.galvanic_charge_max_mC, "mC"),
            ("EP energy per pulse into 500 Ω", self.ep_energy_per_pulse_max_mJ, "mJ"),
            ("EP peak voltage", self.ep_peak_voltage_max_V, "V"),
            ("session duration", self.session_duration_max_min, "min"),
        ]
