"""The treatment course and its photo/assessment visits.

Study day 1 is the day of the first session (CDISC convention: there is no day 0). Session ``k`` falls on
day ``1 + (k - 1) · interval_days``, within ± ``window_days``. A visit is one of:

- baseline: ``after_session`` empty and day ≤ 1 (photos before the first session);
- after session ``k``: ``after_session: k`` (1 ≤ k ≤ sessions), on the day of session ``k`` unless ``day``
  says otherwise (it must stay within the window);
- follow-up: ``after_session`` empty and a day after the last session.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from toolkit.study.problems import Problem, raise_problems

__all__ = ["Visit", "Schedule"]

_VISIT_ID = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")


class Visit(BaseModel):
    """One photo/assessment visit (CDISC ``AVISIT``/``AVISITN``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: short id, e.g. ``BASELINE``, ``S4``, ``FU`` (uppercase, ≤ 8 characters)
    id: str
    #: readable name (``AVISIT``), e.g. "After session 4"
    name: str = Field(min_length=1, max_length=40)
    #: visit number (``AVISITN``), increasing with time
    number: int = Field(ge=0, strict=True)
    #: study day (day 1 = first session); filled in from ``after_session`` when the file leaves it out
    day: int | None = Field(default=None, strict=True)
    #: the session this visit follows, or empty for baseline and follow-up
    after_session: int | None = Field(default=None, ge=1, strict=True)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _VISIT_ID.match(value):
            raise ValueError(
                f"visit id {value!r} must be 1–8 characters, uppercase letters, digits or _, starting with a "
                "letter (e.g. BASELINE, S4, FU)"
            )
        return value

    @property
    def kind(self) -> Literal["baseline", "treatment", "follow_up"]:
        """``baseline``, ``treatment`` (after a session) or ``follow_up``."""
        if self.after_session is not None:
            return "treatment"
        return "baseline" if (self.day if self.day is not None else 1) <= 1 else "follow_up"


class Schedule(BaseModel):
    """Number of sessions, their spacing and the visits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: number of treatment sessions in the course
    sessions: int = Field(ge=1, le=200, strict=True)
    #: days between consecutive sessions
    interval_days: int = Field(ge=1, le=90, strict=True)
    #: allowed deviation of a session or visit from its nominal day (± days)
    window_days: int = Field(default=0, ge=0, strict=True)
    #: photo/assessment visits, in time order
    visits: tuple[Visit, ...] = Field(min_length=1)

    @field_validator("window_days")
    @classmethod
    def _window_below_interval(cls, value: int, info) -> int:
        interval = info.data.get("interval_days")
        if interval is not None and 2 * value >= interval:
            raise ValueError(
                f"a window of ±{value} days lets sessions {interval} days apart swap or coincide; "
                f"use window_days < {interval / 2:g}"
            )
        return value

    def session_day(self, session: int) -> int:
        """Nominal study day of ``session`` (1-based)."""
        return 1 + (session - 1) * self.interval_days

    @property
    def session_days(self) -> list[int]:
        """Nominal study day of every session (each may move by ± ``window_days``)."""
        return [self.session_day(k) for k in range(1, self.sessions + 1)]

    def session_window(self, session: int) -> tuple[int, int]:
        """First and last study day allowed for ``session`` (1-based)."""
        if not 1 <= session <= self.sessions:
            raise ValueError(f"session {session} is outside the course (1–{self.sessions})")
        day = self.session_day(session)
        return day - self.window_days, day + self.window_days

    @property
    def last_session_day(self) -> int:
        """Nominal study day of the last session."""
        return self.session_day(self.sessions)

    def visit_day(self, visit: Visit) -> int:
        """Nominal study day of ``visit`` (its ``day``, else the day of the session it follows)."""
        if visit.day is not None:
            return visit.day
        if visit.after_session is not None:
            return self.session_day(visit.after_session)
        return 1

    def visit(self, visit_id: str) -> Visit:
        """The visit with id ``visit_id``."""
        for visit in self.visits:
            if visit.id == visit_id:
                return visit
        raise KeyError(f"no visit {visit_id!r}; visits: {', '.join(v.id for v in self.visits)}")

    @property
    def baseline(self) -> Visit:
        """The baseline visit."""
        return next(v for v in self.visits if v.kind == "baseline")

    @model_validator(mode="after")
    def _visits_fit_course(self) -> Schedule:
        problems: list[Problem] = []
        seen_ids: dict[str, int] = {}
        seen_numbers: dict[int, int] = {}
        for i, visit in enumerate(self.visits):
            where = ("visits", i)
            if visit.id in seen_ids:
                problems.append(Problem((*where, "id"), f"visit id {visit.id} repeats visit {seen_ids[visit.id]}"))
            seen_ids.setdefault(visit.id, i)
            if visit.number in seen_numbers:
                problems.append(
                    Problem((*where, "number"), f"visit number {visit.number} repeats visit {seen_numbers[visit.number]}")
                )
            seen_numbers.setdefault(visit.number, i)
            if visit.after_session is not None:
                if visit.after_session > self.sessions:
                    problems.append(
                        Problem(
                            (*where, "after_session"),
                            f"visit {visit.id} is after session {visit.after_session} of {self.sessions}; "
                            f"accepted: 1–{self.sessions}",
                            value=visit.after_session,
                        )
                    )
                elif visit.day is not None:
                    nominal = self.session_day(visit.after_session)
                    if abs(visit.day - nominal) > self.window_days:
                        problems.append(
                            Problem(
                                (*where, "day"),
                                f"visit {visit.id} on day {visit.day} does not follow session "
                                f"{visit.after_session} (day {nominal} ± {self.window_days}); leave day out or "
                                f"use {nominal - self.window_days}–{nominal + self.window_days}",
                                value=visit.day,
                            )
                        )
            elif visit.day is not None and 1 < visit.day <= self.last_session_day:
                problems.append(
                    Problem(
                        (*where, "day"),
                        f"visit {visit.id} on day {visit.day} falls inside the course (days 1–"
                        f"{self.last_session_day}); name the session it follows with after_session, or use day ≤ 1 "
                        f"(baseline) or > {self.last_session_day} (follow-up)",
                        value=visit.day,
                    )
                )
        baselines = [i for i, v in enumerate(self.visits) if v.kind == "baseline"]
        if len(baselines) != 1:
            problems.append(
                Problem(
                    ("visits",),
                    f"the schedule needs exactly one baseline visit (no after_session, day ≤ 1); found {len(baselines)}",
                )
            )
        if not problems:
            days = [self.visit_day(v) for v in self.visits]
            numbers = [v.number for v in self.visits]
            for i in range(1, len(self.visits)):
                if days[i] < days[i - 1] or numbers[i] <= numbers[i - 1]:
                    problems.append(
                        Problem(
                            ("visits", i),
                            f"visit {self.visits[i].id} (day {days[i]}, number {numbers[i]}) is listed after "
                            f"{self.visits[i - 1].id} (day {days[i - 1]}, number {numbers[i - 1]}); list visits in "
                            "time order with increasing numbers",
                        )
                    )
        raise_problems("Schedule", problems)
        # every visit carries its study day from here on (the file may leave it to after_session)
        filled = tuple(v if v.day is not None else v.model_copy(update={"day": self.visit_day(v)}) for v in self.visits)
        object.__setattr__(self, "visits", filled)
        return self
