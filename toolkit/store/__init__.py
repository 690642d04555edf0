"""The system of record: SQLAlchemy models, audit trail, blinding, imports and exports."""
