"""The append-only, hash-chained audit trail (21 CFR 11.10(e) style).

Every insert, update and delete of an audited row (models with ``__audited__ = True``) is recorded in the
same transaction as the change: who (the session's actor), when (UTC), what (table, key, old and new values
as canonical JSON) and why (a reason, required for any update or delete). The recording hooks into SQLAlchemy
session events, so every ORM write path is covered: unit-of-work flushes (``before_flush`` captures and
checks, ``after_flush`` writes once keys are known) and ORM bulk inserts (``do_orm_execute``). ORM bulk
UPDATE/DELETE statements on study data are refused because they would change rows without row-level records.

Each entry's SHA-256 covers its canonical content and the previous entry's hash, so changing, inserting or
removing an entry in the middle breaks the chain at that entry; :func:`verify_audit` finds it, re-checks
every stored file's checksum, and replays the trail against the current tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from toolkit.errors import StoreError
from toolkit.store.canonical import CANONICAL_ENCODER, canonical_json, plain

try:  # the C quoting the canonical encoder uses itself (ensure_ascii=False)
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _quote
from toolkit.store.models import AuditEntry, Base, PhotoRow, WaveformFileRow, utcnow

__all__ = [
    "ACTOR_KEY",
    "APPENDED_KEY",
    "INSERT_ROWS",
    "CHAIN_LOCK",
    "audit_trail",
    "append_entries",
    "GENESIS_HASH",
    "REASON_KEY",
    "AuditReport",
    "BrokenEntry",
    "RecordSource",
    "entry_hash",
    "sha256_file",
    "verify_audit",
]

#: ``Session.info`` key holding who makes the changes
ACTOR_KEY = "toolkit.actor"
#: ``Session.info`` key holding why (required for updates and deletes)
REASON_KEY = "toolkit.reason"
#: ``Session.info`` key holding the head (sequence number, hash) the session appended up to (then anchored)
APPENDED_KEY = "toolkit.audit_appended"
#: ``prev_hash`` of the first entry
GENESIS_HASH = "0" * 64
#: action of an entry that records every row of one bulk INSERT (``key`` and ``new`` are lists, same order)
INSERT_ROWS = "insert_rows"
#: names the PostgreSQL advisory lock that serialises appends to the chain (any constant works)
CHAIN_LOCK = 0x45504D43

_PENDING_KEY = "toolkit.audit_pending"


class RecordSource(Protocol):
    """What verification needs of a store: read connections and the files its paths refer to.

    :class:`toolkit.store.Store` is one; the audit trail itself knows nothing of the store's aggregates.
    """

    def connect(self) -> AbstractContextManager[Connection]:
        """A read connection to the study's database."""
        ...

    def resolve_path(self, stored: str) -> Path:
        """The file a stored path refers to."""
        ...


def _audited(obj: Any) -> bool:
    return isinstance(obj, Base) and getattr(type(obj), "__audited__", False)


def _actor(session: Session) -> str:
    actor = session.info.get(ACTOR_KEY)
    if not actor or not str(actor).strip():
        raise StoreError(
            "study data can only be changed by a logged-in user: open the store with "
            "open_store(study, user='NAME', password=...) (on the command line: --user NAME or $TOOLKIT_USER)"
        )
    return str(actor)


def _reason(session: Session, action: str, table: str) -> str:
    reason = session.info.get(REASON_KEY)
    if not reason or not str(reason).strip():
        raise StoreError(
            f"a reason is required to {action} a row of '{table}' after first entry; "
            "say why (on the command line: --reason '...')"
        )
    return str(reason)


def _column_values(obj: Base) -> dict[str, Any]:
    mapper: Mapper = inspect(type(obj))
    return {attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs}


def _db_row(session: Session, obj: Base) -> dict[str, Any]:
    """The row as currently stored (before this flush), read straight from the database."""
    mapper: Mapper = inspect(type(obj))
    table = mapper.local_table
    identity = inspect(obj).identity
    where = [col == val for col, val in zip(mapper.primary_key, identity, strict=True)]
    row = session.connection().execute(select(table).where(*where)).mappings().first()
    if row is None:
        return {}
    by_column = {attr.columns[0].name: attr.key for attr in mapper.column_attrs}
    return {by_column.get(k, k): v for k, v in row.items()}


