"""Disposition events: a subject's end of study treatment or withdrawal from the study, with date and reason.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 18:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disposition_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_pk"], ["subjects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disposition_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposition_events_subject_pk"), ["subject_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("disposition_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposition_events_subject_pk"))
    op.drop_table("disposition_events")
