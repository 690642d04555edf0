"""Safety records: adverse events and protocol deviations."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from toolkit.errors import DataError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.records import AdverseEventRecord
from toolkit.store.values import as_date, choice

__all__ = [
    "AE_ACTIONS",
    "AE_OUTCOMES",
    "AE_RELATIONS",
    "AE_SEVERITIES",
    "DEVIATION_CATEGORIES",
    "RESOLVED_OUTCOMES",
    "Safety",
    "ae_values",
]

#: AE severity grades
AE_SEVERITIES = ("mild", "moderate", "severe")
#: AE relation to the treatment
AE_RELATIONS = ("not related", "unlikely", "possible", "probable", "related")
#: protocol deviation categories
DEVIATION_CATEGORIES = ("minor", "major")
#: action taken with the treatment (CDISC AEACN, in words)
AE_ACTIONS = ("dose not changed", "dose reduced", "treatment interrupted", "treatment withdrawn", "not applicable",
              "unknown")
#: outcome of the event (CDISC AEOUT, in words)
AE_OUTCOMES = ("recovered/resolved", "recovering/resolving", "not recovered/not resolved",
               "recovered/resolved with sequelae", "fatal", "unknown")
#: outcomes that end the event (they need an end date, and an end date needs one of them)
RESOLVED_OUTCOMES = ("recovered/resolved", "recovered/resolved with sequelae", "fatal")
#: the AE fields a form or a correction may set, beyond the subject
AE_FIELDS = ("term", "soc", "severity", "serious", "relation", "onset", "resolved", "session_number",
             "action_taken", "outcome")


class Safety(StoreBase):
    """Adverse events and protocol deviations of the study's subjects."""

    def add_adverse_event(
        self,
        subject_id: str,
        *,
        term: str,
        severity: str,
        serious: bool,
        relation: str,
        onset: date,
        soc: str | None = None,
        resolved: date | None = None,
        session_number: int | None = None,
        action_taken: str | None = None,
        outcome: str | None = None,
    ) -> int:
        """Record an adverse event; return its id.

        Parameters
        ----------
        subject_id : str
        term : str
            The verbatim term as reported; coded at export with the study's AE dictionary.
        severity : {'mild', 'moderate', 'severe'}
        serious : bool
            A serious adverse event (an unresolved one stops further sessions).
        relation : {'not related', 'unlikely', 'possible', 'probable', 'related'}
        onset : date
        soc : str, optional
            System organ class; default: the dictionary's, when it codes the term (required otherwise).
        resolved : date, optional
            End date (on or after the onset).
        session_number : int, optional
            The session at or after which the event began: a session of the course the subject has started on
            or before the onset (``None``: before the first session).
        action_taken : str, optional
            One of :data:`AE_ACTIONS`.
        outcome : str, optional
            One of :data:`AE_OUTCOMES`; an end date needs a resolved outcome and a resolved outcome an end date.
            ``None`` leaves it to the end date (resolved or not).

        Raises
        ------
        DataError
            Naming the field at fault (``fields``); nothing is written.
        """
        self._require("record_safety", "record adverse events")
        values = ae_values(term, soc or self._coded_soc(term), severity, serious, relation, onset, resolved,
                           session_number=session_number, action_taken=action_taken, outcome=outcome,
                           sessions=self.info.sessions_planned)
        with self.session() as s:
            subject = self._subject(s, subject_id)
            self._check_session_of_onset(s, subject, values)
            row = m.AdverseEventRow(subject_pk=subject.id, **values)
            s.add(row)
            s.flush()
            return row.id

    def _coded_soc(self, term: Any) -> str | None:
        """The system organ class the study's dictionary gives ``term`` (``None``: uncoded or no dictionary)."""
        dictionary = self.ae_dictionary_loaded()
        coded = dictionary.code(str(term or "")) if dictionary is not None else None
        return coded.system_organ_class if coded else None

    def ae_dictionary_loaded(self) -> Any:
        """The study's AE dictionary (read once), or ``None`` when the study names none."""
        cached = getattr(self, "_ae_dictionary_cache", None)
        if cached is None and self.info.ae_dictionary:
            from toolkit.study.ae_dictionary import load_ae_dictionary

            cached = load_ae_dictionary(self.info.ae_dictionary)
            self._ae_dictionary_cache = cached
        return cached

    def _check_session_of_onset(self, s: Any, subject: m.SubjectRow, values: dict[str, Any]) -> None:
        number = values.get("session_number")
        if number is None:
            return
        started = s.scalars(
            select(m.DeliveryRow.started_at).where(
                m.DeliveryRow.subject_pk == subject.id, m.DeliveryRow.session_number == number
            )
        ).all()
        if not started:
            raise DataError(f"session of onset {number}: subject {subject.subject_id} has no session {number} on "
                            "record", field="session_number")
        first = min(started).date()
        if first > values["onset"]:
            raise DataError(f"session of onset {number} was on {first}, after the onset {values['onset']}",
                            field="session_number")

    def correct_adverse_event(self, ae_id: int, *, reason: str, **changes: Any) -> None:
        """Correct fields of an adverse event (the same checks as a new one); the old and new values and
        ``reason`` go to the audit trail. Shorthand for ``update_record("adverse_events", ae_id, ...)``."""
        self.update_record("adverse_events", ae_id, reason=reason, **changes)  # type: ignore[attr-defined]

    def _ae_records(self, where: Any) -> list[AdverseEventRecord]:
        with self.reading() as s:
            rows = s.execute(
                select(m.AdverseEventRow, m.SubjectRow.subject_id)
                .join(m.SubjectRow, m.SubjectRow.id == m.AdverseEventRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id, where)
                .order_by(m.AdverseEventRow.id)
            ).all()
        return [
            AdverseEventRecord(
                a.id, sid, a.term, a.soc, a.severity, a.serious, a.relation, a.onset, a.resolved,
                a.session_number, a.action_taken, a.outcome or _derived_outcome(a.resolved),
            )
            for a, sid in rows
        ]

    def adverse_events(self, subject_id: str | None = None) -> list[AdverseEventRecord]:
        """Adverse events (optionally of one subject)."""
        self._require("read_records", "read adverse events")
        where = m.SubjectRow.subject_id == subject_id if subject_id else m.AdverseEventRow.id.is_not(None)
        return self._ae_records(where)

    def unresolved_serious_aes(self, subject_id: str) -> list[AdverseEventRecord]:
        """Serious adverse events of the subject that have no resolution date (treatment must not go on)."""
        self._require("read_records", "read adverse events")
        return self._ae_records(
            (m.SubjectRow.subject_id == subject_id)
            & m.AdverseEventRow.serious.is_(True)
            & m.AdverseEventRow.resolved.is_(None)
        )

    def add_deviation(self, subject_id: str, *, description: str, category: str) -> int:
        """Record a protocol deviation (``minor`` or ``major``; major ones exclude from per-protocol)."""
        self._require("record_safety", "record protocol deviations")
        cat = choice(category, DEVIATION_CATEGORIES, "deviation category")
        if not str(description or "").strip():
            raise DataError("a protocol deviation needs a description")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            row = m.DeviationRow(subject_pk=subject.id, description=str(description), category=cat)
            s.add(row)
            s.flush()
            return row.id


