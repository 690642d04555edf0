"""Connecting to the store's database: URL resolution, SQLite settings, and readable errors.

The default is a SQLite file at ``data/<study-id>/study.db`` in WAL mode with foreign keys enforced; writer
transactions begin ``IMMEDIATE`` so two writers queue on the busy timeout instead of deadlocking halfway.
``$TOOLKIT_DB_URL`` (or an explicit URL) selects any SQLAlchemy database, PostgreSQL through psycopg 3.
Low-level driver errors become :class:`~toolkit.errors.StoreError` messages that name the database (never
its password) and say what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Table, create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError

from toolkit.errors import StoreError
from toolkit.paths import DB_URL_ENV, study_data_dir
from toolkit.store.canonical import json_column_text

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "READ_ONLY_OPTION",
    "create_store_engine",
    "describe_url",
    "insert_many",
    "resolve_url",
    "store_errors",
]

#: execution option marking read-only transactions (SQLite begins them deferred, without the write lock)
READ_ONLY_OPTION = "toolkit_read_only"
#: how long a SQLite writer waits for another writer before reporting "database busy"
DEFAULT_BUSY_TIMEOUT_S = 10.0


def resolve_url(study_id: str, url: str | URL | None = None) -> URL:
    """The database URL of a study: ``url``, else ``$TOOLKIT_DB_URL``, else ``data/<study-id>/study.db``.

    Parameters
    ----------
    study_id : str
        The study identifier (names the default SQLite file's folder).
    url : str or sqlalchemy.engine.URL, optional
        An explicit SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://``.
    """
    raw = url if url is not None else os.environ.get(DB_URL_ENV) or None
    if raw is None:
        path = study_data_dir(study_id, create=True) / "study.db"
        return URL.create("sqlite", database=str(path))
    source = "the database URL" if url is not None else f"${DB_URL_ENV}"
    try:
        parsed = make_url(raw) if isinstance(raw, str) else raw
    except ArgumentError as exc:
        raise StoreError(
            f"{source} is not a SQLAlchemy URL ({exc}); accepted: sqlite:///path/study.db or "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed


def describe_url(url: URL) -> str:
    """The URL as shown to people: password hidden, SQLite as its file path."""
    if url.get_backend_name() == "sqlite":
        return str(url.database or ":memory:")
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Engine:
    """An engine for ``url`` with the store's connection settings.

    JSON columns are written as canonical JSON (:func:`~toolkit.store.canonical.json_column_text`).
    SQLite: WAL journal, ``synchronous=FULL`` (a committed clinical record survives power loss), foreign keys
    on, ``busy_timeout`` of ``busy_timeout_s``, and ``BEGIN IMMEDIATE`` transactions.
    """
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, json_serializer=json_column_text)
            _configure_sqlite(engine, busy_timeout_s)
        elif backend == "postgresql":
            engine = create_engine(
                url, pool_pre_ping=True, connect_args={"connect_timeout": 10}, json_serializer=json_column_text
            )
        else:
            engine = create_engine(url)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise StoreError(
            f"cannot use database {describe_url(url)}: {exc}; supported: SQLite (default) and PostgreSQL "
            "(postgresql+psycopg://...)"
        ) from None
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, record):
        # let SQLAlchemy's "begin" event emit BEGIN itself (the sqlite3 module would defer it)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # IMMEDIATE takes the write lock up front: two writers wait in turn (busy_timeout) rather than both
        # reading and then one failing to upgrade its lock in the middle of a logical write. Read-only work
        # (READ_ONLY_OPTION) begins deferred, so readers never wait for writers (WAL).
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


_INSERT_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


def insert_many(conn: Connection, table: Table, columns: tuple[str, ...], values: list[tuple]) -> None:
    """INSERT ``values`` (tuples in the order of ``columns``) with the driver's ``executemany``.

    No SQLAlchemy type processing: for columns whose values the driver stores as given (integers, texts,
    floats, ``None``). Much faster than a Core INSERT for many rows.
    """
    if not values:
        return
    dialect = conn.dialect
    key = (dialect.name, table.name, columns)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        quote = dialect.identifier_preparer
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        sql = _INSERT_SQL[key] = (
            f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
    conn.exec_driver_sql(sql, values)


def _message(url: URL, exc: DBAPIError, busy_timeout_s: float) -> str:
    name = describe_url(url)
    orig = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    low = orig.lower()
    if url.get_backend_name() == "sqlite":
        if "locked" in low or "busy" in low:
            return (
                f"database busy: {name} is being written by another process and stayed locked for "
                f"{busy_timeout_s:g} s; wait for the other toolkit command or notebook to finish, then retry"
            )
        if "unable to open" in low:
            return f"cannot open database {name}: the folder is missing or not writable ({orig})"
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return (
                f"database {name} is damaged or not a SQLite file ({orig}); restore it from a backup "
                "(do not edit the file by hand)"
            )
        if "readonly" in low or "read-only" in low:
            return f"database {name} is read-only ({orig}); check file permissions"
        if "disk" in low and "full" in low:
            return f"database {name}: disk full ({orig}); free space and retry"
    if isinstance(exc, IntegrityError):
        return f"database {name} refused the change: {orig}"
    if isinstance(exc, OperationalError) and any(
        s in low for s in ("connection", "connect", "server", "timeout", "terminat", "does not exist")
    ):
        return (
            f"cannot reach database {name}: {orig}; check that the server is running and that "
            f"${DB_URL_ENV} is right"
        )
    return f"database error on {name}: {orig}"


@contextmanager
def store_errors(url: URL, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Iterator[None]:
    """Turn database driver errors raised inside the block into :class:`StoreError` with a clear message."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(_message(url, exc, busy_timeout_s)) from exc
