"""SQLAlchemy 2 models of the system of record.

One database may hold several studies (a PostgreSQL server shared by a sponsor), so every subject belongs to
a :class:`StudyRow`; the default SQLite file holds one. Study data tables carry ``__audited__ = True``: every
insert, update and delete of their rows is written to :class:`AuditEntry` by :mod:`toolkit.store.audit`.
Clinical dates (consent, AE onset) are :class:`datetime.date`; instants are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AdverseEventRow",
    "AllocationRow",
    "AssessmentRow",
    "AuditEntry",
    "Base",
    "ConsentRow",
    "DeliveryRow",
    "DeviationRow",
    "EligibilityCheckRow",
    "MeasurementRow",
    "MeasurementRunRow",
    "PatchTestRow",
    "PhotoRow",
    "SignatureRow",
    "SiteRow",
    "StudyLockRow",
    "StudyRow",
    "SubjectRow",
    "UnblindingRow",
    "UserRow",
    "UserSecretRow",
    "VisitRow",
    "WaveformFileRow",
    "utcnow",
]


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # naive datetimes are taken as UTC: the toolkit never produces local wall-clock times
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of all store tables."""


class StudyRow(Base):
    """A study known to this database (its definition lives in ``studies/<id>/study.yaml``)."""

    __tablename__ = "studies"
    __audited__ = True

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(200))
    design: Mapped[str | None] = mapped_column(String(20))
    #: the facts of the study definition the records were collected under (arms, visits, endpoints …)
    definition: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubjectRow(Base):
    """An enrolled subject with demographics and stratum values."""

    __tablename__ = "subjects"
    __audited__ = True
    __table_args__ = (UniqueConstraint("study_id", "subject_id", name="uq_subject_per_study"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    subject_id: Mapped[str] = mapped_column(String(40))
    site: Mapped[str | None] = mapped_column(String(40))
    age: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1))
    race: Mapped[str | None] = mapped_column(String(80))
    fitzpatrick: Mapped[str] = mapped_column(String(3))
    strata: Mapped[dict] = mapped_column(JSON, default=dict)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_on: Mapped[date | None] = mapped_column(Date)


class ConsentRow(Base):
    """Signed informed consent."""

    __tablename__ = "consents"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    signed_on: Mapped[date] = mapped_column(Date)
    #: the subject agreed that their face may be shown in publications and reports (``None``: not asked)
    publication: Mapped[bool | None] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PatchTestRow(Base):
    """A patch test read (treatments are refused on a failed or missing patch test)."""

    __tablename__ = "patch_tests"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    read_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EligibilityCheckRow(Base):
    """The screening checklist as answered: criterion code -> holds for the subject (the latest one counts)."""

    __tablename__ = "eligibility_checks"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    checked_on: Mapped[date] = mapped_column(Date)
    answers: Mapped[dict] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AllocationRow(Base):
    """The allocation list row given to a subject."""

    __tablename__ = "allocations"
    __audited__ = True
    __table_args__ = (
        UniqueConstraint("study_id", "rand_no", name="uq_rand_no_per_study"),
        UniqueConstraint("subject_pk", name="uq_one_allocation_per_subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    rand_no: Mapped[int] = mapped_column(Integer)
    stratum: Mapped[str] = mapped_column(String(200))
    arm_id: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(8))
    side_map: Mapped[dict | None] = mapped_column(JSON)
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VisitRow(Base):
    """A subject's visit (a scheduled visit of the study, by its id)."""

    __tablename__ = "visits"
    __audited__ = True
    __table_args__ = (UniqueConstraint("subject_pk", "visit_id", name="uq_visit_per_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    visit_id: Mapped[str] = mapped_column(String(40))
    visit_number: Mapped[int | None] = mapped_column(Integer)
    visit_on: Mapped[date | None] = mapped_column(Date)


class DeliveryRow(Base):
    """One treatment session on the bench; a resumed or repeated session is a new row linked to the first."""

    __tablename__ = "deliveries"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    session_number: Mapped[int] = mapped_column(Integer)
    arm_id: Mapped[str] = mapped_column(String(40))
    side: Mapped[str | None] = mapped_column(String(10))
    prescription: Mapped[dict] = mapped_column(JSON)
    bench: Mapped[dict] = mapped_column(JSON)
    instruments: Mapped[dict] = mapped_column(JSON)
    settings: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(24), default="in_progress")
    reason: Mapped[str | None] = mapped_column(Text)
    dose: Mapped[dict | None] = mapped_column(JSON)
    verification: Mapped[list | None] = mapped_column(JSON)
    resumed_from: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WaveformFileRow(Base):
    """A waveform capture file of a delivery session, checksummed."""

    __tablename__ = "waveform_files"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))


class PhotoRow(Base):
    """A raw facial photo (never modified), with capture metadata and QC."""

    __tablename__ = "photos"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    view: Mapped[str] = mapped_column(String(20), default="frontal")
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    qc: Mapped[dict | None] = mapped_column(JSON)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MeasurementRunRow(Base):
    """One analysis of one photo by one algorithm version."""

    __tablename__ = "measurement_runs"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), index=True)
    algorithm_version: Mapped[str] = mapped_column(String(80))
    qc: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MeasurementRow(Base):
    """One metric of one facial region from one measurement run."""

    __tablename__ = "measurements"
    __audited__ = True
    #: natural key used by the audit trail for bulk inserts (the surrogate id is not known before insert)
    __audit_key__ = ("run_id", "region", "metric")
    __table_args__ = (UniqueConstraint("run_id", "region", "metric", name="uq_measurement_in_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("measurement_runs.id"), index=True)
    region: Mapped[str] = mapped_column(String(40))
    metric: Mapped[str] = mapped_column(String(60))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))


