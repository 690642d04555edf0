"""Disposition: a subject's end of study treatment and withdrawal from the study.

Two kinds of event, each with a date and a reason from the CDISC NCOMPLT terms (plus free-text detail):

* ``discontinue_treatment``: no more sessions, the subject stays in the study (follow-up visits go on);
* ``withdraw_subject``: the subject leaves the study; treatment ends on the same day if it had not already.

Both are audited like every record. A withdrawal also sets the subject's ``withdrawn_on`` date, which the
delivery eligibility check reads to refuse further sessions.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from toolkit.errors import DataError
from toolkit.store import models as m

if TYPE_CHECKING:
    from toolkit.store.store import Store

__all__ = ["REASONS", "discontinue_treatment", "disposition_events", "reason_term", "withdraw_subject"]

#: reasons for not completing (CDISC controlled terminology NCOMPLT)
REASONS = (
    "ADVERSE EVENT",
    "DEATH",
    "LACK OF EFFICACY",
    "LOST TO FOLLOW-UP",
    "PHYSICIAN DECISION",
    "PROTOCOL DEVIATION",
    "PREGNANCY",
    "STUDY TERMINATED BY SPONSOR",
    "WITHDRAWAL BY SUBJECT",
    "OTHER",
)


def reason_term(reason: str) -> str:
    """The NCOMPLT term for ``reason`` (case, ``_`` and ``-`` are forgiven), or a :class:`DataError`."""
    text = " ".join(str(reason or "").replace("_", " ").split()).upper()
    for term in REASONS:
        if text == term or text == term.replace("-", " "):
            return term
    raise DataError(f"reason {reason!r} is not a disposition reason; accepted: {', '.join(REASONS)} "
                    "(add detail in free text with --detail)")


def _as_date(value: Any, what: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{what} {value!r} is not a date; write it as YYYY-MM-DD") from None


def _window(store: Store, s: Any, subject: m.SubjectRow) -> tuple[_dt.date, _dt.date | None]:
    """(earliest, latest) date a disposition event of the subject may carry."""
    consent = s.scalar(select(m.ConsentRow.signed_on).where(m.ConsentRow.subject_pk == subject.id)
                       .order_by(m.ConsentRow.signed_on))
    earliest = consent or subject.enrolled_at.date()
    first = s.scalar(select(m.DeliveryRow.started_at).where(m.DeliveryRow.subject_pk == subject.id)
                     .order_by(m.DeliveryRow.started_at))
    days = [v.day for v in store.info.visits if v.day is not None]
    latest = None
    if first is not None and days:
        latest = first.date() + _dt.timedelta(days=max(days) - 1)
    return earliest, latest


def _record(store: Store, subject_id: str, *, scope: str, on: Any, reason: str, detail: str | None) -> int:
    term = reason_term(reason)
    day = _as_date(on, "date")
    if detail is not None and len(str(detail).encode("utf-8")) > 200:
        raise DataError(f"the detail of a disposition event is {len(str(detail).encode('utf-8'))} bytes; keep it "
                        "to 200 (it becomes DCSREASP in ADSL, a SAS XPORT v5 character variable)")
    verb = "withdrawal" if scope == "study" else "end of treatment"
    store._require("enroll", f"record a subject's {verb}")
    with store.session(reason=f"{verb}: {term}" + (f" ({detail})" if detail else "")) as s:
        subject = store._subject(s, subject_id)
        earliest, latest = _window(store, s, subject)
        if day < earliest:
            raise DataError(f"subject {subject_id}: {verb} on {day} is before consent/enrolment ({earliest})")
        if latest is not None and day > latest:
            raise DataError(f"subject {subject_id}: {verb} on {day} is after the last scheduled visit ({latest}); "
                            "a subject who attended every visit completed the study")
        if day > _dt.date.today():
            raise DataError(f"subject {subject_id}: {verb} on {day} is in the future")
        done = {e.scope: e for e in s.scalars(select(m.DispositionEventRow)
                                               .where(m.DispositionEventRow.subject_pk == subject.id))}
        if scope == "treatment" and "study" in done:
            raise DataError(f"subject {subject_id} has withdrawn from the study; treatment ended then")
        if scope in done:
            raise DataError(f"subject {subject_id}: {verb} is already recorded (on {done[scope].on}, "
                            f"{done[scope].reason})")
        rows = [m.DispositionEventRow(subject_pk=subject.id, scope=scope, on=day, reason=term, detail=detail)]
        if scope == "study":
            subject.withdrawn_on = day
            if "treatment" not in done:
                rows.append(m.DispositionEventRow(subject_pk=subject.id, scope="treatment", on=day, reason=term,
                                                  detail=detail))
        s.add_all(rows)
        s.flush()
        return rows[0].id


def withdraw_subject(store: Store, subject_id: str, *, on: Any, reason: str, detail: str | None = None) -> int:
    """Record that the subject left the study on ``on`` for ``reason`` (an NCOMPLT term); return the event id.

    Raises
    ------
    DataError
        An unknown reason, a date before consent, after the last scheduled visit or in the future, or a
        withdrawal already on record.
    """
    return _record(store, subject_id, scope="study", on=on, reason=reason, detail=detail)


def discontinue_treatment(store: Store, subject_id: str, *, on: Any, reason: str, detail: str | None = None
                          ) -> int:
    """Record that the subject stopped study treatment on ``on`` and stays in the study; return the event id."""
    return _record(store, subject_id, scope="treatment", on=on, reason=reason, detail=detail)


def disposition_events(store: Store) -> pd.DataFrame:
    """Every disposition event: ``subject_id``, ``scope``, ``on``, ``reason``, ``detail``, ``recorded_at``."""
    store._require("read_records", "read disposition events")
    with store.connect() as conn:
        result = conn.execute(
            select(m.SubjectRow.subject_id, m.DispositionEventRow.scope, m.DispositionEventRow.on,
                   m.DispositionEventRow.reason, m.DispositionEventRow.detail, m.DispositionEventRow.recorded_at)
            .join(m.SubjectRow, m.SubjectRow.id == m.DispositionEventRow.subject_pk)
            .where(m.SubjectRow.study_id == store.study_id)
            .order_by(m.DispositionEventRow.id))
        return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
