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

__all__ = ["parse_json", "plain_readers", "stream_rows"]

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