class AssessmentRow(Base):
    """A clinician's score on a named scale at a visit."""

    __tablename__ = "assessments"
    __audited__ = True
    __table_args__ = (UniqueConstraint("rating_set", "rater", "repeat", name="uq_one_rating_per_rater_and_set"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    #: the day the subject was assessed (the visit, or the day its photo was taken); ``None`` in rows written
    #: before the date was kept (their ``recorded_at`` stands in)
    assessed_on: Mapped[date | None] = mapped_column(Date)
    scale: Mapped[str] = mapped_column(String(60))
    #: split-face designs: the side scored (``"left"``/``"right"``); ``None`` for whole-face scales
    side: Mapped[str | None] = mapped_column(String(10))
    score: Mapped[float] = mapped_column(Float)
    assessor: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: blinded rating station: the rater's user name, the opaque id of the photo set rated, and 0 for the
    #: first rating or 1 for the blind re-rating of the intra-rater agreement subset (``None`` elsewhere)
    rater: Mapped[str | None] = mapped_column(String(64))
    rating_set: Mapped[str | None] = mapped_column(String(24), index=True)
    repeat: Mapped[int | None] = mapped_column(Integer)


class AdverseEventRow(Base):
    """An adverse event (MedDRA-style term and system organ class)."""

    __tablename__ = "adverse_events"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    term: Mapped[str] = mapped_column(String(200))
    soc: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(10))
    serious: Mapped[bool] = mapped_column(Boolean)
    relation: Mapped[str] = mapped_column(String(20))
    onset: Mapped[date] = mapped_column(Date)
    resolved: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the treatment session at or after which the event began (``None``: before the first session)
    session_number: Mapped[int | None] = mapped_column(Integer)
    #: action taken with the treatment (CDISC AEACN in words), e.g. ``dose not changed``
    action_taken: Mapped[str | None] = mapped_column(String(40))
    #: outcome (CDISC AEOUT in words), e.g. ``recovered/resolved``; ``None``: taken from the resolution date
    outcome: Mapped[str | None] = mapped_column(String(40))


class DeviationRow(Base):
    """A protocol deviation."""

    __tablename__ = "deviations"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DispositionEventRow(Base):
    """A subject leaving study treatment (``scope="treatment"``) or the study (``scope="study"``): date and
    reason (CDISC NCOMPLT term) with free-text detail."""

    __tablename__ = "disposition_events"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_pk: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    scope: Mapped[str] = mapped_column(String(12))
    on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UnblindingRow(Base):
    """A recorded unblinding of a study's analysis outputs."""

    __tablename__ = "unblindings"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SiteRow(Base):
    """A site of the study (subjects, benches, users and randomization strata belong to one)."""

    __tablename__ = "sites"
    __audited__ = True

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserRow(Base):
    """A person who may use the toolkit on this database, with roles, site and public signing key."""

    __tablename__ = "users"
    __audited__ = True

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON)
    site: Mapped[str | None] = mapped_column(String(40))
    #: operating-system login that identifies this user (for reading without a password)
    os_login: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: PostgreSQL role that identifies this user
    db_role: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: raw Ed25519 public key (hex); signatures and audit anchors verify against it
    public_key: Mapped[str] = mapped_column(String(64))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserSecretRow(Base):
    """Password verifier and encrypted signing key of a user (not audited: secrets stay out of the trail)."""

    __tablename__ = "user_secrets"

    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    kdf: Mapped[str] = mapped_column(String(20))
    salt: Mapped[str] = mapped_column(String(64))
    time_cost: Mapped[int] = mapped_column(Integer)
    memory_cost_kib: Mapped[int] = mapped_column(Integer)
    parallelism: Mapped[int] = mapped_column(Integer)
    verifier: Mapped[str] = mapped_column(String(64))
    key_nonce: Mapped[str] = mapped_column(String(24))
    key_ciphertext: Mapped[str] = mapped_column(String(128))


class SignatureRow(Base):
    """An electronic signature (21 CFR 11.50/11.70): who, when, meaning, bound to a record's content hash."""

    __tablename__ = "signatures"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(Text)
    meaning: Mapped[str] = mapped_column(String(80))
    signer: Mapped[str] = mapped_column(ForeignKey("users.username"))
    printed_name: Mapped[str] = mapped_column(String(200))
    #: ISO 8601 UTC text, exactly as signed
    signed_at: Mapped[str] = mapped_column(String(40))
    content_sha256: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class StudyLockRow(Base):
    """A database lock or unlock of a study, with its reason (each one signed)."""

    __tablename__ = "study_locks"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    action: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(ForeignKey("users.username"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One append-only, hash-chained audit trail entry.

    Texts are stored exactly as hashed (``at`` as ISO 8601 UTC, ``row_key``/``old_values``/``new_values`` as
    canonical JSON) so that :func:`toolkit.store.audit.verify_audit` recomputes the chain bit for bit on any
    database backend.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(16))
    table_name: Mapped[str] = mapped_column(String(64), index=True)
    row_key: Mapped[str] = mapped_column(Text)
    old_values: Mapped[str | None] = mapped_column(Text)
    new_values: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