def _key_of(obj: Base) -> dict[str, Any]:
    mapper: Mapper = inspect(type(obj))
    return {
        col.key: val
        for col, val in zip(mapper.primary_key, mapper.primary_key_from_instance(obj), strict=True)
    }


@event.listens_for(Session, "before_flush")
def _capture_changes(session: Session, flush_context: Any, instances: Any) -> None:
    pending: list[tuple[str, Base, dict | None, str | None]] = []
    session.info[_PENDING_KEY] = pending
    touched = False
    for obj in session.new:
        if _audited(obj):
            touched = True
            pending.append(("insert", obj, None, None))
    for obj in session.dirty:
        if _audited(obj) and session.is_modified(obj, include_collections=False):
            touched = True
            table = type(obj).__tablename__
            reason = _reason(session, "change", table)
            pending.append(("update", obj, _db_row(session, obj), reason))
    for obj in session.deleted:
        if _audited(obj):
            touched = True
            table = type(obj).__tablename__
            reason = _reason(session, "delete", table)
            pending.append(("delete", obj, _db_row(session, obj), reason))
    if touched:
        _actor(session)


@event.listens_for(Session, "after_flush")
def _write_changes(session: Session, flush_context: Any) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    entries = []
    insert_reason = session.info.get(REASON_KEY)
    for action, obj, old_row, reason in pending:
        table = type(obj).__tablename__
        key = _key_of(obj)
        if action == "insert":
            entries.append((table, "insert", key, None, _column_values(obj), insert_reason))
        elif action == "update":
            new_row = _column_values(obj)
            old_row = old_row or {}
            changed = sorted(
                k for k in new_row if canonical_json(new_row[k]) != canonical_json(old_row.get(k))
            )
            if not changed:
                continue
            old = {k: old_row.get(k) for k in changed}
            new = {k: new_row[k] for k in changed}
            entries.append((table, "update", key, old, new, reason))
        else:
            entries.append((table, "delete", key, old_row, None, reason))
    if entries:
        session.info[APPENDED_KEY] = append_entries(session.connection(), _actor(session), entries)


