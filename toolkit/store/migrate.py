"""Bring a database to the current schema with the package's Alembic migrations.

Runs on open, inside one transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so two
processes opening a new database at once do not both create it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from toolkit.errors import StoreError
from toolkit.store.database import describe_url

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
]

#: newest revision in ``migrations/versions`` (a test checks it against Alembic), so that opening an
#: up-to-date database needs no Alembic import
HEAD_REVISION = "0005"

#: folder of the Alembic environment shipped inside the package
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x45504D44


def alembic_config() -> Config:
    """An Alembic configuration pointing at the package's migrations (no ``alembic.ini`` needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of the toolkit knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships at least one revision
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return _revision(conn)


def upgrade(engine: Engine) -> str:
    """Migrate the database to the newest revision (no-op when already there); return the revision."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return HEAD_REVISION
    from alembic import command
    from alembic.script import ScriptDirectory

    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"database {describe_url(engine.url)} has schema revision {current!r}, which this toolkit version "
            f"does not know (newest known: {HEAD_REVISION}); use the toolkit version that wrote it or a newer one"
        )

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        # re-read under the lock: another process may have migrated meanwhile
        if _revision(conn) != HEAD_REVISION:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return HEAD_REVISION
