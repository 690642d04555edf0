"""Clinician assessments: a score on one of the study's scales at a visit (the blinded rater's station is
:mod:`toolkit.store.ratings`)."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from toolkit.errors import DataError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.values import as_date
from toolkit.store.visit_reach import SubjectCalendar, check_assessment_day, subject_calendar

__all__ = ["Assessments"]


class Assessments(StoreBase):
    """Scores on the study's clinician scales, checked against each scale's range."""

    def add_assessment(
        self,
        subject_id: str,
        *,
        visit_id: str,
        scale: str,
        score: float,
        assessor: str,
        assessed_on: date | str,
        side: str | None = None,
    ) -> int:
        """Record a clinician's score on a scale at a visit; return its id.

        The scale must be one of the study's scale endpoints and the score inside its range; ``assessed_on``
        is the day the subject was assessed, which must fit a visit the subject has reached (see
        :mod:`toolkit.store.visit_reach`); ``side`` (``"left"``/``"right"``) marks a per-side score in
        split-face studies.
        """
        self._require("assess", "record clinician assessments")
        value = self._check_score(scale, score)
        day = as_date(assessed_on, "assessed_on")
        if not str(assessor or "").strip():
            raise DataError("assessor is required (who scored)")
        if side is not None and side not in ("left", "right"):
            raise DataError(f"side {side!r} is not accepted; accepted: left, right (or leave it out)")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            self.check_assessment_day(s, subject, visit_id, day)
            visit = self._visit(s, subject, visit_id)
            row = m.AssessmentRow(
                subject_pk=subject.id,
                visit_pk=visit.id,
                assessed_on=day,
                scale=scale,
                side=side,
                score=value,
                assessor=str(assessor),
            )
            s.add(row)
            s.flush()
            return row.id

    def check_assessment_day(self, s: Any, subject: m.SubjectRow, visit_id: str, day: date,
                             calendars: dict[int, SubjectCalendar] | None = None) -> None:
        """Refuse ``day`` for a score of ``subject`` at ``visit_id`` unless the subject had reached the visit.

        ``calendars`` caches each subject's calendar across the rows of an import.
        """
        info = self.info.visit(visit_id)
        if info is None:
            return  # an unknown visit is refused by the visit lookup, with the accepted ones
        calendar = calendars.get(subject.id) if calendars is not None else None
        if calendar is None:
            calendar = subject_calendar(s, subject)
            if calendars is not None:
                calendars[subject.id] = calendar
        check_assessment_day(self.info, calendar, info, day)

    def _check_score(self, scale: str, score: Any) -> float:
        scales = self.info.scales
        if scales and scale not in scales:
            raise DataError(
                f"scale {scale!r} is not a scale of study {self.study_id}; accepted: {', '.join(scales)}"
            )
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise DataError(f"score {score!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"score {score!r} is not a finite number")
        low, high = self.info.scale_range(scale)
        if low is not None and high is not None and not low <= value <= high:
            raise DataError(f"{scale} score {value:g} is outside the scale's range {low:g}–{high:g}")
        return value

