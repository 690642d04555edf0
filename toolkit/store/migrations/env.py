"""Alembic environment: runs on the connection the store hands over (never from an .ini URL)."""

from __future__ import annotations

from alembic import context

from toolkit.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes its connection
    raise RuntimeError("the store's migrations run through toolkit.store.migrate, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
