"""Initial schema: study records and the append-only audit trail.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 14:50:03.707853
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from toolkit.store.migrations.triggers import create_audit_guards, drop_audit_guards

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.Text(), nullable=False),
        sa.Column("old_values", sa.Text(), nullable=True),
        sa.Column("new_values", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_table_name"), ["table_name"], unique=False)

    op.create_table(
        "studies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("design", sa.String(length=20), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("site", sa.String(length=40), nullable=True),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("race", sa.String(length=80), nullable=True),
        sa.Column("fitzpatrick", sa.String(length=3), nullable=False),
        sa.Column("strata", sa.JSON(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "subject_id", name="uq_subject_per_study"),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subjects_study_id"), ["study_id"], unique=False)

    op.create_table(
        "unblindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("by", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unblindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unblindings_study_id"), ["study_id"], unique=False)

    op.create_table(
        "adverse_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("soc", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("serious", sa.Boolean(), nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("onset", sa.Date(), nullable=False),
        sa.Column("resolved", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_adverse_events_subject_pk"), ["subject_pk"], unique=False)

    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("rand_no", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(length=200), nullable=False),
        sa.Column("arm_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("side_map", sa.JSON(), nullable=True),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "rand_no", name="uq_rand_no_per_study"),
        sa.UniqueConstraint("subject_pk", name="uq_one_allocation_per_subject"),
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocations_study_id"), ["study_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_subject_pk"), ["subject_pk"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("session_number", sa.Integer(), nullable=False),
        sa.Column("arm_id", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=True),
        sa.Column("prescription", sa.JSON(), nullable=False),
        sa.Column("bench", sa.JSON(), nullable=False),
        sa.Column("instruments", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("dose", sa.JSON(), nullable=True),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.Column("resumed_from", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resumed_from"],
            ["deliveries.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_subject_pk"), ["subject_pk"], unique=False)

    op.create_table(
        "deviations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviations_subject_pk"), ["subject_pk"], unique=False)

    op.create_table(
        "patch_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("read_on", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patch_tests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patch_tests_subject_pk"), ["subject_pk"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.String(length=40), nullable=False),
        sa.Column("visit_number", sa.Integer(), nullable=True),
        sa.Column("visit_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject_pk", "visit_id", name="uq_visit_per_subject"),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_subject_pk"), ["subject_pk"], unique=False)

    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("visit_pk", sa.Integer(), nullable=False),
        sa.Column("scale", sa.String(length=60), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("assessor", sa.String(length=80), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_pk"],
            ["visits.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessments_subject_pk"), ["subject_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessments_visit_pk"), ["visit_pk"], unique=False)

    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_pk", sa.Integer(), nullable=False),
        sa.Column("visit_pk", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=20), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("qc", sa.JSON(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_pk"],
            ["subjects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_pk"],
            ["visits.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_photos_subject_pk"), ["subject_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_photos_visit_pk"), ["visit_pk"], unique=False)

    op.create_table(
        "waveform_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waveform_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_waveform_files_delivery_id"), ["delivery_id"], unique=False)

    op.create_table(
        "measurement_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("algorithm_version", sa.String(length=80), nullable=False),
        sa.Column("qc", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["photos.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("measurement_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measurement_runs_photo_id"), ["photo_id"], unique=False)

    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("metric", sa.String(length=60), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["measurement_runs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "region", "metric", name="uq_measurement_in_run"),
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measurements_run_id"), ["run_id"], unique=False)

    create_audit_guards()


def downgrade() -> None:
    drop_audit_guards()
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measurements_run_id"))

    op.drop_table("measurements")
    with op.batch_alter_table("measurement_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measurement_runs_photo_id"))

    op.drop_table("measurement_runs")
    with op.batch_alter_table("waveform_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_waveform_files_delivery_id"))

    op.drop_table("waveform_files")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photos_visit_pk"))
        batch_op.drop_index(batch_op.f("ix_photos_subject_pk"))

    op.drop_table("photos")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessments_visit_pk"))
        batch_op.drop_index(batch_op.f("ix_assessments_subject_pk"))

    op.drop_table("assessments")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_subject_pk"))

    op.drop_table("visits")
    with op.batch_alter_table("patch_tests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patch_tests_subject_pk"))

    op.drop_table("patch_tests")
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviations_subject_pk"))

    op.drop_table("deviations")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_subject_pk"))

    op.drop_table("deliveries")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_subject_pk"))

    op.drop_table("consents")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocations_study_id"))

    op.drop_table("allocations")
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adverse_events_subject_pk"))

    op.drop_table("adverse_events")
    with op.batch_alter_table("unblindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unblindings_study_id"))

    op.drop_table("unblindings")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_study_id"))

    op.drop_table("subjects")
    op.drop_table("studies")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_table_name"))

    op.drop_table("audit_log")
