"""Checks of what lies beside the audit chain: electronic signatures, the anchor file, the allocation ledger.

Called by :func:`toolkit.store.audit.verify_audit` after it has walked the chain; each returns one line per
problem, naming the record, the user, the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Connection

from toolkit.store import models as m
from toolkit.store.anchors import anchor_problems, read_anchors
from toolkit.store.identity import verify_signature
from toolkit.store.ledger import read_ledger
from toolkit.store.signing import SIGNABLE, content_sha256, record_content, signature_message

__all__ = ["check_anchor_file", "check_ledger", "check_signatures", "public_keys"]


def public_keys(conn: Connection) -> dict[str, str]:
    """User name -> Ed25519 public key (hex) of every user of the database."""
    return {r.username: r.public_key for r in conn.execute(select(m.UserRow.username, m.UserRow.public_key))}


def check_signatures(conn: Connection, keys: Mapping[str, str]) -> tuple[int, list[str]]:
    """Verify every signature: the signer's key, the Ed25519 signature, and the signed record's content now."""
    problems: list[str] = []
    t = m.SignatureRow.__table__
    n = 0
    for row in conn.execute(select(t).order_by(t.c.id)):
        n += 1
        where = f"signature #{row.id} ({row.meaning} by {row.signer}, {row.table_name} {row.record_key})"
        if keys.get(row.signer) != row.public_key:
            problems.append(f"{where}: made with a key that is not {row.signer}'s signing key")
            continue
        message = signature_message(
            study_id=row.study_id, table=row.table_name, record_key=row.record_key, meaning=row.meaning,
            signer=row.signer, printed_name=row.printed_name, signed_at=row.signed_at,
            content_hash=row.content_sha256,
        )  # fmt: skip
        if not verify_signature(row.public_key, row.signature, message):
            problems.append(f"{where}: the signature does not verify (copied from another record or altered)")
            continue
        if row.table_name not in SIGNABLE:
            problems.append(f"{where}: {row.table_name} records are not signable")
            continue
        try:
            record_id = int(json.loads(row.record_key)["id"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: the record key is not readable")
            continue
        content = record_content(conn, row.table_name, record_id)
        if content is None:
            problems.append(f"{where}: the signed record no longer exists")
        elif content_sha256(content) != row.content_sha256:
            problems.append(f"{where}: the record was changed after it was signed (sign it again after review)")
    return n, problems


def check_anchor_file(
    path: Path, conn: Connection, chain: Mapping[int, str], head_seq: int, keys: Mapping[str, str],
    *, required: bool,
) -> tuple[int, list[str]]:  # fmt: skip
    """Check the anchor file against the chain; a missing file is a problem when ``required``."""
    if not path.is_file():
        if required:
            return 0, [
                f"the audit anchor file {path} is missing: the trail's head cannot be checked against tail "
                "truncation or an older copy; restore the file from a backup (toolkit data restore)"
            ]
        return 0, []
    anchors = read_anchors(path)
    return len(anchors), anchor_problems(path, anchors, chain, head_seq, keys)


def check_ledger(path: Path, conn: Connection, study_id: str) -> list[str]:
    """Every allocation in the database is in the ledger, with the same subject, and no number twice."""
    ledger = read_ledger(path)
    t, s = m.AllocationRow.__table__, m.SubjectRow.__table__
    rows = conn.execute(
        select(t.c.rand_no, s.c.subject_id, s.c.id).join(s, s.c.id == t.c.subject_pk).where(t.c.study_id == study_id)
    ).all()
    if not rows and not ledger:
        return []
    problems = []
    by_number: dict[int, object] = {}
    names: dict[int, str] = {}
    for line in ledger:
        who = line.subject_pk if line.subject_pk is not None else line.subject_id
        if line.rand_no in by_number and by_number[line.rand_no] != who:
            problems.append(
                f"{path.name} line {line.line}: randomisation number {line.rand_no} handed out twice "
                f"({names[line.rand_no]} and {line.subject_id})"
            )
        by_number.setdefault(line.rand_no, who)
        names.setdefault(line.rand_no, line.subject_id)
    if rows and not path.is_file():
        return [f"the allocation ledger {path} is missing; {len(rows)} allocation(s) in the database are unledgered"]
    for rand_no, subject_id, subject_pk in rows:
        if rand_no not in by_number:
            problems.append(f"allocation of {subject_id} (number {rand_no}) is not in the ledger {path.name}")
        elif by_number[rand_no] not in (subject_pk, subject_id):
            problems.append(
                f"randomisation number {rand_no} is {subject_id}'s in the database but {names[rand_no]}'s in "
                f"the ledger {path.name}"
            )
    return problems