def _derived_outcome(resolved: date | None) -> str:
    return "recovered/resolved" if resolved is not None else "not recovered/not resolved"


def ae_values(
    term: Any,
    soc: Any,
    severity: Any,
    serious: Any,
    relation: Any,
    onset: Any,
    resolved: Any,
    *,
    session_number: Any = None,
    action_taken: Any = None,
    outcome: Any = None,
    sessions: int | None = None,
) -> dict[str, Any]:
    """The checked column values of an adverse event; each refusal names its field (``DataError.fields``)."""
    if not str(term or "").strip():
        raise DataError("adverse event term is required", field="term")
    if not str(soc or "").strip():
        raise DataError("adverse event system organ class (soc) is required: the study's dictionary does not "
                        "code this term, so choose one", field="soc")
    if not isinstance(serious, bool):
        raise DataError(f"serious {serious!r} must be True or False", field="serious")
    onset_d = as_date(onset, "onset")
    resolved_d = as_date(resolved, "resolved") if resolved not in (None, "") else None
    if onset_d > date.today():
        raise DataError(f"onset {onset_d} is in the future", field="onset")
    if resolved_d is not None and resolved_d < onset_d:
        raise DataError(f"resolved {resolved_d} is before onset {onset_d}", field="resolved")
    if resolved_d is not None and resolved_d > date.today():
        raise DataError(f"resolved {resolved_d} is in the future", field="resolved")
    number = None
    if session_number not in (None, ""):
        try:
            number = int(session_number)
        except (TypeError, ValueError):
            raise DataError(f"session of onset {session_number!r} is not a session number",
                            field="session_number") from None
        if number < 1 or (sessions is not None and number > sessions):
            raise DataError(f"session of onset {number} is not a session of the course (1–{sessions or '…'})",
                            field="session_number")
    action = choice(action_taken, AE_ACTIONS, "action_taken") if action_taken not in (None, "") else None
    out = choice(outcome, AE_OUTCOMES, "outcome") if outcome not in (None, "") else None
    if out is not None:
        if resolved_d is not None and out not in RESOLVED_OUTCOMES:
            raise DataError(f"outcome {out!r} does not fit an event that ended on {resolved_d}; accepted with an "
                            f"end date: {', '.join(RESOLVED_OUTCOMES)}", field="outcome")
        if resolved_d is None and out in RESOLVED_OUTCOMES:
            raise DataError(f"outcome {out!r} needs the date the event ended", field="resolved")
    return {
        "term": str(term).strip(),
        "soc": str(soc).strip(),
        "severity": choice(severity, AE_SEVERITIES, "severity"),
        "serious": serious,
        "relation": choice(relation, AE_RELATIONS, "relation"),
        "onset": onset_d,
        "resolved": resolved_d,
        "session_number": number,
        "action_taken": action,
        "outcome": out,
    }
