"""Audited inserts without ORM objects: the fast path for many rows at once (photo measurements and runs).

The ORM records every change through session events (:mod:`toolkit.store.audit`); building an ORM object
per row costs far more than the row itself. These functions write rows with Core or driver-level
statements inside a write session of the store and append the very entries the ORM path would: one
``insert`` entry per record with its id and every column value. Verification cannot tell the two paths apart.

:func:`insert_columns` writes a batch given column by column (one list per column, as an analysis produces
them) and records it as one ``insert_columns`` entry holding the same lists: no per-row Python objects
between the caller's columns, the audit entry's canonical JSON and the driver's ``executemany``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String, insert, inspect
from sqlalchemy.orm import Mapper, Session

from toolkit.errors import StoreError
from toolkit.store.audit import INSERT_COLUMNS, REASON_KEY, append_for_session
from toolkit.store.canonical import plain
from toolkit.store.database import insert_many
from toolkit.store.models import Base

__all__ = ["insert_columns", "insert_records"]

_PLAIN_TYPES = (Integer, String, Float)
_PLAIN_VALUES = frozenset((str, int, float, type(None)))


def _is_float(value: Any) -> bool:
    return type(value) is float


def _finite(value: float) -> bool:
    return value - value == 0.0  # False for NaN and ±infinity

_RETURNING_ID: dict[str, Any] = {}


def _audited_mapper(model: type[Base]) -> Mapper:
    if not getattr(model, "__audited__", False):
        raise StoreError(f"{model.__name__} is not an audited model")
    return inspect(model)


def _same_columns(rows: list[dict[str, Any]], names: list[str], table: str) -> None:
    wanted = set(names)
    if any(len(r) != len(names) or r.keys() != wanted for r in rows):
        raise StoreError(f"rows for '{table}' must all have exactly the columns {', '.join(sorted(names))}")


def insert_columns(session: Session, model: type[Base], columns: dict[str, list[Any]]) -> int:
    """INSERT rows given column by column with one driver-level ``executemany``, recorded as one audit entry.

    Parameters
    ----------
    session : Session
        A write session of the store (its transaction holds the new rows and their audit entry).
    model : type
        An audited model with a natural ``__audit_key__`` and only integer, text and float columns.
    columns : dict
        Attribute name -> list of plain values (``str``, ``int``, ``float`` or ``None``), one list per column
        (the key columns among them), all of the same length; row ``i`` is item ``i`` of every list. Floats
        must be finite (``None`` for a missing number).

    Returns
    -------
    int
        The number of rows written.

    The audit entry (action ``insert_columns``) holds the sorted names of the key columns as its key and the
    column lists as its new values, so it records every value of every row.
    """
    mapper = _audited_mapper(model)
    table = mapper.local_table
    key_cols = getattr(model, "__audit_key__", None)
    if not key_cols:
        raise StoreError(f"{model.__name__} has no natural audit key; use insert_records")
    names = sorted(columns)
    if not set(key_cols) <= set(names):
        raise StoreError(f"columns for '{table.name}' must include the key {', '.join(key_cols)}")
    unknown = [n for n in names if n not in mapper.column_attrs]
    if unknown:
        raise StoreError(f"'{table.name}' has no column {', '.join(unknown)}")
    targets = [mapper.column_attrs[n].columns[0] for n in names]
    if not all(isinstance(c.type, _PLAIN_TYPES) for c in targets):
        raise StoreError(f"insert_columns writes integer, text and float columns only ({table.name})")
    lists = [columns[n] for n in names]
    n_rows = len(lists[0])
    if any(type(c) is not list or len(c) != n_rows for c in lists):
        raise StoreError(f"columns for '{table.name}' must be lists of one length ({n_rows} rows)")
    if not n_rows:
        return 0
    for name, values in zip(names, lists, strict=True):
        kinds = set(map(type, values))
        if not kinds <= _PLAIN_VALUES:
            bad = next(v for v in values if type(v) not in _PLAIN_VALUES)
            raise StoreError(
                f"insert_columns stores plain values only; {table.name}.{name} got {type(bad).__name__} {bad!r}"
            )
        if float in kinds and not all(map(_finite, filter(_is_float, values))):
            raise StoreError(f"{table.name}.{name}: a value is not finite; store None for a missing number")
    entry = (table.name, INSERT_COLUMNS, sorted(key_cols), None, dict(zip(names, lists, strict=True)),
             session.info.get(REASON_KEY))  # fmt: skip
    append_for_session(session, [entry])
    insert_many(session.connection(), table, tuple(c.name for c in targets), list(zip(*lists, strict=True)))
    return n_rows


def insert_records(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> list[int]:
    """INSERT records of an audited model with an integer ``id``; return their ids in input order.

    Each record gets the ``insert`` entry the ORM unit of work would write: key ``{"id": ...}`` and every
    column's value. So that the entry holds what the row holds, each row must give every column but ``id``
    (defaults are not filled in here).
    """
    if not rows:
        return []
    mapper = _audited_mapper(model)
    table = mapper.local_table
    if [c.key for c in mapper.primary_key] != ["id"]:
        raise StoreError(f"insert_records needs a model keyed by 'id', not {model.__name__}")
    names = [a.key for a in mapper.column_attrs if a.key != "id"]
    _same_columns(rows, names, table.name)
    by_attr = {a.key: a.columns[0].name for a in mapper.column_attrs}
    params = [{by_attr[k]: v for k, v in r.items()} for r in rows]
    conn = session.connection()
    stmt = _RETURNING_ID.get(table.name)
    if stmt is None:
        stmt = _RETURNING_ID[table.name] = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids = [int(i) for i in conn.execute(stmt, params).scalars()]
    reason = session.info.get(REASON_KEY)
    # the values in their plain JSON form, as the ORM path records them (canonical_json applies plain())
    entries = [
        (table.name, "insert", {"id": i}, None, {"id": i, **plain(r)}, reason) for i, r in zip(ids, rows, strict=True)
    ]
    append_for_session(session, entries)
    return ids
