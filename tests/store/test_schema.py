"""The schema: migrations build exactly the models, on SQLite and PostgreSQL; SQLite settings."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from toolkit.store import open_store
from toolkit.store.migrate import HEAD_REVISION, head_revision, upgrade
from toolkit.store.models import Base


def test_migrations_match_the_models(db_url, demo_study):
    with open_store(demo_study, url=db_url) as store:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert head_revision() == HEAD_REVISION


def test_sqlite_runs_in_wal_with_foreign_keys(demo_study):
    with open_store(demo_study) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        path = store.url.database
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert names == {"audit_log_no_update", "audit_log_no_delete"}
    con.close()


def test_downgrade_and_upgrade_round_trip(tmp_path):
    from alembic import command

    from toolkit.store.migrate import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(engine)
    assert "audit_log" in inspect(engine).get_table_names()


def test_a_database_from_a_newer_toolkit_is_refused(demo_study):
    import pytest

    from toolkit.errors import StoreError

    with open_store(demo_study) as store:
        path = store.url.database
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '0099'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema revision '0099', which this toolkit version does not know"):
        open_store(demo_study)
