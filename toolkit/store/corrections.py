"""Corrections: changing or deleting a stored row, with the old and new values and a reason audited.

One way for every surface: the command line (``toolkit data correct``), the site's forms and scripts all call
:meth:`Corrections.update_record`. Who may correct what follows the roles: the site corrects its own entries
(an investigator the subjects, consents, checklists, patch tests and adverse events it recorded), a data
manager any study record. Each new value goes through the same checks as a first entry, and text from a
command line is converted by the column's type (:func:`value_from_text`).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import JSON as JSONType
from sqlalchemy import Boolean, Date, Float, Integer

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.roles import AccessDenied, roles_with
from toolkit.store.safety import ae_values
from toolkit.store.values import as_date, fitzpatrick_type, sex_code

__all__ = ["CORRECTABLE_TABLES", "Corrections", "value_from_text"]

#: the study tables a correction may touch, by table name
CORRECTABLE_TABLES = {
    cls.__tablename__: cls
    for cls in (
        m.SubjectRow,
        m.ConsentRow,
        m.EligibilityCheckRow,
        m.PatchTestRow,
        m.AllocationRow,
        m.VisitRow,
        m.DeliveryRow,
        m.WaveformFileRow,
        m.PhotoRow,
        m.MeasurementRunRow,
        m.MeasurementRow,
        m.AssessmentRow,
        m.AdverseEventRow,
        m.DeviationRow,
    )
}

#: tables the site corrects itself (besides a data manager, who corrects any): table -> permission needed
_SITE_CORRECTS = {
    "subjects": "enroll",
    "consents": "enroll",
    "eligibility_checks": "enroll",
    "patch_tests": "enroll",
    "adverse_events": "record_safety",
    "deviations": "record_safety",
}

#: columns the system sets (keys, links, times of entry, the rating station's bookkeeping): never corrected
_FIXED = {"id", "study_id", "subject_pk", "recorded_at", "enrolled_at", "allocated_at", "added_at", "created_at",
          "rater", "rating_set", "repeat"}


def value_from_text(table: str, column: str, text: str) -> Any:
    """The value of ``text`` for ``table.column``, by the column's type (as typed on a command line).

    Empty text (or ``null``) clears a column that may be empty; ``yes``/``no``/``true``/``false`` fill a
    yes-no column; dates are ``YYYY-MM-DD``; JSON columns take JSON.
    """
    cls = CORRECTABLE_TABLES.get(table)
    if cls is None:
        raise DataError(f"table {table!r} cannot be corrected; accepted: {', '.join(sorted(CORRECTABLE_TABLES))}",
                        field="table")
    col = cls.__table__.columns.get(column)
    if col is None:
        raise DataError(_unknown_columns(table, cls, [column]), field=column)
    raw = str(text).strip()
    if raw.lower() in ("", "null", "none"):
        if not col.nullable:
            raise DataError(f"{table}.{column} cannot be empty", field=column)
        return None
    kind = col.type
    try:
        if isinstance(kind, Boolean):
            word = raw.lower()
            if word not in ("yes", "no", "true", "false", "y", "n"):
                raise ValueError
            return word in ("yes", "true", "y")
        if isinstance(kind, Integer):
            return int(raw)
        if isinstance(kind, Float):
            return float(raw)
        if isinstance(kind, Date):
            return date.fromisoformat(raw)
        if isinstance(kind, JSONType):
            return json.loads(raw)
    except (ValueError, json.JSONDecodeError):
        accepted = {Boolean: "yes or no", Integer: "a whole number", Float: "a number", Date: "a date YYYY-MM-DD",
                    JSONType: "JSON"}
        what = next(v for k, v in accepted.items() if isinstance(kind, k))
        raise DataError(f"{table}.{column} {raw!r} is not accepted; accepted: {what}", field=column) from None
    return raw


def _unknown_columns(table: str, cls: Any, unknown: list[str]) -> str:
    columns = sorted({a.key for a in cls.__mapper__.column_attrs} - _FIXED)
    return f"{table} has no column {', '.join(unknown)} that can be corrected; columns: {', '.join(columns)}"


class Corrections(StoreBase):
    """Corrections of stored rows (a reason is always required)."""

    def update_record(self, table: str, record_id: int, *, reason: str, **changes: Any) -> None:
        """Correct fields of a stored row; the old and new values and ``reason`` go to the audit trail.

        Parameters
        ----------
        table : str
            One of the study tables, e.g. ``"adverse_events"``, ``"subjects"``, ``"assessments"``.
        record_id : int
            The row's id.
        reason : str
            Why (required).
        **changes
            Column -> new value, checked as a first entry would be.

        Raises
        ------
        AccessDenied
            The user's roles do not correct this table (a data manager corrects any; the site its own entries).
        DataError
            Naming the field at fault (``fields``); nothing is written.
        """
        cls = self._table(table)
        self._require_correct(table)
        if not changes:
            raise DataError("nothing to change: give field=value pairs", field="changes")
        if not str(reason or "").strip():
            raise StoreError(f"a reason is required to change a row of '{table}' after first entry; say why "
                             "(on the command line: --reason '...')", field="reason")
        columns = {a.key for a in cls.__mapper__.column_attrs} - _FIXED
        unknown = sorted(set(changes) - columns)
        if unknown:
            raise DataError(_unknown_columns(table, cls, unknown), fields={k: f"{table} has no column {k} that "
                                                                                "can be corrected" for k in unknown})
        with self.session(reason=reason) as s:
            row = s.get(cls, int(record_id))
            if row is None or not self._in_study(s, row):
                raise StoreError(f"no row #{record_id} in {table} of study {self.study_id}", field="id")
            subject = s.get(m.SubjectRow, row.subject_pk) if hasattr(row, "subject_pk") else None
            if subject is not None:
                self._check_site(subject)
            changes = self._checked(table, row, changes)
            if table == "adverse_events" and subject is not None:
                self._check_session_of_onset(s, subject, {  # type: ignore[attr-defined]
                    "session_number": changes.get("session_number", row.session_number),
                    "onset": changes.get("onset", row.onset)})
            for k, v in changes.items():
                setattr(row, k, v)

    def delete_record(self, table: str, record_id: int, *, reason: str) -> None:
        """Delete a stored row (e.g. a duplicate entry); the old values and ``reason`` are audited."""
        cls = self._table(table)
        self._require_correct(table)
        with self.session(reason=reason) as s:
            row = s.get(cls, int(record_id))
            if row is None or not self._in_study(s, row):
                raise StoreError(f"no row #{record_id} in {table} of study {self.study_id}", field="id")
            if hasattr(row, "subject_pk"):
                self._check_site(s.get(m.SubjectRow, row.subject_pk))
            s.delete(row)

    def _require_correct(self, table: str) -> None:
        who = self._require("read_records", "correct stored records", any_role=True)
        site_permission = _SITE_CORRECTS.get(table)
        if who.can("correct") or (site_permission is not None and who.can(site_permission)):
            return
        roles = roles_with("correct") + ([r for r in roles_with(site_permission) if r not in roles_with("correct")]
                                         if site_permission else [])
        raise AccessDenied(
            f"user {who.describe()} may not correct stored records of {table}: that needs the role "
            f"{' or '.join(roles)}"
        )

    def _in_study(self, s: Any, row: Any) -> bool:
        """Whether ``row`` belongs to this store's study (one database may hold several)."""
        if hasattr(row, "study_id"):
            return row.study_id == self.study_id
        pk = getattr(row, "subject_pk", None)
        if pk is None:
            return True  # rows below a delivery or photo: their parent's study was checked when written
        subject = s.get(m.SubjectRow, pk)
        return subject is not None and subject.study_id == self.study_id

    def _checked(self, table: str, row: Any, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` after the checks a first entry gets."""
        if table == "adverse_events":
            fields = ("term", "soc", "severity", "serious", "relation", "onset", "resolved", "session_number",
                      "action_taken", "outcome")
            merged = {k: getattr(row, k) for k in fields} | changes
            values = ae_values(merged.pop("term"), merged.pop("soc"), merged.pop("severity"), merged.pop("serious"),
                               merged.pop("relation"), merged.pop("onset"), merged.pop("resolved"),
                               sessions=self.info.sessions_planned, **merged)
            return {k: values[k] for k in changes}
        out = dict(changes)
        if table == "subjects":
            from toolkit.store.subjects import _age_years

            if "age" in out:
                out["age"] = _age_years(out["age"])
            if "sex" in out:
                code = sex_code(out["sex"])
                if code is None:
                    raise DataError(f"sex {out['sex']!r} is not accepted; accepted: F, M, U", field="sex")
                out["sex"] = code
            if "fitzpatrick" in out:
                out["fitzpatrick"] = fitzpatrick_type(out["fitzpatrick"])
        for name in ("signed_on", "read_on", "checked_on", "onset", "resolved", "visit_on", "on"):
            if name in out and out[name] is not None:
                out[name] = as_date(out[name], name)
                if out[name] > date.today():
                    raise DataError(f"{name} {out[name]} is in the future", field=name)
        return out

    def _table(self, table: str) -> type[m.Base]:
        if table not in CORRECTABLE_TABLES:
            raise DataError(f"table {table!r} cannot be corrected; accepted: {', '.join(sorted(CORRECTABLE_TABLES))}",
                            field="table")
        return CORRECTABLE_TABLES[table]
