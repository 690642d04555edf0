"""What a session hands back: one :class:`TreatmentResult` per record, grouped in a :class:`DeliveryRecord`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from toolkit.delivery.abort import AbortReason
from toolkit.delivery.dose import Dose

__all__ = ["DeliveryRecord", "TreatmentResult"]

#: outcomes written to the store
OUTCOMES = ("completed", "aborted", "output_state_unknown")


@dataclass
class TreatmentResult:
    """One delivered (or attempted) treatment: one record in the store.

    Attributes
    ----------
    delivery_id : int
        Store id of the record.
    outcome : {'completed', 'aborted', 'output_state_unknown'}
    reason : str or None
        Why the session ended early (``None`` when completed).
    abort_reason : AbortReason or None
        The classified reason.
    dose : Dose
        Delivered dose (see :mod:`toolkit.delivery.dose`).
    verification : list of dict
        Every check that ran: preflight, read-back, dummy load, electrode confirmation, live summary,
        output-off read-back, state history.
    waveforms : list of (path, sha256)
        Stored raw captures.
    """

    delivery_id: int
    arm_id: str
    side: str | None
    modality: str
    outcome: str
    reason: str | None
    abort_reason: AbortReason | None
    dose: Dose
    verification: list[dict[str, Any]]
    waveforms: list[tuple[str, str]]
    started_at: datetime
    ended_at: datetime
    resumed_from: int | None = None
    output_off: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        """Whether the treatment was delivered as prescribed."""
        return self.outcome == "completed"


@dataclass
class DeliveryRecord:
    """The result of :func:`toolkit.delivery.run_session`: a visit's treatments (two for split-face).

    ``outcome`` is ``completed`` only when every treatment completed; ``output_state_unknown`` when any
    output could not be confirmed off; else ``aborted``.
    """

    study_id: str
    subject_id: str
    session_number: int
    treatments: list[TreatmentResult] = field(default_factory=list)
    #: notes for the operator (e.g. "started an in-process twin")
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """Overall outcome of the visit."""
        if any(t.outcome == "output_state_unknown" for t in self.treatments):
            return "output_state_unknown"
        if self.treatments and all(t.completed for t in self.treatments):
            return "completed"
        return "aborted"

    @property
    def completed(self) -> bool:
        """Whether every treatment of the visit was delivered as prescribed."""
        return self.outcome == "completed"

    @property
    def delivery_id(self) -> int | None:
        """Store id of the first record of the visit."""
        return self.treatments[0].delivery_id if self.treatments else None

    @property
    def delivery_ids(self) -> list[int]:
        """Store ids of every record of the visit."""
        return [t.delivery_id for t in self.treatments]

    @property
    def reason(self) -> str | None:
        """Reason of the first treatment that did not complete."""
        for t in self.treatments:
            if not t.completed:
                return t.reason
        return None

    @property
    def dose(self) -> Dose | None:
        """Dose of the first treatment (see :attr:`treatments` for each side)."""
        return self.treatments[0].dose if self.treatments else None

    def summary(self, *, notes: bool = True) -> str:
        """A few human-readable lines; ``notes=False`` leaves out the operator notes (already shown live)."""
        lines = [f"{self.study_id} subject {self.subject_id} session {self.session_number}: {self.outcome.upper()}"]
        for t in self.treatments:
            d = t.dose
            where = f"{t.arm_id}" + (f" ({t.side})" if t.side else "")
            lines.append(
                f"  #{t.delivery_id} {where} {t.modality}: {t.outcome}"
                + (f" — {t.reason}" if t.reason else "")
                + f"; {d.duration_s:.0f} s, {d.pulse_count} pulses/cycles, I_rms {d.rms_current_A * 1e6:.1f} uA, "
                f"charge {d.charge_C * 1e3:.3f} mC, energy {d.energy_J:.4g} J, {len(t.waveforms)} captures"
            )
        if notes:
            lines.extend(self.notes)
        return "\n".join(lines)
