"""The append-only, hash-chained audit trail (21 CFR 11.10(e) style).

Every insert, update and delete of an audited row (models with ``__audited__ = True``) is recorded in the
same transaction as the change: who (the session's actor), when (UTC), what (table, key, old and new values
as canonical JSON) and why (a reason, required for any update or delete). The recording hooks into SQLAlchemy
session events, so every ORM write path is covered: unit-of-work flushes (``before_flush`` captures and
checks, ``after_flush`` writes once keys are known) and ORM bulk inserts (``do_orm_execute``). ORM bulk
UPDATE/DELETE statements on study data are refused because they would change rows without row-level records.
Large batches skip ORM objects through :mod:`toolkit.store.audited_inserts`, which appends the same entries.

Each entry's SHA-256 covers its canonical content and the previous entry's hash, so changing, inserting or
removing an entry in the middle breaks the chain at that entry; :func:`verify_audit` finds it, re-checks
every stored file's checksum, and replays the trail against the current tables (reading every row straight
from the driver in chunks, :mod:`toolkit.store.driver_rows`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from toolkit.errors import StoreError
from toolkit.store.canonical import CANONICAL_ENCODER, canonical_json, plain
from toolkit.store.database import insert_many
from toolkit.store.driver_rows import parse_json, plain_readers, row_text_writer, stream_rows

try:  # the C quoting the canonical encoder uses itself (ensure_ascii=False)
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _quote
from toolkit.store.models import AuditEntry, Base, PhotoRow, WaveformFileRow, utcnow

__all__ = [
    "ACTOR_KEY",
    "APPENDED_KEY",
    "INSERT_COLUMNS",
    "INSERT_ROWS",
    "CHAIN_LOCK",
    "audit_trail",
    "append_entries",
    "append_for_session",
    "rows_entry",
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
#: action of an entry that records a batch of rows column by column: ``key`` is the sorted list of the key
#: columns' names, ``new`` maps every column's name to the list of its values (row ``i`` is item ``i``)
INSERT_COLUMNS = "insert_columns"
#: names the PostgreSQL advisory lock that serialises appends to the chain (any constant works)
CHAIN_LOCK = 0x45504D43

_PENDING_KEY = "toolkit.audit_pending"
#: ``Session.info`` key holding (root transaction, head) once the transaction has appended: the transaction
#: holds the chain's write lock, so later appends in it continue from there without asking the database
_HEAD_KEY = "toolkit.audit_head"


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
    append_for_session(session, entries)


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, transaction: Any) -> None:
    # any end, a savepoint's included: a rolled-back savepoint may have taken appended entries with it
    session.info.pop(_HEAD_KEY, None)


def append_for_session(session: Session, entries: list[tuple[str, str, Any, Any, Any, str | None]]) -> None:
    """Append entries ``(table, action, key, old, new, reason)`` in the session's transaction, as its user.

    The first append of a transaction takes the chain's lock and reads the head; later ones continue from the
    head remembered here (and forgotten when the transaction, or a savepoint in it, ends).
    """
    if not entries:
        return
    root = session.get_transaction()
    known = session.info.get(_HEAD_KEY)
    head = known[1] if known is not None and known[0] is root else None
    new_head = append_entries(session.connection(), _actor(session), entries, head=head)
    session.info[_HEAD_KEY] = (root, new_head)
    session.info[APPENDED_KEY] = new_head


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
    append_for_session(state.session, [rows_entry(state.session, table, key_cols, [dict(row) for row in rows])])


def rows_entry(
    session: Session, table: str, key_cols: tuple[str, ...], rows: list[dict[str, Any]]
) -> tuple[str, str, Any, Any, Any, str | None]:
    # one entry records every row of the statement (keys and values in the same order): the trail keeps each
    # row's values while a batch of measurements costs one chained hash instead of one per row
    keys = [{k: row.get(k) for k in key_cols} for row in rows]
    return (table, INSERT_ROWS, keys, None, rows, session.info.get(REASON_KEY))


def content_text(
    seq: int, at: str, actor: str, action: str, table: str, key: str, old: str | None, new: str | None,
    reason: str | None, quoted: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """The canonical JSON of an entry's content, written out directly (the same text as
    ``canonical_json`` of the content dict, keys in sorted order; a test holds the two equal).

    ``quoted`` remembers the quoted forms of the short texts that repeat from entry to entry (instant, actor,
    action, table, reason) when one dict is passed for many entries.
    """
    q = _quote
    if quoted is None:
        quoted = {}
    return (
        f'{{"action":{quoted.get(action) or quoted.setdefault(action, q(action))},'
        f'"actor":{quoted.get(actor) or quoted.setdefault(actor, q(actor))},'
        f'"at":{quoted.get(at) or quoted.setdefault(at, q(at))},"key":{q(key)},'
        f'"new":{"null" if new is None else q(new)},"old":{"null" if old is None else q(old)},'
        f'"reason":{"null" if reason is None else quoted.get(reason) or quoted.setdefault(reason, q(reason))},'
        f'"seq":{int(seq)},"table":{quoted.get(table) or quoted.setdefault(table, q(table))}}}'
    )


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


_ENTRY_COLUMNS = (
    "seq", "at", "actor", "action", "table_name", "row_key", "old_values", "new_values", "reason", "prev_hash", "hash",
)  # fmt: skip
_HEAD_QUERY = (
    select(AuditEntry.__table__.c.seq, AuditEntry.__table__.c.hash).order_by(AuditEntry.__table__.c.seq.desc()).limit(1)
)


def append_entries(
    conn: Connection,
    actor: str,
    entries: list[tuple[str, str, Any, Any, Any, str | None]],
    *,
    head: tuple[int, str] | None = None,
) -> tuple[int, str] | None:
    """Append entries ``(table, action, key, old, new, reason)`` to the chain inside ``conn``'s transaction;
    return the new head (sequence number, hash).

    On PostgreSQL a transaction-scoped advisory lock serialises writers on the chain head; SQLite
    transactions of the store begin IMMEDIATE, which does the same. ``head`` is the head this same
    transaction appended up to before (it already holds the lock, so the head cannot have moved).
    """
    if not entries:
        return None
    if head is None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
        last = conn.execute(_HEAD_QUERY).first()
        head = (last.seq, last.hash) if last is not None else (0, GENESIS_HASH)
    seq, prev = head
    at = utcnow().isoformat(timespec="microseconds")
    quoted: dict[str, str] = {}
    rows = []
    for table_name, action, key, old, new, reason in entries:
        seq += 1
        row_key = _fast_json(key)
        old_text = None if old is None else canonical_json(old)
        new_text = None if new is None else _fast_json(new)
        body = content_text(seq, at, actor, action, table_name, row_key, old_text, new_text, reason, quoted)
        before, prev = prev, hashlib.sha256((prev + "\n" + body).encode("utf-8")).hexdigest()
        rows.append((seq, at, actor, action, table_name, row_key, old_text, new_text, reason, before, prev))
    insert_many(conn, AuditEntry.__table__, _ENTRY_COLUMNS, rows)
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


def _iter_entries(conn: Connection) -> Iterator[tuple]:
    """The audit entries in sequence order, ``_ENTRY_COLUMNS`` as the driver returns them (all integers and
    texts, which no backend converts)."""
    table = AuditEntry.__table__
    return stream_rows(conn, [table.c[name] for name in _ENTRY_COLUMNS], order_by=table.c.seq)


def _key_of_json(key: dict[str, Any]) -> tuple:
    """A row key as a hashable tuple of its plain values, in sorted column order."""
    if len(key) == 1:
        return tuple(key.values())
    return tuple(key[k] for k in sorted(key))


def _check_chain(
    conn: Connection, report: AuditReport, chain: dict[int, str], batch_columns: dict[str, tuple[str, ...]]
) -> dict[str, dict[tuple, Any]]:
    """Walk the chain; return the table state the trail implies, ``table -> row key -> values``.

    The values of a row are a dict; or, for a row recorded by one ``insert`` entry and not changed since,
    that entry's canonical JSON text (parsed only if the table's row is not that very text); or, for a row of
    an ``insert_columns`` batch, the tuple of its values in the order of ``batch_columns[table]``.

    ``chain`` receives each entry's hash by sequence number (the anchors are checked against it).
    """
    expected: dict[str, dict[tuple, dict | None]] = {}
    prev = GENESIS_HASH
    want_seq = 1
    sha256, loads, text_of = hashlib.sha256, parse_json, content_text
    quoted: dict[str, str] = {}  # instants, actors, actions, tables and reasons repeat: each is quoted once
    count = 0
    for seq, at, actor, action, table, key, old, new, reason, prev_hash, digest in _iter_entries(conn):
        count += 1
        try:
            body = text_of(seq, at, actor, action, table, key, old, new, reason, quoted)
            intact = (
                seq == want_seq and prev_hash == prev
                and sha256(f"{prev_hash}\n{body}".encode()).hexdigest() == digest
            )  # fmt: skip
        except TypeError:  # a text column emptied (NULL) behind the store's back
            intact = False
        if not intact and report.first_broken is None:
            if seq != want_seq:
                problem = f"sequence gap: expected #{want_seq}, found #{seq} (entries removed or inserted)"
            elif prev_hash != prev:
                problem = "its previous-hash link does not match the entry before it"
            else:
                problem = "its content does not match its SHA-256 (the entry was altered)"
            report.first_broken = BrokenEntry(seq, table, key, problem)
        prev = chain[seq] = digest
        want_seq = seq + 1
        rows = expected.get(table)
        if rows is None:
            rows = expected[table] = {}
        try:
            if (
                action == "insert" and type(new) is str and key[:6] == '{"id":' and key[-1] == "}"
                and key[6:-1].isdigit()
            ):  # fmt: skip
                # the usual entry: one record by its integer id; its values stay text until a row needs them
                rows[(int(key[6:-1]),)] = new
                continue
            if action == INSERT_ROWS:
                keys, values = loads(key), loads(new)
                if len(keys) != len(values):
                    raise ValueError("keys and rows differ in number")
                if keys:  # every row of one statement has the same key columns
                    rows.update(zip(map(_key_getter(sorted(keys[0])), keys), values, strict=True))
                continue
            if action == INSERT_COLUMNS:
                names, keys, values = _column_rows(loads(key), loads(new))
                if batch_columns.setdefault(table, names) == names:
                    rows.update(zip(keys, values))  # noqa: B905 - one length, checked
                else:  # a batch with other columns than the table's first: rows as dicts
                    rows.update(zip(keys, (dict(zip(names, v)) for v in values)))  # noqa: B905
                continue
            slot = _key_of_json(loads(key))
            if action == "insert":
                rows[slot] = loads(new)
            elif action == "update":
                current = rows.setdefault(slot, {})
                if type(current) is str:
                    current = rows[slot] = loads(current)
                elif type(current) is tuple:
                    current = rows[slot] = dict(zip(batch_columns[table], current, strict=True))
                if current is not None:
                    current.update(loads(new))
            elif action == "delete":
                rows[slot] = None
        except (TypeError, ValueError, AttributeError, KeyError):
            if report.first_broken is None:
                report.first_broken = BrokenEntry(seq, table, key, "values are not JSON")
    report.entries += count
    return expected


def _column_rows(key: Any, columns: Any) -> tuple[tuple[str, ...], Iterator[tuple], Iterator[tuple]]:
    """The column names, row keys and row value tuples of an ``insert_columns`` entry; ``ValueError`` if
    malformed."""
    if type(key) is not list or type(columns) is not dict or not key or not set(key) <= columns.keys():
        raise ValueError("not an insert_columns entry")
    lists = list(columns.values())
    if any(type(c) is not list or len(c) != len(lists[0]) for c in lists):
        raise ValueError("columns differ in length")
    keys = zip(*(columns[k] for k in sorted(key)))  # noqa: B905 - one length, checked above
    return tuple(columns), keys, zip(*lists)  # noqa: B905


def _key_getter(columns: list[Any]) -> Callable[[Any], tuple]:
    """A function returning a row's (or key dict's) values of ``columns`` (names or positions) as a tuple."""
    if len(columns) == 1:
        name = columns[0]
        return lambda row: (row[name],)
    return itemgetter(*columns)


def _label(columns: list[str], key: tuple) -> str:
    """A row key as shown in problems: its canonical JSON, e.g. ``{"id":3}``."""
    return canonical_json(dict(zip(columns, key, strict=True)))


_ABSENT = object()


def _parsed_row(text_value: str) -> dict[str, Any] | None:
    """The values of an insert entry kept as text; ``None`` (no entry) for text that is not a JSON object,
    which only an entry whose hash failed can hold."""
    try:
        value = parse_json(text_value)
    except ValueError:
        return None
    return value if type(value) is dict else None


def _check_tables(
    conn: Connection, expected: dict[str, dict[tuple, Any]], report: AuditReport,
    batch_columns: dict[str, tuple[str, ...]],
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
        key_of = _key_getter(key_cols)
        readers = [(names[i], read) for i, read in plain_readers(table, conn)]
        # fast paths, when the key columns need no conversion: a row equal to its one insert entry's text
        # (SQLite), or to its values in an insert_columns batch (integers, texts and floats: no conversion)
        key_of_row = row_text = in_batch = None
        if not {name for name, _ in readers} & set(key_cols):
            key_of_row = _key_getter([names.index(k) for k in key_cols])
            row_text = row_text_writer(table, names, conn)
            batch = batch_columns.get(table.name)
            if batch is not None and set(batch) <= set(names):
                in_batch = _key_getter([names.index(n) for n in batch])
        for row in stream_rows(conn, list(table.columns)):
            if key_of_row is not None:
                key = key_of_row(row)
                want = want_rows.get(key)
                kind = type(want)
                if (kind is str and row_text is not None and row_text(row) == want) or (
                    kind is tuple and in_batch is not None and in_batch(row) == want
                ):
                    seen.add(key)
                    continue
            values = dict(zip(names, row, strict=True))
            for name, read in readers:  # dates, instants and JSON texts in the form the trail holds them
                values[name] = read(values[name])
            # values as read equal to the trail's JSON values are equal after plain() too; anything else
            # (dates, non-finite floats, a column the trail does not know) takes the exact comparison
            key = key_of(values)
            want = want_rows.get(key, _ABSENT)
            if want is _ABSENT:
                key = tuple(plain(k) for k in key)
                want = want_rows.get(key)
            if type(want) is str:
                want = want_rows[key] = _parsed_row(want)
            elif type(want) is tuple:
                want = want_rows[key] = dict(zip(batch_columns[table.name], want, strict=True))
            seen.add(key)
            if want is not None and want is not _ABSENT and want.items() <= values.items():
                continue
            if want is None or want is _ABSENT:
                report.data_problems.append(f"{table.name} {_label(key_cols, key)}: row has no audit trail entry")
            else:
                diffs = sorted(
                    k for k, v in want.items() if k in values and values[k] != v and plain(values[k]) != v
                )
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
        batch_columns: dict[str, tuple[str, ...]] = {}
        expected = _check_chain(conn, report, chain, batch_columns)
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
            _check_tables(conn, expected, report, batch_columns)
        if check_files:
            _check_files(store, conn, report)
    return report


def audit_trail(store: RecordSource, *, table: str | None = None) -> list[dict[str, Any]]:
    """The audit entries (optionally of one table) as dicts with parsed JSON values, oldest first.

    A batch recorded column by column (``insert_columns``) is shown row by row: ``key`` and ``new`` are lists
    of dicts in row order, as for ``insert_rows``.
    """
    out = []
    with store.connect() as conn:
        t = AuditEntry.__table__
        stmt = select(t).order_by(t.c.seq)
        if table:
            stmt = stmt.where(t.c.table_name == table)
        for row in conn.execute(stmt):
            key = json.loads(row.row_key)
            new = None if row.new_values is None else json.loads(row.new_values)
            if row.action == INSERT_COLUMNS:  # shown row by row, like an insert_rows entry
                names = list(new)
                new = [dict(zip(names, values, strict=True)) for values in zip(*new.values(), strict=True)]
                key = [{k: r[k] for k in key} for r in new]
            out.append(
                {
                    "seq": row.seq,
                    "at": row.at,
                    "actor": row.actor,
                    "action": row.action,
                    "table": row.table_name,
                    "key": key,
                    "old": None if row.old_values is None else json.loads(row.old_values),
                    "new": new,
                    "reason": row.reason,
                }
            )
    return out
