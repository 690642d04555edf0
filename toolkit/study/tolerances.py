"""How closely a delivered session must match its prescription (checked by delivery on the bench)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from toolkit.study.quantities import Fraction, Ohms

__all__ = ["Tolerances"]


def _reasonable(value: float) -> float:
    if not 0 < value <= 0.5:
        raise ValueError(f"a relative tolerance is in (0, 0.5], e.g. 0.05 or '5 %'; got {value:g}")
    return value


class Tolerances(BaseModel):
    """Verification tolerances as relative fractions, plus the electrode-contact impedance range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: delivered current vs prescribed (fraction, e.g. 0.05 = ± 5 %)
    current_rel: Fraction = 0.05
    #: pulse width vs prescribed
    pulse_width_rel: Fraction = 0.02
    #: pulse amplitude (voltage) vs prescribed
    amplitude_rel: Fraction = 0.05
    #: frequency / pulse rate vs prescribed
    frequency_rel: Fraction = 0.01
    #: session duration vs prescribed
    duration_rel: Fraction = 0.02
    #: lowest electrode-pair impedance accepted before starting (Ω); lower suggests a short or gel bridge
    impedance_ohm_min: Ohms = Field(default=200.0, gt=0)
    #: highest electrode-pair impedance accepted (Ω); higher suggests poor contact
    impedance_ohm_max: Ohms = Field(default=200_000.0, gt=0)

    _reasonable = field_validator(
        "current_rel", "pulse_width_rel", "amplitude_rel", "frequency_rel", "duration_rel"
    )(_reasonable)

    @field_validator("impedance_ohm_max")
    @classmethod
    def _ordered(cls, value: float, info) -> float:
        low = info.data.get("impedance_ohm_min")
        if low is not None and value <= low:
            raise ValueError(f"impedance_ohm_max ({value:g} Ω) must exceed impedance_ohm_min ({low:g} Ω)")
        return value

    def within(self, kind: str, measured: float, prescribed: float) -> bool:
        """True when ``measured`` is within the ``<kind>_rel`` tolerance of ``prescribed``.

        Parameters
        ----------
        kind : {'current', 'pulse_width', 'amplitude', 'frequency', 'duration'}
            Which tolerance applies.
        measured, prescribed : float
            Values in the same unit.
        """
        rel = getattr(self, f"{kind}_rel", None)
        if rel is None:
            raise ValueError(f"no tolerance {kind!r}; known: current, pulse_width, amplitude, frequency, duration")
        return abs(measured - prescribed) <= rel * abs(prescribed)
