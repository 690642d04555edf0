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

__all__ = ["AE_RELATIONS", "AE_SEVERITIES", "DEVIATION_CATEGORIES", "Safety", "ae_values"]

#: AE severity grades
AE_SEVERITIES = ("mild", "moderate", "severe")
#: AE relation to the treatment
AE_RELATIONS = ("not related", "unlikely", "possible", "probable", "related")
#: protocol deviation categories
DEVIATION_CATEGORIES = ("minor", "major")


class Safety(StoreBase):
    """Adverse events and protocol deviations of the study's subjects."""

    def add_adverse_event(
        self,
        subject_id: str,
        *,
        term: str,
        soc: str,
        severity: str,
        serious: bool,
        relation: str,
        onset: date,
        resolved: date | None = None,
    ) -> int:
        """Record an adverse event; return its id."""
        self._require("record_safety", "record adverse events")
        values = ae_values(term, soc, severity, serious, relation, onset, resolved)
        with self.session() as s:
            subject = self._subject(s, subject_id)
            row = m.AdverseEventRow(subject_pk=subject.id, **values)
            s.add(row)
            s.flush()
            return row.id

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
                a.id, sid, a.term, a.soc, a.severity, a.serious, a.relation, a.onset, a.resolved
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


def ae_values(
    term: Any, soc: Any, severity: Any, serious: Any, relation: Any, onset: Any, resolved: Any
) -> dict[str, Any]:
    """The checked column values of an adverse event (term, SOC, severity, seriousness, relation, dates)."""
    if not str(term or "").strip():
        raise DataError("adverse event term is required")
    if not str(soc or "").strip():
        raise DataError("adverse event system organ class (soc) is required")
    if not isinstance(serious, bool):
        raise DataError(f"serious {serious!r} must be True or False")
    onset_d = as_date(onset, "onset")
    resolved_d = as_date(resolved, "resolved") if resolved not in (None, "") else None
    if onset_d > date.today():
        raise DataError(f"onset {onset_d} is in the future")
    if resolved_d is not None and resolved_d < onset_d:
        raise DataError(f"resolved {resolved_d} is before onset {onset_d}")
    return {
        "term": str(term).strip(),
        "soc": str(soc).strip(),
        "severity": choice(severity, AE_SEVERITIES, "severity"),
        "serious": serious,
        "relation": choice(relation, AE_RELATIONS, "relation"),
        "onset": onset_d,
        "resolved": resolved_d,
    }