@event.listens_for(Session, "do_orm_execute")
def _bulk_statements(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is None or not getattr(mapper.class_, "__audited__", False):
        return
    table = mapper.class_.__tablename__
    if state.is_update or state.is_delete:
        raise StoreError(
            f"bulk UPDATE/DELETE statements on '{table}' are refused: they would bypass the row-level audit "
            "trail; load the rows and change them in a session with a reason"
        )
    params = state.parameters
    rows = [params] if isinstance(params, dict) else list(params or [])
    if (
        not rows
        or getattr(state.statement, "_values", None)
        or getattr(state.statement, "_multi_values", None)
    ):
        raise StoreError(
            f"INSERT into '{table}' must pass its rows as parameters, session.execute(insert(Model), rows), "
            "so that the audit trail records each row"
        )
    key_cols = getattr(mapper.class_, "__audit_key__", None)
    if not key_cols:
        raise StoreError(f"bulk INSERT into '{table}' is not supported; add the rows with session.add()")
    reason = state.session.info.get(REASON_KEY)
    # one entry records every row of the statement (keys and values in the same order): the trail keeps each
    # row's values while a batch of measurements costs one chained hash instead of one per row
    keys = [{k: row.get(k) for k in key_cols} for row in rows]
    entries = [(table, INSERT_ROWS, keys, None, [dict(row) for row in rows], reason)]
    state.session.info[APPENDED_KEY] = append_entries(state.session.connection(), _actor(state.session), entries)


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def content_text(
    seq: int, at: str, actor: str, action: str, table: str, key: str, old: str | None, new: str | None,
    reason: str | None,
) -> str:  # fmt: skip
    """The canonical JSON of an entry's content, written out directly (the same text as
    ``canonical_json`` of the content dict, keys in sorted order; a test holds the two equal)."""
    return (
        '{"action":' + _quote(action) + ',"actor":' + _quote(actor) + ',"at":' + _quote(at) + ',"key":'
        + _quote(key) + ',"new":' + _text(new) + ',"old":' + _text(old) + ',"reason":' + _text(reason)
        + ',"seq":' + str(int(seq)) + ',"table":' + _quote(table) + "}"
    )  # fmt: skip


def _fast_json(value: Any) -> str:
    """Canonical JSON of data that is usually plain already (rows of a bulk insert): encode first, convert
    only when the encoder refuses a value."""
    try:
        return CANONICAL_ENCODER.encode(value)
    except (TypeError, ValueError):
        return canonical_json(value)


def entry_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """SHA-256 (hex) of an entry: the previous hash, a newline, and the canonical JSON of its content.

    Parameters
    ----------
    prev_hash : str
        Hash of the previous entry (:data:`GENESIS_HASH` for the first).
    content : dict
        ``seq, at, actor, action, table, key, old, new, reason`` with ``key``/``old``/``new`` as the stored
        JSON texts.
    """
    # the content's values are already plain (texts, integers, None): skip the generic conversion
    text = CANONICAL_ENCODER.encode(content)
    return hashlib.sha256((prev_hash + "\n" + text).encode("utf-8")).hexdigest()




def append_entries(
    conn: Connection,
    actor: str,
    entries: list[tuple[str, str, Any, Any, Any, str | None]],
) -> tuple[int, str] | None:
    """Append entries ``(table, action, key, old, new, reason)`` to the chain inside ``conn``'s transaction;
    return the new head (sequence number, hash).

    On PostgreSQL a transaction-scoped advisory lock serialises writers on the chain head; SQLite
    transactions of the store begin IMMEDIATE, which does the same.
    """
    if not entries:
        return None
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
    table = AuditEntry.__table__
    head = conn.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    at = utcnow().isoformat(timespec="microseconds")
    rows = []
    for table_name, action, key, old, new, reason in entries:
        seq += 1
        row_key = _fast_json(key)
        old_text = None if old is None else canonical_json(old)
        new_text = None if new is None else _fast_json(new)
        body = content_text(seq, at, actor, action, table_name, row_key, old_text, new_text, reason)
        before, prev = prev, hashlib.sha256((prev + "\n" + body).encode("utf-8")).hexdigest()
        rows.append({
            "seq": seq, "at": at, "actor": actor, "action": action, "table_name": table_name, "row_key": row_key,
            "old_values": old_text, "new_values": new_text, "reason": reason, "prev_hash": before, "hash": prev,
        })  # fmt: skip
    conn.execute(insert(table), rows)
    return seq, prev


def sha256_file(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class BrokenEntry:
    """The first audit entry that fails verification."""

    #: sequence number of the entry (1-based)
    seq: int
    #: table and key the entry is about
    table: str
    key: str
    #: what is wrong with it
    problem: str

    def __str__(self) -> str:
        return f"audit entry #{self.seq} ({self.table} {self.key}): {self.problem}"


@dataclass
class AuditReport:
    """Outcome of :func:`verify_audit`."""

    #: number of audit entries checked
    entries: int = 0
    #: the first entry whose chain link or hash does not verify, if any
    first_broken: BrokenEntry | None = None
    #: number of stored files (photos, waveforms) whose checksum was checked
    files_checked: int = 0
    #: stored files that are missing or whose SHA-256 differs from the recorded one
    file_problems: list[str] = field(default_factory=list)
    #: rows of study tables that differ from what the audit trail says they should be
    data_problems: list[str] = field(default_factory=list)
    #: electronic signatures checked, and those that fail (wrong key, copied, record changed since)
    signatures_checked: int = 0
    signature_problems: list[str] = field(default_factory=list)
    #: lines of the anchor file checked, and how the database disagrees with them (or a missing file)
    anchors_checked: int = 0
    anchor_problems: list[str] = field(default_factory=list)
    #: disagreements between the allocation ledger and the database's allocations
    ledger_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain, files, rows, signatures, anchors and allocation ledger all verify."""
        return self.first_broken is None and not self.problems()

    def problems(self) -> list[str]:
        """Every problem found, one line each (first broken entry first)."""
        lines = [str(self.first_broken)] if self.first_broken else []
        return (
            lines + self.anchor_problems + self.file_problems + self.data_problems + self.signature_problems
            + self.ledger_problems
        )  # fmt: skip

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            return (
                f"audit trail verified: {self.entries} entries, chain intact; "
                f"{self.files_checked} stored files match their SHA-256; tables match the trail; "
                f"{self.signatures_checked} signatures valid; head matches {self.anchors_checked} anchors"
            )
        return (
            f"audit trail verification FAILED ({len(self.problems())} problems; {self.entries} entries read)"
        )


def _iter_entries(conn: Connection) -> Iterator[Any]:
    table = AuditEntry.__table__
    cols = [table.c.seq, table.c.at, table.c.actor, table.c.action, table.c.table_name, table.c.row_key,
            table.c.old_values, table.c.new_values, table.c.reason, table.c.prev_hash, table.c.hash]
    result = conn.execution_options(yield_per=5000).execute(select(*cols).order_by(table.c.seq))
    yield from result


def _key_of_json(key: dict[str, Any]) -> tuple:
    """A row key as a hashable tuple of its plain values, in sorted column order."""
    return tuple(key[k] for k in sorted(key))


def _check_chain(
    conn: Connection, report: AuditReport, chain: dict[int, str]
) -> dict[str, dict[tuple, dict | None]]:
    """Walk the chain; return the table state the trail implies, ``table -> row key -> values``.

    ``chain`` receives each entry's hash by sequence number (the anchors are checked against it).
    """
    expected: dict[str, dict[tuple, dict | None]] = {}
    prev = GENESIS_HASH
    want_seq = 1
    sha256 = hashlib.sha256
    for row in _iter_entries(conn):
        report.entries += 1
        if report.first_broken is None:
            problem = None
            if row.seq != want_seq:
                problem = (
                    f"sequence gap: expected #{want_seq}, found #{row.seq} (entries removed or inserted)"
                )
            elif row.prev_hash != prev:
                problem = "its previous-hash link does not match the entry before it"
            elif sha256((row.prev_hash + "\n" + content_text(
                row.seq, row.at, row.actor, row.action, row.table_name, row.row_key, row.old_values,
                row.new_values, row.reason)).encode("utf-8")).hexdigest() != row.hash:
                problem = "its content does not match its SHA-256 (the entry was altered)"
            if problem:
                report.first_broken = BrokenEntry(row.seq, row.table_name, row.row_key, problem)
        prev = chain[row.seq] = row.hash
        want_seq = row.seq + 1
        rows = expected.setdefault(row.table_name, {})
        try:
            if row.action == INSERT_ROWS:
                keys, values = json.loads(row.row_key), json.loads(row.new_values)
                if len(keys) != len(values):
                    raise ValueError("keys and rows differ in number")
                cols = sorted(keys[0]) if keys else []  # every row of one statement has the same key columns
                for k, v in zip(keys, values, strict=True):
                    rows[tuple(k[c] for c in cols)] = v
                continue
            slot = _key_of_json(json.loads(row.row_key))
            if row.action == "insert":
                rows[slot] = json.loads(row.new_values)
            elif row.action == "update":
                rows.setdefault(slot, {})
                if rows[slot] is not None:
                    rows[slot].update(json.loads(row.new_values))
            elif row.action == "delete":
                rows[slot] = None
        except (TypeError, ValueError, AttributeError):
            if report.first_broken is None:
                report.first_broken = BrokenEntry(row.seq, row.table_name, row.row_key, "values are not JSON")
    return expected


def _label(columns: list[str], key: tuple) -> str:
    """A row key as shown in problems: its canonical JSON, e.g. ``{"id":3}``."""
    return canonical_json(dict(zip(columns, key, strict=True)))


def _check_tables(
    conn: Connection, expected: dict[str, dict[tuple, dict | None]], report: AuditReport
) -> None:
    """Compare each audited table with the state implied by the trail (detects writes that bypassed it)."""
    limit = 20
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if not getattr(cls, "__audited__", False):
            continue
        table = mapper.local_table
        key_cols = sorted(getattr(cls, "__audit_key__", None) or [c.key for c in mapper.primary_key])
        by_column = {attr.columns[0].name: attr.key for attr in mapper.column_attrs}
        names = [by_column.get(c.name, c.name) for c in table.columns]
        want_rows = expected.get(table.name, {})
        seen: set[tuple] = set()
        for row in conn.execution_options(yield_per=5000).execute(select(table)):
            values = dict(zip(names, row, strict=True))
            key = tuple(plain(values[k]) for k in key_cols)
            seen.add(key)
            want = want_rows.get(key)
            if want is None:
                report.data_problems.append(f"{table.name} {_label(key_cols, key)}: row has no audit trail entry")
            else:
                diffs = sorted(k for k, v in want.items() if k in values and v != plain(values[k]))
                if diffs:
                    report.data_problems.append(
                        f"{table.name} {_label(key_cols, key)}: {', '.join(diffs)} differ from the audit trail"
                    )
            if len(report.data_problems) >= limit:
                return
        for key, want in want_rows.items():
            if want is not None and key not in seen:
                report.data_problems.append(
                    f"{table.name} {_label(key_cols, key)}: row was deleted without an audit entry"
                )
                if len(report.data_problems) >= limit:
                    return


def _check_files(store: RecordSource, conn: Connection, report: AuditReport) -> None:
    for table, label in ((PhotoRow.__table__, "photo"), (WaveformFileRow.__table__, "waveform")):
        for row in conn.execute(select(table.c.id, table.c.path, table.c.sha256).order_by(table.c.id)):
            report.files_checked += 1
            path = store.resolve_path(row.path)
            if not path.is_file():
                report.file_problems.append(f"{label} #{row.id} {path}: file is missing")
                continue
            digest = sha256_file(path)
            if digest != row.sha256:
                report.file_problems.append(
                    f"{label} #{row.id} {path}: SHA-256 {digest[:12]}… differs from the recorded "
                    f"{row.sha256[:12]}… (the raw file was modified)"
                )


def verify_audit(store: RecordSource, *, check_files: bool = True, check_tables: bool = True) -> AuditReport:
    """Re-check the audit chain, every stored file's SHA-256, and the tables against the trail.

    Parameters
    ----------
    store : RecordSource
        An open store (:class:`toolkit.store.Store`).
    check_files : bool
        Also re-hash every photo and waveform file the store references.
    check_tables : bool
        Also replay the trail and compare it with the current rows of every audited table, which detects
        changes made behind the store's back (e.g. with the ``sqlite3`` shell).

    Returns
    -------
    AuditReport
        ``.ok``, ``.first_broken`` (the first entry that fails), ``.entries`` and the lists of problems.
    """
    from toolkit.store import integrity

    report = AuditReport()
    chain: dict[int, str] = {}
    with store.connect() as conn:
        expected = _check_chain(conn, report, chain)
        keys = integrity.public_keys(conn)
        anchors = getattr(store, "anchor_path", None)
        if anchors is not None:
            required = bool(keys) and conn.dialect.name == "sqlite" and bool(chain)
            report.anchors_checked, report.anchor_problems = integrity.check_anchor_file(
                anchors, conn, chain, max(chain, default=0), keys, required=required
            )
        report.signatures_checked, report.signature_problems = integrity.check_signatures(conn, keys)
        study_id = getattr(store, "study_id", None)
        if study_id is not None:
            from toolkit.store.ledger import LEDGER_FILE

            report.ledger_problems = integrity.check_ledger(store.study_dir / LEDGER_FILE, conn, study_id)
        if check_tables:
            _check_tables(conn, expected, report)
        if check_files:
            _check_files(store, conn, report)
    return report


def audit_trail(store: RecordSource, *, table: str | None = None) -> list[dict[str, Any]]:
    """The audit entries (optionally of one table) as dicts with parsed JSON values, oldest first."""
    out = []
    with store.connect() as conn:
        t = AuditEntry.__table__
        stmt = select(t).order_by(t.c.seq)
        if table:
            stmt = stmt.where(t.c.table_name == table)
        for row in conn.execute(stmt):
            out.append(
                {
                    "seq": row.seq,
                    "at": row.at,
                    "actor": row.actor,
                    "action": row.action,
                    "table": row.table_name,
                    "key": json.loads(row.row_key),
                    "old": None if row.old_values is None else json.loads(row.old_values),
                    "new": None if row.new_values is None else json.loads(row.new_values),
                    "reason": row.reason,
                }
            )
    return out
