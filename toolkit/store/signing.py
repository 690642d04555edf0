"""What an electronic signature binds: the content of a signed record and the message the key signs.

Pure functions over a database connection, shared by the store (to sign) and the audit verification (to
check), so both compute the very same bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from toolkit.store import models as m
from toolkit.store.canonical import canonical_json, plain

__all__ = ["SIGNABLE", "content_sha256", "record_content", "signature_message"]

#: records that can be signed: table -> (model, meanings allowed, permission the signer needs)
SIGNABLE: dict[str, tuple[type[m.Base], tuple[str, ...], str]] = {
    "deliveries": (m.DeliveryRow, ("performed",), "deliver"),
    "adverse_events": (m.AdverseEventRow, ("causality assessed",), "assess_causality"),
    "unblindings": (m.UnblindingRow, ("unblinded",), "unblind"),
    "study_locks": (m.StudyLockRow, ("locked", "unlocked"), "lock"),
}


def record_content(conn: Connection, table: str, record_id: int) -> dict[str, Any] | None:
    """The signed content of a record (its column values; a delivery adds its waveform files)."""
    model = SIGNABLE[table][0]
    t = model.__table__
    row = conn.execute(select(t).where(t.c.id == int(record_id))).mappings().first()
    if row is None:
        return None
    content: dict[str, Any] = {"row": plain(dict(row))}
    if table == "deliveries":
        w = m.WaveformFileRow.__table__
        files = conn.execute(select(w.c.path, w.c.sha256).where(w.c.delivery_id == int(record_id)))
        content["waveforms"] = sorted([str(p), str(d)] for p, d in files)
    return content


def content_sha256(content: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a record's content."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def signature_message(
    *, study_id: str, table: str, record_key: str, meaning: str, signer: str, printed_name: str,
    signed_at: str, content_hash: str,
) -> bytes:  # fmt: skip
    """The bytes a signer's key signs (canonical JSON of every element of the signature)."""
    return canonical_json(
        {
            "study": study_id, "table": table, "key": record_key, "meaning": meaning, "signer": signer,
            "printed_name": printed_name, "at": signed_at, "content_sha256": content_hash,
        }  # fmt: skip
    ).encode("utf-8")
