"""Electronic signatures (21 CFR 11.50, 11.70): a signed meaning bound to the content hash of one record.

A signature names the signer and their printed name, the time (UTC) and the meaning (``performed``,
``causality assessed``, ``unblinded``, ``locked`` …), and carries the SHA-256 of the signed record's content.
The signer's Ed25519 key signs all of that together with the study, table and record key, so a signature
copied to another record, a record changed after signing, or a signature made with someone else's key fails
:func:`toolkit.store.audit.verify_audit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.canonical import canonical_json
from toolkit.store.signing import SIGNABLE, content_sha256, record_content, signature_message

__all__ = ["SignatureRecord", "Signatures"]

@dataclass(frozen=True)
class SignatureRecord:
    """An electronic signature as shown to people."""

    signature_id: int
    table: str
    record_id: int
    meaning: str
    signer: str
    printed_name: str
    signed_at: str
    content_sha256: str


class Signatures(StoreBase):
    """Signing records and listing signatures."""

    def _sign_in(self, s: Session, table: str, record_id: int, meaning: str) -> m.SignatureRow:
        """Sign a record inside an open write session (after its row is flushed)."""
        model, meanings, permission = SIGNABLE[table]
        if meaning not in meanings:
            raise DataError(f"a {table} record is signed with meaning {', '.join(meanings)}, not {meaning!r}")
        who = self._require(permission, f"sign a {table} record ({meaning})")
        s.flush()
        content = record_content(s.connection(), table, record_id)
        if content is None:
            raise StoreError(f"no {table} record #{record_id} to sign")
        digest = content_sha256(content)
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        key = canonical_json({"id": int(record_id)})
        message = signature_message(
            study_id=self.study_id, table=table, record_key=key, meaning=meaning, signer=who.username,
            printed_name=who.full_name, signed_at=at, content_hash=digest,
        )  # fmt: skip
        row = m.SignatureRow(
            study_id=self.study_id, table_name=table, record_key=key, meaning=meaning, signer=who.username,
            printed_name=who.full_name, signed_at=at, content_sha256=digest,
            public_key=who.public_key.hex(), signature=who.sign(message),
        )  # fmt: skip
        s.add(row)
        s.flush()
        return row

    def sign_record(self, table: str, record_id: int, *, meaning: str) -> int:
        """Sign a stored record with the logged-in user's key; return the signature id.

        Parameters
        ----------
        table : {'deliveries', 'adverse_events'}
            Signed through their own actions instead: ``unblindings`` (:meth:`unblind`) and ``study_locks``
            (:meth:`lock`, :meth:`unlock`).
        record_id : int
        meaning : str
            ``performed`` for a delivery (by its operator), ``causality assessed`` for an adverse event (by an
            investigator).
        """
        if table not in ("deliveries", "adverse_events"):
            raise DataError(f"records of {table!r} cannot be signed here; accepted: deliveries, adverse_events")
        with self.session() as s:
            if table == "adverse_events":
                row = s.get(m.AdverseEventRow, int(record_id))
                subject = s.get(m.SubjectRow, row.subject_pk) if row is not None else None
            else:
                row = s.get(m.DeliveryRow, int(record_id))
                subject = s.get(m.SubjectRow, row.subject_pk) if row is not None else None
            if row is None or subject is None or subject.study_id != self.study_id:
                raise StoreError(f"no {table} record #{record_id} in study {self.study_id}")
            self._check_site(subject)
            return self._sign_in(s, table, int(record_id), meaning).id

    def signatures(self, table: str | None = None, record_id: int | None = None) -> list[SignatureRecord]:
        """Signatures of the study (optionally of one table, or one record), oldest first."""
        self._require("read_records", "read signatures")
        stmt = select(m.SignatureRow).where(m.SignatureRow.study_id == self.study_id).order_by(m.SignatureRow.id)
        if table:
            stmt = stmt.where(m.SignatureRow.table_name == table)
        if record_id is not None:
            stmt = stmt.where(m.SignatureRow.record_key == canonical_json({"id": int(record_id)}))
        with self.reading() as s:
            return [
                SignatureRecord(r.id, r.table_name, int(_record_id(r.record_key)), r.meaning, r.signer,
                                r.printed_name, r.signed_at, r.content_sha256)
                for r in s.scalars(stmt)
            ]  # fmt: skip


def _record_id(record_key: str) -> int:
    import json

    return int(json.loads(record_key)["id"])
