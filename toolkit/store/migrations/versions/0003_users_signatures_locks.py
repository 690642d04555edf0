"""Users, roles and signing keys; electronic signatures; database locks; sites; consent to publication.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("site", sa.String(length=40), nullable=True),
        sa.Column("os_login", sa.String(length=64), nullable=True),
        sa.Column("db_role", sa.String(length=64), nullable=True),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username"),
        sa.UniqueConstraint("os_login"),
        sa.UniqueConstraint("db_role"),
    )
    op.create_table(
        "user_secrets",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("kdf", sa.String(length=20), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("time_cost", sa.Integer(), nullable=False),
        sa.Column("memory_cost_kib", sa.Integer(), nullable=False),
        sa.Column("parallelism", sa.Integer(), nullable=False),
        sa.Column("verifier", sa.String(length=64), nullable=False),
        sa.Column("key_nonce", sa.String(length=24), nullable=False),
        sa.Column("key_ciphertext", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["users.username"]),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("meaning", sa.String(length=80), nullable=False),
        sa.Column("signer", sa.String(length=64), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("signed_at", sa.String(length=40), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["signer"], ["users.username"]),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signatures_study_id"), ["study_id"], unique=False)
    op.create_table(
        "study_locks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["by"], ["users.username"]),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("study_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_locks_study_id"), ["study_id"], unique=False)
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publication", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_column("publication")
    with op.batch_alter_table("study_locks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_locks_study_id"))
    op.drop_table("study_locks")
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signatures_study_id"))
    op.drop_table("signatures")
    op.drop_table("user_secrets")
    op.drop_table("users")
    op.drop_table("sites")
