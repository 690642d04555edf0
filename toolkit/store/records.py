"""Plain, read-only records the store hands out (detached from any database session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

__all__ = ["AdverseEventRecord", "Allocation", "MeasurementRunRecord", "PatchTest", "PhotoRecord", "SubjectRecord"]


@dataclass(frozen=True)
class Allocation:
    """A subject's randomised allocation."""

    #: randomisation number (row of the allocation list)
    rand_no: int
    #: treatment arm id (parallel design; for split-face the arm of the first listed side)
    arm_id: str
    #: blinded arm code, e.g. ``"A"``
    code: str
    #: stratum label the row was drawn from
    stratum: str
    #: split-face designs: side (``"left"``/``"right"``) -> arm id; ``None`` for parallel designs
    side_map: dict[str, str] | None = None
    allocated_at: datetime | None = None


@dataclass(frozen=True)
class PatchTest:
    """The latest patch test read."""

    passed: bool
    read_on: date
    notes: str | None = None


@dataclass(frozen=True)
class SubjectRecord:
    """A subject with demographics, consent, patch test, allocation and eligibility."""

    subject_id: str
    age: int
    sex: str
    fitzpatrick: str
    race: str | None
    site: str | None
    strata: dict[str, str]
    enrolled_at: datetime
    consent_signed_on: date | None
    patch_test: PatchTest | None
    allocation: Allocation | None
    #: criteria -> met, e.g. ``{"consent signed": True, "patch test passed": False}``
    eligibility: dict[str, bool] = field(default_factory=dict)
    withdrawn_on: date | None = None
    #: date study treatment ended (discontinued, or with the withdrawal); no further sessions after it
    treatment_ended_on: date | None = None
    #: consent to show the subject's face in reports and publications (``None``: not asked)
    publication_consent: bool | None = None
    #: the latest screening checklist: criterion code -> holds (``None``: not recorded)
    checklist: dict[str, bool] | None = None
    #: the date it was answered
    checked_on: date | None = None

    @property
    def eligible(self) -> bool:
        """True when every eligibility criterion is met."""
        return all(self.eligibility.values())

    @property
    def unmet(self) -> list[str]:
        """The criteria not met."""
        return [k for k, ok in self.eligibility.items() if not ok]


@dataclass(frozen=True)
class PhotoRecord:
    """A stored photo."""

    photo_id: int
    subject_id: str
    visit_id: str
    view: str
    path: Path
    sha256: str
    captured_at: datetime | None
    meta: dict[str, Any]
    qc: dict[str, Any] | None


@dataclass(frozen=True)
class MeasurementRunRecord:
    """One analysis of a stored photo: which code ran, when, and the photo's QC verdict in that run."""

    run_id: int
    photo_id: int
    algorithm_version: str
    #: ``QCReport.to_dict()`` of the run: ``passed``, ``codes``, ``reasons``, ``flags``, ``flag_codes``, ``notes``
    qc: dict[str, Any]
    created_at: datetime | None


@dataclass(frozen=True)
class AdverseEventRecord:
    """An adverse event."""

    ae_id: int
    subject_id: str
    term: str
    soc: str
    severity: str
    serious: bool
    relation: str
    onset: date
    resolved: date | None
    #: the session at or after which it began (``None``: before the first session)
    session_number: int | None = None
    #: action taken with the treatment
    action_taken: str | None = None
    #: outcome (from the resolution date when none was recorded)
    outcome: str | None = None

    @property
    def blocks_sessions(self) -> bool:
        """A serious event without an end date: no further session until it is resolved."""
        return self.serious and self.resolved is None
