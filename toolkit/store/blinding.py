"""Blinding: the recorded unblinding of a study's analysis outputs."""

from __future__ import annotations

from sqlalchemy import func, select

from toolkit.errors import DataError
from toolkit.store import models as m
from toolkit.store.base import StoreBase

__all__ = ["Blinding"]


class Blinding(StoreBase):
    """Whether, by whom and why the study was unblinded."""

    def unblind(self, *, by: str, reason: str) -> None:
        """Record the unblinding of analysis outputs (who, why); later exports carry real arm names."""
        if not str(by or "").strip():
            raise DataError("unblinding needs the name of the person who unblinds (by=...)")
        if not str(reason or "").strip():
            raise DataError("unblinding needs a reason (e.g. 'database lock, final analysis')")
        with self.session(reason=reason) as s:
            s.add(m.UnblindingRow(study_id=self.study_id, by=str(by), reason=str(reason)))

    @property
    def is_unblinded(self) -> bool:
        """True once an unblinding has been recorded."""
        with self.connect() as conn:
            return (
                conn.scalar(
                    select(func.count(m.UnblindingRow.id)).where(m.UnblindingRow.study_id == self.study_id)
                )
                or 0
            ) > 0

