"""What a treatment plan is: the bursts, the instrument call, and what the scope must show.

See :mod:`toolkit.delivery.plan` for how a prescription becomes a :class:`TreatmentPlan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.delivery.alternating import AlternatingWaveform

__all__ = ["ExpectedSignal", "TreatmentPlan"]


@dataclass(frozen=True)
class ExpectedSignal:
    """What a capture must show for the output to count as delivered as prescribed.

    ``current_on_A`` is the current level while a pulse or phase is on (MC: the prescribed current; EP: the
    level the dummy load implies), ``voltage_on_V`` the electrode voltage while on (EP only).
    ``pulse_width_s`` (a pulse's envelope) / ``frequency_Hz`` (the pulse rate) / ``carrier_Hz`` (the carrier
    inside each pulse) are checked when set; ``pulses`` is how many whole pulses a view of a train must show.
    """

    current_on_A: float | None = None
    voltage_on_V: float | None = None
    pulse_width_s: float | None = None
    frequency_Hz: float | None = None
    carrier_Hz: float | None = None
    pulses: int | None = None
    #: DC + AC microcurrent: the highest |i| and the mean current (the direct part, at polarity +1)
    current_peak_A: float | None = None
    current_mean_A: float | None = None


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
        Microcurrent polarity alternation between bursts: the sign flips every this many bursts.
    settings : dict
        The instrument call (``configure_current`` / ``configure_pulse_train``) keyword arguments at full
        amplitude, in SI units, as recorded.
    expected_dummy, expected_live : ExpectedSignal
        What the dummy-load verification and the live captures must show.
    scope : dict
        Oscilloscope views: ``live_window_s`` and ``dummy_window_s`` (time after the trigger to show),
        ``train_window_s`` (EP: several pulses, for the pulse rate), ``electrode_V`` and ``current_A`` ranges.
    alternating : AlternatingWaveform or None
        Microcurrent polarity alternation within each burst (:mod:`toolkit.delivery.alternating`): each burst
        is one polarity period, its forward half then its reversed half.
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
    #: microcurrent whose polarity reverses within each burst: the waveform that holds both halves
    alternating: AlternatingWaveform | None = None

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
        if self.settings.get("waveform") == "square":
            return self.pulse_period_s * float(self.settings.get("duty_cycle", 0.5))
        if self.settings.get("waveform") == "biphasic":
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
            "alternating": None if self.alternating is None else self.alternating.as_dict(),
        }
