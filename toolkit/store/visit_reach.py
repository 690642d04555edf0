"""When a subject reached each visit of the schedule, and whether an assessment date fits it.

A clinician's score is taken at a visit the subject has reached, on a day that fits it:

* the baseline (the first visit before any session) on or after the day consent was signed and on or before
  the day of the first session;
* a visit after session ``k`` on or after the day session ``k`` was given (a record of that session exists);
* a visit on study day ``d`` (a follow-up) on or after study day ``d − window_days``, counted from the day of
  the first session;

never after the subject withdrew and never in the future. The day of a score taken from a photo is the day
the photo was taken.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.errors import DataError
from toolkit.store import models as m
from toolkit.store.study_view import StudyInfo, VisitInfo

__all__ = ["SubjectCalendar", "check_assessment_day", "subject_calendar"]


@dataclass(frozen=True)
class SubjectCalendar:
    """The dates that decide which visits a subject has reached."""

    subject_id: str
    consent_on: _dt.date | None
    withdrawn_on: _dt.date | None
    #: session number -> the day it was first given (any record of it: completed, aborted or interrupted)
    session_days: dict[int, _dt.date]

    @property
    def first_session_on(self) -> _dt.date | None:
        """Day of session 1, study day 1 (``None`` before it)."""
        return self.session_days.get(1)


def subject_calendar(s: Session, subject: m.SubjectRow) -> SubjectCalendar:
    """Consent, withdrawal and session days of ``subject`` as the database holds them."""
    consent = s.scalar(select(func.min(m.ConsentRow.signed_on)).where(m.ConsentRow.subject_pk == subject.id))
    rows = s.execute(
        select(m.DeliveryRow.session_number, func.min(m.DeliveryRow.started_at))
        .where(m.DeliveryRow.subject_pk == subject.id)
        .group_by(m.DeliveryRow.session_number)
    ).all()
    days = {int(k): (t.date() if isinstance(t, _dt.datetime) else t) for k, t in rows if t is not None}
    return SubjectCalendar(subject.subject_id, consent, subject.withdrawn_on, days)


def _window_days(info: StudyInfo) -> int:
    schedule = getattr(info.source, "schedule", None)
    try:
        return int(getattr(schedule, "window_days", 0) or 0)
    except (TypeError, ValueError):
        return 0


def check_assessment_day(info: StudyInfo, calendar: SubjectCalendar, visit: VisitInfo, day: _dt.date,
                         *, today: _dt.date | None = None) -> None:
    """Refuse an assessment of ``calendar``'s subject at ``visit`` on ``day`` that the visit cannot have had.

    Raises
    ------
    DataError
        Naming the subject, the visit, the date and what the schedule and the records allow.
    """
    today = today or _dt.date.today()
    who = f"subject {calendar.subject_id}, visit {visit.id} ({visit.name})"
    if day > today:
        raise DataError(f"{who}: assessed_on {day} is in the future")
    if calendar.consent_on is None:
        raise DataError(f"{who}: no consent is on record; a subject is assessed only after consent")
    if day < calendar.consent_on:
        raise DataError(f"{who}: assessed_on {day} is before the consent signed on {calendar.consent_on}")
    if calendar.withdrawn_on is not None and day > calendar.withdrawn_on:
        raise DataError(f"{who}: assessed_on {day} is after the subject withdrew on {calendar.withdrawn_on}")
    first = calendar.first_session_on
    baseline = info.baseline_visit
    if visit.after_session is not None:
        k = int(visit.after_session)
        given = calendar.session_days.get(k)
        if given is None:
            raise DataError(f"{who}: the visit is not reached, session {k} has not been given")
        if day < given:
            raise DataError(f"{who}: assessed_on {day} is before session {k}, given on {given}")
    elif baseline is not None and visit.id == baseline.id:
        if first is not None and day > first:
            raise DataError(f"{who}: assessed_on {day} is after the first session ({first}); a baseline score "
                            "is taken on or before the day of session 1")
    elif visit.day is not None and visit.day > 1:
        if first is None:
            raise DataError(f"{who}: the visit is not reached, it falls on study day {visit.day} and no session "
                            "has been given")
        window = _window_days(info)
        earliest = first + _dt.timedelta(days=visit.day - 1 - window)
        if day < earliest:
            raise DataError(f"{who}: assessed_on {day} is before the visit's window opens on {earliest} (study "
                            f"day {visit.day} − {window} days, counted from session 1 on {first})")
