"""Eligibility and allocation: is this the right subject, arm, side and day for this session?

Checked before anything is connected or recorded: consent signed, patch test passed, not withdrawn, study
treatment not discontinued, no unresolved serious adverse event, randomised, the session number within the
course, and the session day inside its window. Session 1 fixes study day 1; session ``k`` is due on day
``1 + (k − 1) · interval_days`` ± ``window_days`` counted from the date session 1 was first delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from toolkit.errors import CheckFailed

__all__ = ["NotEligible", "SessionTarget", "TreatmentTarget", "check_eligibility"]


class NotEligible(CheckFailed):
    """The subject may not receive this session now; ``details`` lists every unmet criterion."""


@dataclass(frozen=True)
class TreatmentTarget:
    """One treatment of a session: arm, side and prescription, plus earlier records of the same treatment."""

    arm_id: str
    side: str | None
    prescription: Any
    #: delivery ids of earlier records of this session and arm/side (oldest first)
    earlier_ids: tuple[int, ...] = ()
    #: id of the first record of this session (a resumed or repeated one links to it)
    first_id: int | None = None
    #: delivering time already recorded (s) by earlier, incomplete records
    delivered_s: float = 0.0
    #: whether an earlier record completed this treatment
    completed_before: bool = False


@dataclass(frozen=True)
class SessionTarget:
    """What a session will deliver, after eligibility passed."""

    subject_id: str
    session_number: int
    study_day: int
    session_date: date
    design: str
    treatments: tuple[TreatmentTarget, ...]
    checks: dict[str, bool] = field(default_factory=dict)


def _earlier(deliveries: Any, session_number: int, arm_id: str, side: str | None) -> TreatmentTarget | None:
    if deliveries is None or len(deliveries) == 0:
        return None
    rows = deliveries[deliveries["session_number"] == session_number]
    rows = rows[rows["arm_id"] == arm_id]
    if side is not None:
        rows = rows[rows["side"] == side]
    if len(rows) == 0:
        return None
    ids = tuple(int(x) for x in rows["delivery_id"])
    first = rows.iloc[0]
    root = first["resumed_from"]
    first_id = int(root) if root is not None and not (isinstance(root, float) and math.isnan(root)) else ids[0]
    completed = bool((rows["status"] == "completed").any())
    delivered = 0.0
    for dose in rows["dose"]:
        if isinstance(dose, dict):
            delivered += float(dose.get("duration_s") or 0.0)
    return TreatmentTarget(arm_id, side, None, ids, first_id, delivered, completed)


def _first_session_date(deliveries: Any) -> date | None:
    if deliveries is None or len(deliveries) == 0:
        return None
    first = deliveries[deliveries["session_number"] == 1]
    if len(first) == 0:
        return None
    started = min(first["started_at"])
    return started.date() if hasattr(started, "date") else None


def check_eligibility(study: Any, store: Any, subject_id: str, session_number: int, *, today: date) -> SessionTarget:
    """Check that ``subject_id`` may receive session ``session_number`` on ``today``.

    Parameters
    ----------
    study : toolkit.study.Study
        The study (arms, schedule, design).
    store : toolkit.store.Store
        The study's records.
    subject_id : str
        Subject identifier as enrolled.
    session_number : int
        1-based session of the course.
    today : date
        Calendar date of the session (from the session clock).

    Returns
    -------
    SessionTarget
        Arm(s), side(s) and prescriptions to deliver, with earlier records of this session.

    Raises
    ------
    NotEligible
        Listing every unmet criterion (exit code 1 on the command line).
    """
    from toolkit.errors import StoreError

    problems: list[str] = []
    schedule = study.schedule
    if not isinstance(session_number, int) or not 1 <= session_number <= schedule.sessions:
        raise NotEligible(
            f"session {session_number!r} is not a session of study {study.id}; accepted: 1–{schedule.sessions}"
        )
    try:
        record = store.subject(subject_id)
    except StoreError as exc:
        raise NotEligible(str(exc)) from None
    checks = dict(record.eligibility)
    why = {"treatment not discontinued": f"not met: study treatment ended on {record.treatment_ended_on}, no "
                                         "further sessions are given"}
    for criterion, ok in record.eligibility.items():
        if not ok:
            problems.append(f"{criterion}: {why.get(criterion, 'not met')}")
    serious = store.unresolved_serious_aes(subject_id)
    checks["no unresolved serious adverse event"] = not serious
    for ae in serious:
        problems.append(
            f"unresolved serious adverse event #{ae.ae_id} ({ae.term}, onset {ae.onset}); record its resolution first"
        )
    alloc = record.allocation
    checks["randomised"] = alloc is not None
    if alloc is None:
        problems.append(f"subject {subject_id} is not randomised; run `toolkit subject allocate` first")
    deliveries = store.deliveries(subject_id)
    first_date = _first_session_date(deliveries)
    if session_number == 1:
        study_day = 1 if first_date is None else (today - first_date).days + 1
        in_window = first_date is None or abs(study_day - 1) <= schedule.window_days
    elif first_date is None:
        study_day = 0
        in_window = False
        problems.append(f"session {session_number} cannot be given before session 1 (no session 1 on record)")
    else:
        study_day = (today - first_date).days + 1
        nominal = schedule.session_day(session_number)
        in_window = abs(study_day - nominal) <= schedule.window_days
        if not in_window:
            problems.append(
                f"session {session_number} is due on study day {nominal} ± {schedule.window_days} "
                f"({first_date.fromordinal(first_date.toordinal() + nominal - 1 - schedule.window_days)} – "
                f"{first_date.fromordinal(first_date.toordinal() + nominal - 1 + schedule.window_days)}); "
                f"{today} is study day {study_day}"
            )
    checks["session in window"] = in_window
    treatments: list[TreatmentTarget] = []
    if alloc is not None:
        if alloc.side_map:
            pairs = sorted(alloc.side_map.items())
        else:
            pairs = [(None, alloc.arm_id)]
        for side, arm_id in pairs:
            try:
                arm = study.arm(arm_id)
            except (KeyError, LookupError, ValueError):
                arm = None
            if arm is None:
                problems.append(f"allocated arm {arm_id!r} is not an arm of study {study.id}")
                continue
            earlier = _earlier(deliveries, session_number, arm_id, side)
            if earlier is None:
                treatments.append(TreatmentTarget(arm_id, side, arm.prescription))
            else:
                treatments.append(
                    TreatmentTarget(arm_id, side, arm.prescription, earlier.earlier_ids, earlier.first_id,
                                    earlier.delivered_s, earlier.completed_before)
                )
    if problems:
        raise NotEligible(
            f"subject {subject_id} is not eligible for session {session_number} of study {study.id} on {today}",
            details=problems,
        )
    return SessionTarget(
        subject_id=subject_id,
        session_number=session_number,
        study_day=study_day,
        session_date=today,
        design=str(getattr(study, "design", "parallel")),
        treatments=tuple(treatments),
        checks=checks,
    )
