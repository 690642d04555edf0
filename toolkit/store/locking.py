"""The database lock: signed by a data manager, it freezes clinical data until a signed, reasoned unlock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.signatures import Signatures

__all__ = ["LockEvent", "Locking"]


@dataclass(frozen=True)
class LockEvent:
    """One lock or unlock of the database."""

    action: str
    reason: str
    by: str
    at: datetime


class Locking(Signatures):
    """Locking and unlocking the study's database."""

    def lock(self, *, reason: str) -> None:
        """Lock the database (signed ``locked``): clinical data can no longer change; unblinding may follow."""
        self._lock_action("lock", reason)

    def unlock(self, *, reason: str) -> None:
        """Unlock a locked database (signed ``unlocked``, with the reason), e.g. to correct a late query."""
        self._lock_action("unlock", reason)

    def _lock_action(self, action: str, reason: str) -> None:
        if not str(reason or "").strip():
            raise DataError(f"to {action} the database, give a reason (recorded and signed)")
        who = self._require("lock", f"{action} the database")
        with self.session(reason=reason, scope="lock") as s:
            last = self._lock_row(s.connection())
            locked = last is not None and last.action == "lock"
            if action == "lock" and locked:
                raise StoreError(f"study {self.study_id} is already locked (since {last.at:%Y-%m-%d %H:%M} UTC by {last.by})")
            if action == "unlock" and not locked:
                raise StoreError(f"study {self.study_id} is not locked; nothing to unlock")
            row = m.StudyLockRow(study_id=self.study_id, action=action, reason=str(reason).strip(), by=who.username)
            s.add(row)
            s.flush()
            self._sign_in(s, "study_locks", row.id, "locked" if action == "lock" else "unlocked")

    def lock_history(self) -> list[LockEvent]:
        """Every lock and unlock of the study, oldest first."""
        with self.reading() as s:
            rows = s.scalars(
                select(m.StudyLockRow).where(m.StudyLockRow.study_id == self.study_id).order_by(m.StudyLockRow.id)
            )
            return [LockEvent(r.action, r.reason, r.by, r.at) for r in rows]
