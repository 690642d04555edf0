"""Allocation: a subject takes the next unused row of the allocation list in their stratum."""

from __future__ import annotations

from sqlalchemy import select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.allocation_list import AllocationList, code_map
from toolkit.store.ledger import LEDGER_FILE, append_ledger, read_ledger
from toolkit.store.records import Allocation
from toolkit.store.subjects import Subjects, allocation_record

__all__ = ["Allocations"]


class Allocations(Subjects):
    """Randomisation of eligible subjects and the blinded arm codes."""

    def arm_codes(self) -> tuple[dict[str, str], str]:
        """The arm -> blinded code map and its source (``allocation.json`` path, or ``"derived"``)."""
        self._require("read_allocation", "see which blinded code is which arm")
        return self._code_map()

    def _code_map(self) -> tuple[dict[str, str], str]:
        """:meth:`arm_codes` without the role check, for exports that code the arms themselves."""
        return code_map(self.study_dir, [a.id for a in self.info.arms] or self._allocated_arms())

    def _allocated_arms(self) -> list[str]:
        with self.connect() as conn:
            return sorted(
                conn.scalars(
                    select(m.AllocationRow.arm_id).where(m.AllocationRow.study_id == self.study_id).distinct()
                )
            )

    def allocate(self, subject_id: str) -> Allocation:
        """Give the subject the next unused row of the allocation list in their stratum.

        The subject must have signed consent and passed the patch test. Calling again returns the same
        allocation. Raises :class:`StoreError` when the list is missing (run ``toolkit study randomize``) or
        the stratum's rows are used up. The number is written to the allocation ledger
        (``allocation-ledger.jsonl``) before the allocation commits, and a number the ledger names is never
        handed out again, even to a database restored from an older copy.
        """
        who = self._require("allocate", "randomise subjects")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            existing = s.scalar(select(m.AllocationRow).where(m.AllocationRow.subject_pk == subject.id))
            if existing is not None:
                return allocation_record(existing)
            record = self._subject_record(s, subject)
            if not record.eligible:
                raise StoreError(
                    f"subject {subject_id} cannot be randomised: not met: {', '.join(record.unmet)}"
                )
            alist = AllocationList.read(self.study_dir)
            rows = alist.rows_for(subject.strata or {}, self.info.strata_factors)
            if not rows:
                raise StoreError(
                    f"{alist.path} has no rows for subject {subject_id}'s stratum {subject.strata or '{}'}; "
                    "check the subject's strata or run `toolkit study randomize` with this stratum"
                )
            used = set(
                s.scalars(select(m.AllocationRow.rand_no).where(m.AllocationRow.study_id == self.study_id))
            )
            ledger_path = self.study_dir / LEDGER_FILE
            used |= {line.rand_no for line in read_ledger(ledger_path)}
            free = [r for r in rows if r.rand_no not in used]
            if not free:
                raise StoreError(
                    f"the allocation list {alist.path} is exhausted for stratum {rows[0].stratum} "
                    f"({len(rows)} rows used); extend it with `toolkit study randomize`"
                )
            row = free[0]
            codes, _ = self._code_map()
            code = alist.codes.get(row.arm_id) or codes.get(row.arm_id)
            if code is None:
                raise StoreError(f"{alist.path} line {row.line}: arm {row.arm_id!r} has no blinded code")
            if self.info.arms and self.info.arm(row.arm_id) is None:
                raise DataError(
                    f"{alist.path} line {row.line}: arm {row.arm_id!r} is not an arm of study {self.study_id}"
                )
            alloc = m.AllocationRow(
                study_id=self.study_id,
                subject_pk=subject.id,
                rand_no=row.rand_no,
                stratum=row.stratum,
                arm_id=row.arm_id,
                code=code,
                side_map=row.side_map,
            )
            s.add(alloc)
            s.flush()
            append_ledger(
                ledger_path, rand_no=row.rand_no, subject_id=subject.subject_id, subject_pk=subject.id, user=who.username
            )
            return allocation_record(alloc)

