"""Blinding: the recorded, signed unblinding of a study's analysis outputs, allowed only after database lock."""

from __future__ import annotations

from sqlalchemy import func, select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.locking import Locking

__all__ = ["Blinding"]


class Blinding(Locking):
    """Whether, by whom and why the study was unblinded."""

    def unblind(self, *, reason: str) -> None:
        """Unblind the study: recorded with the reason and signed ``unblinded`` by an unblinded statistician.

        Refused unless the database is locked (unblinding comes after the lock, ICH E9); later exports and
        reports carry real arm names.
        """
        if not str(reason or "").strip():
            raise DataError("unblinding needs a reason (e.g. 'database lock, final analysis')")
        who = self._require("unblind", "unblind the study")
        if not self.is_locked:
            raise StoreError(
                f"study {self.study_id} cannot be unblinded before its database is locked; a data manager locks "
                "it first: toolkit study lock --study ... --reason '...'"
            )
        with self.session(reason=reason, scope="unblind") as s:
            row = m.UnblindingRow(study_id=self.study_id, by=who.username, reason=str(reason).strip())
            s.add(row)
            s.flush()
            self._sign_in(s, "unblindings", row.id, "unblinded")

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

    def _may_see_arms(self) -> bool:
        """True when the logged-in user may see real arms (the study is unblinded, or their role allows)."""
        return self.is_unblinded or (self.identity is not None and self.identity.can("read_allocation"))
