"""Audited inserts without ORM objects: the fast path for many rows at once (photo measurements and runs).

The ORM records every change through session events (:mod:`toolkit.store.audit`); building an ORM object
per row costs far more than the row itself. These functions write rows with Core or driver-level
statements inside a write session of the store and append the very entries the ORM path would: one
``insert`` entry per record with its id and every column value, or one ``insert_rows`` entry for a batch of
rows with a natural key. Verification cannot tell the two paths apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String, insert, inspect
from sqlalchemy.orm import Mapper, Session

from toolkit.errors import StoreError
from toolkit.store.audit import REASON_KEY, append_for_session, rows_entry
from toolkit.store.canonical import plain
from toolkit.store.database import insert_many
from toolkit.store.models import Base

__all__ = ["insert_records", "insert_rows"]

_PLAIN_TYPES = (Integer, String, Float)
_NONE = object()
_RETURNING_ID: dict[str, Any] = {}


def _audited_mapper(model: type[Base]) -> Mapper:
    if not getattr(model, "__audited__", False):
        raise StoreError(f"{model.__name__} is not an audited model")
    return inspect(model)


def _same_columns(rows: list[dict[str, Any]], names: list[str], table: str) -> None:
    wanted = set(names)
    if any(len(r) != len(names) or r.keys() != wanted for r in rows):
        raise StoreError(f"rows for '{table}' must all have exactly the columns {', '.join(sorted(names))}")


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """INSERT rows of an audited model with one driver-level ``executemany``, recorded as one audit entry.

    Parameters
    ----------
    session : Session
        A write session of the store (its transaction holds the new rows and their audit entry).
    model : type
        An audited model with a natural ``__audit_key__`` and only integer, text and float columns.
    rows : list of dict
        Attribute name -> plain value (``str``, ``int``, ``float`` or ``None``), the same names in every row.
    """
    if not rows:
        return
    mapper = _audited_mapper(model)
    table = mapper.local_table
    key_cols = getattr(model, "__audit_key__", None)
    if not key_cols:
        raise StoreError(f"{model.__name__} has no natural audit key; use insert_records")
    names = list(rows[0])
    columns = [mapper.column_attrs[n].columns[0] for n in names]
    if not all(isinstance(c.type, _PLAIN_TYPES) for c in columns):
        raise StoreError(f"insert_rows writes integer, text and float columns only ({table.name})")
    _same_columns(rows, names, table.name)
    bad = next((v for r in rows for v in r.values() if type(v) not in (str, int, float, type(None))), _NONE)
    if bad is not _NONE:
        raise StoreError(f"insert_rows stores plain values only; {table.name} got {type(bad).__name__} {bad!r}")
    append_for_session(session, [rows_entry(session, table.name, key_cols, rows)])
    insert_many(session.connection(), table, tuple(c.name for c in columns), [tuple(r.values()) for r in rows])


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
