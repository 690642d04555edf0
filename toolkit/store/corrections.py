"""Corrections: changing or deleting a stored row, with the old and new values and a reason audited."""

from __future__ import annotations

from typing import Any

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.safety import ae_values

__all__ = ["CORRECTABLE_TABLES", "Corrections"]

#: the study tables a correction may touch, by table name
CORRECTABLE_TABLES = {
    cls.__tablename__: cls
    for cls in (
        m.SubjectRow,
        m.ConsentRow,
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
            Column -> new value.
        """
        self._require("correct", "correct stored records")
        cls = self._table(table)
        if not changes:
            raise DataError("nothing to change: pass column=value pairs")
        with self.session(reason=reason) as s:
            row = s.get(cls, int(record_id))
            if row is None:
                raise StoreError(f"no row #{record_id} in {table}")
            columns = {a.key for a in cls.__mapper__.column_attrs} - {"id"}
            unknown = sorted(set(changes) - columns)
            if unknown:
                raise DataError(
                    f"{table} has no column {', '.join(unknown)}; columns: {', '.join(sorted(columns))}"
                )
            if table == "adverse_events":
                merged = {
                    k: getattr(row, k) for k in ("term", "soc", "severity", "serious", "relation", "onset")
                }
                merged["resolved"] = row.resolved
                merged.update(changes)
                changes = ae_values(**merged)
            for k, v in changes.items():
                setattr(row, k, v)

    def delete_record(self, table: str, record_id: int, *, reason: str) -> None:
        """Delete a stored row (e.g. a duplicate entry); the old values and ``reason`` are audited."""
        self._require("correct", "delete stored records")
        cls = self._table(table)
        with self.session(reason=reason) as s:
            row = s.get(cls, int(record_id))
            if row is None:
                raise StoreError(f"no row #{record_id} in {table}")
            s.delete(row)

    def _table(self, table: str) -> type[m.Base]:
        if table not in CORRECTABLE_TABLES:
            raise DataError(f"table {table!r} cannot be corrected; accepted: {', '.join(sorted(CORRECTABLE_TABLES))}")
        return CORRECTABLE_TABLES[table]

