"""The site's forms: the screening checklist, adverse-event session of onset, action taken and outcome, and
the blinded rating station's rater, photo set and re-rating on each assessment.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eligibility_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_pk"], ["subjects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eligibility_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eligibility_checks_subject_pk"), ["subject_pk"], unique=False)
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("action_taken", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=40), nullable=True))
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rater", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("rating_set", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("repeat", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_assessments_rating_set"), ["rating_set"], unique=False)
        batch_op.create_unique_constraint("uq_one_rating_per_rater_and_set", ["rating_set", "rater", "repeat"])


def downgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_constraint("uq_one_rating_per_rater_and_set", type_="unique")
        batch_op.drop_index(batch_op.f("ix_assessments_rating_set"))
        batch_op.drop_column("repeat")
        batch_op.drop_column("rating_set")
        batch_op.drop_column("rater")
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("action_taken")
        batch_op.drop_column("session_number")
    with op.batch_alter_table("eligibility_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eligibility_checks_subject_pk"))
    op.drop_table("eligibility_checks")
