"""Alembic migrations of the store's schema, applied programmatically when a store is opened."""
