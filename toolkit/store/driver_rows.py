"""Reading many rows fast: straight from the driver's cursor, in chunks, converted only where needed.

Verifying the audit trail reads every row of every audited table. SQLAlchemy's result rows and type
processing cost several times what the driver itself does, so verification reads through the driver's
cursor (a server-side cursor on PostgreSQL, so memory stays flat on any table size) and turns each value
into its plain JSON form (:func:`toolkit.store.canonical.plain`) with the column type's own SQLAlchemy
result processor, or with an equivalent shortcut for the text forms SQLite stores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from itertools import count
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, String, Table, select
from sqlalchemy.engine import Connection

from toolkit.store.canonical import plain

try:  # the C quoting of the canonical encoder (ensure_ascii=False)
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _quote

__all__ = ["parse_json", "plain_readers", "row_text_writer", "stream_rows"]

_SCAN = json.JSONDecoder().scan_once
_CURSOR_NUMBERS = count(1)
#: column types whose driver values are already plain on every backend (bool as 0/1 on SQLite compares equal)
_PLAIN_TYPES = (Integer, String, Float, Boolean)


def parse_json(text: str) -> Any:
    """``json.loads`` of one compact JSON value, without its per-call overhead; ``ValueError`` if not JSON."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text):
        raise ValueError("not one JSON value")
    return value


def stream_rows(
    conn: Connection, columns: Sequence[Any], *, order_by: Any = None, chunk_rows: int = 5000
) -> Iterator[tuple]:
    """Every row of the table of ``columns`` as the driver returns them (tuples in that order), fetched
    ``chunk_rows`` at a time.

    Runs inside ``conn``'s transaction (begun here if needed), so successive reads see one snapshot.
    """
    stmt = select(*columns)
    if order_by is not None:
        stmt = stmt.order_by(order_by)
    sql = str(stmt.compile(dialect=conn.dialect))
    if not conn.in_transaction():
        conn.begin()
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        cursor = driver.cursor(name=f"toolkit_rows_{next(_CURSOR_NUMBERS)}")
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(chunk_rows):
            yield from rows
    finally:
        cursor.close()


def plain_readers(table: Table, conn: Connection) -> list[tuple[int, Callable[[Any], Any]]]:
    """(column position, function) for each column whose driver value is not yet in plain form.

    Each function gives ``plain(value as SQLAlchemy would return it)``; on SQLite, JSON texts and the
    standard text forms of dates and instants are converted directly (the same results, several times faster).
    JSON values are left as parsed: equal to the trail's values unless they hold a non-finite float, which the
    caller's exact comparison (``plain`` of both sides on a mismatch) settles.
    """
    dialect = conn.dialect
    out = []
    for i, column in enumerate(table.columns):
        kind = column.type
        if isinstance(kind, _PLAIN_TYPES) and not isinstance(kind, JSON):
            continue
        process = kind.dialect_impl(dialect).result_processor(dialect, None)
        exact = _exact(process)
        base = getattr(kind, "impl_instance", kind)  # a TypeDecorator's underlying type
        if isinstance(base, JSON) and dialect.name != "sqlite":
            # parsed JSON is plain already (but for non-finite floats, which the exact comparison catches)
            if process is not None:
                out.append((i, process))
            continue
        if dialect.name == "sqlite":
            if isinstance(base, JSON):
                out.append((i, _sqlite_json(exact)))
                continue
            if isinstance(base, DateTime):
                out.append((i, _sqlite_instant(exact)))
                continue
            if isinstance(base, Date):
                out.append((i, _sqlite_date(exact)))
                continue
        out.append((i, exact))
    return out


def _exact(process: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if process is None:
        return plain
    return lambda raw: plain(process(raw))


def _sqlite_json(exact: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def read(raw: Any) -> Any:
        if type(raw) is str:
            try:
                return parse_json(raw)
            except ValueError:
                pass
        return exact(raw)

    return read


def _sqlite_instant(exact: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # SQLite keeps instants as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); plain() writes 'YYYY-MM-DDTHH:MM:SS.ffffff+00:00'
    def read(raw: Any) -> Any:
        if type(raw) is str and len(raw) == 26 and raw[10] == " " and raw[19] == ".":
            return f"{raw[:10]}T{raw[11:]}+00:00"
        return exact(raw)

    return read


def _sqlite_date(exact: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def read(raw: Any) -> Any:
        if type(raw) is str and len(raw) == 10 and raw[4] == raw[7] == "-":
            return raw
        return exact(raw)

    return read


#: never part of canonical JSON (control characters are escaped there): a row text holding it matches nothing
_NO_MATCH = "\x00"


def row_text_writer(table: Table, names: Sequence[str], conn: Connection) -> Callable[[tuple], str] | None:
    """A function giving the canonical JSON text of a driver row of ``table`` (an object of the attribute
    names ``names``, one per column, in sorted key order), straight from the values SQLite returns.

    This is the text the audit trail holds for an inserted row, so a row recorded at insert and never changed
    since is checked by comparing two strings, without parsing either. JSON columns are taken as stored
    (the store writes them as canonical JSON); a value in another form (an older non-canonical JSON text, a
    boolean column, an integer in a float column) gives a text that matches no entry, and the caller's exact
    comparison decides. ``None`` on other backends, or for a table with a column type not handled here.
    """
    if conn.dialect.name != "sqlite":
        return None
    parts = []
    for i, (column, name) in enumerate(zip(table.columns, names, strict=True)):
        base = getattr(column.type, "impl_instance", column.type)
        write = next((w for kind, w in _TEXT_WRITERS if isinstance(base, kind)), None)
        if write is None:
            return None
        parts.append((name, i, write))
    parts.sort()
    labels = [(f"{_quote(name)}:", i, write) for name, i, write in parts]

    def text(row: tuple) -> str:
        return "{" + ",".join([f"{label}{write(row[i], _NO_MATCH)}" for label, i, write in labels]) + "}"

    return text


_BOOLEAN_TEXT = {0: "false", 1: "true", None: "null"}


def _json_text(raw: Any, other: str) -> str:
    if raw is None:
        return "null"
    return raw if type(raw) is str else other


def _instant_text(raw: Any, other: str) -> str:
    if raw is None:
        return "null"
    if type(raw) is str and len(raw) == 26 and raw[10] == " " and raw[19] == ".":
        return f'"{raw[:10]}T{raw[11:]}+00:00"'
    return other


def _date_text(raw: Any, other: str) -> str:
    if raw is None:
        return "null"
    if type(raw) is str and len(raw) == 10 and raw[4] == raw[7] == "-":
        return f'"{raw}"'
    return other


def _integer_text(raw: Any, other: str) -> str:
    if raw is None:
        return "null"
    return int.__repr__(raw) if type(raw) is int else other


def _float_text(raw: Any, other: str) -> str:
    if raw is None:
        return "null"
    if type(raw) is float and raw - raw == 0.0:
        return float.__repr__(raw)
    return other


def _string_text(raw: Any, other: str) -> str:
    if raw is None:
        return "null"
    return _quote(raw) if type(raw) is str else other



#: how each column type's SQLite value is written as canonical JSON (first match)
_TEXT_WRITERS: tuple[tuple[type, Callable[[Any, str], str | None]], ...] = (
    (JSON, _json_text), (DateTime, _instant_text), (Date, _date_text), (Boolean, _BOOLEAN_TEXT.get),
    (Integer, _integer_text), (Float, _float_text), (String, _string_text),
)  # fmt: skip
