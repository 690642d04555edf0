"""The :class:`Store`: the study's system of record.

Each public method is one logical write in one transaction: it either happens completely, with its audit
entries, or not at all. Inserts need no reason; corrections (:meth:`Store.update_record`,
:meth:`Store.delete_record`) do, and so does every update made through :meth:`Store.session`.
"""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.paths import study_data_dir
from toolkit.store import models as m
from toolkit.store.allocation_list import AllocationList, code_map
from toolkit.store.audit import ACTOR_KEY, REASON_KEY, sha256_file
from toolkit.store.canonical import canonical_json, plain
from toolkit.store.database import (
    DEFAULT_BUSY_TIMEOUT_S,
    READ_ONLY_OPTION,
    create_store_engine,
    describe_url,
    resolve_url,
    store_errors,
)
from toolkit.store.migrate import upgrade
from toolkit.store.records import AdverseEventRecord, Allocation, PatchTest, PhotoRecord, SubjectRecord
from toolkit.store.study_view import StudyInfo

__all__ = [
    "AE_RELATIONS",
    "AE_SEVERITIES",
    "DELIVERY_OUTCOMES",
    "DEVIATION_CATEGORIES",
    "FITZPATRICK_TYPES",
    "SEXES",
    "Store",
    "open_store",
]

#: accepted sex codes (CDISC SEX)
SEXES = ("F", "M", "U")
#: Fitzpatrick skin types
FITZPATRICK_TYPES = ("I", "II", "III", "IV", "V", "VI")
#: AE severity grades
AE_SEVERITIES = ("mild", "moderate", "severe")
#: AE relation to the treatment
AE_RELATIONS = ("not related", "unlikely", "possible", "probable", "related")
#: how a delivery session can end
DELIVERY_OUTCOMES = ("completed", "aborted", "output_state_unknown")
#: minutes after its prescribed end before a session left in progress may be closed as interrupted
INTERRUPTED_GRACE_MIN = 10.0


def interrupted_close_from(started_at: datetime, prescription: Mapping | None,
                           grace_min: float = INTERRUPTED_GRACE_MIN) -> datetime:
    """When a session left in progress can no longer be running: its start + prescribed duration + grace."""
    minutes = float((prescription or {}).get("duration_min") or 0.0)
    return started_at + timedelta(minutes=minutes + float(grace_min))
#: protocol deviation categories
DEVIATION_CATEGORIES = ("minor", "major")

_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TABLES = {
    cls.__tablename__: cls
    for cls in (
        m.SubjectRow,
        m.ConsentRow,
        m.PatchTestRow,
        m.AllocationRow,
        m.VisitRow,
        m.DeliveryRow,
        m.WaveformFileRow,
        m.PhotoRow,
        m.MeasurementRunRow,
        m.MeasurementRow,
        m.AssessmentRow,
        m.AdverseEventRow,
        m.DeviationRow,
    )
}
_SEX_WORDS = {"f": "F", "female": "F", "m": "M", "male": "M", "u": "U", "unknown": "U"}
_ROMAN = {str(i + 1): r for i, r in enumerate(FITZPATRICK_TYPES)}


def _fitzpatrick(value: Any) -> str:
    text = str(value).strip().upper()
    text = _ROMAN.get(text, text)
    if text not in FITZPATRICK_TYPES:
        raise DataError(f"fitzpatrick {value!r} is not a Fitzpatrick skin type; accepted: I–VI (or 1–6)")
    return text


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise DataError(f"{field} {value!r} is not accepted; accepted: {', '.join(allowed)}")
    return text


def _as_date(value: Any, field: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise DataError(f"{field} {value!r} is not a date; accepted: YYYY-MM-DD") from None


class Store:
    """The system of record of one study.

    Parameters
    ----------
    study : toolkit.study.Study or str
        The study (its id names the data folder; its arms, visits and endpoints validate what is stored).
        A bare study id opens the records without study-level validation (e.g. for audit checks).
    url : str, optional
        SQLAlchemy URL; default ``$TOOLKIT_DB_URL``, else ``data/<study-id>/study.db``.
    actor : str, optional
        Who makes the changes (recorded in the audit trail); default ``$TOOLKIT_ACTOR`` or the login name.
    busy_timeout_s : float
        SQLite: how long to wait for another writer before reporting "database busy".
    """

    def __init__(
        self,
        study: Any,
        *,
        url: str | None = None,
        actor: str | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.info = StudyInfo.from_study(study)
        #: the study model object the store was opened with (``None`` for a bare id)
        self.study = self.info.source
        self.study_id = self.info.id
        #: the study's data folder (photos, waveforms, allocation list, analysis outputs)
        self.study_dir = study_data_dir(self.study_id, create=True)
        self.url = resolve_url(self.study_id, url)
        self.actor = (actor or os.environ.get("TOOLKIT_ACTOR") or _login()).strip()
        self.busy_timeout_s = busy_timeout_s
        self.engine = create_store_engine(self.url, busy_timeout_s=busy_timeout_s)
        self._reader = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        with self._errors():
            upgrade(self.engine)
            self._register_study()

    # -- plumbing -------------------------------------------------------------------------------------------
    @property
    def database(self) -> str:
        """The database as shown to people (SQLite path, or the URL without password)."""
        return describe_url(self.url)

    def _errors(self):
        return store_errors(self.url, busy_timeout_s=self.busy_timeout_s)

    @contextmanager
    def session(self, *, reason: str | None = None) -> Iterator[Session]:
        """A session in one transaction, committed on success and rolled back on any error.

        Updates and deletes of study rows through this session need ``reason``; every change is audited
        under the store's actor.
        """
        with self._errors():
            sess = Session(
                self.engine, expire_on_commit=False, info={ACTOR_KEY: self.actor, REASON_KEY: reason}
            )
            try:
                with sess.begin():
                    yield sess
            finally:
                sess.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session (never takes the SQLite write lock, so it does not wait for writers)."""
        with self._errors():
            sess = Session(self._reader, expire_on_commit=False, info={ACTOR_KEY: self.actor})
            try:
                with sess.begin():
                    yield sess
                    if sess.new or sess.dirty or sess.deleted:
                        raise StoreError("a read-only session of the store cannot change records")
            finally:
                sess.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection (Core) for queries and exports (never takes the SQLite write lock)."""
        with self._errors(), self._reader.connect() as conn:
            yield conn

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(study={self.study_id!r}, database={self.database!r}, actor={self.actor!r})"

    def _register_study(self) -> None:
        """Record the study (and the facts of its definition) on first open; follow definition changes."""
        with self.session() as s:
            row = s.get(m.StudyRow, self.study_id)
            bare = self.study is None
            definition = None if bare else plain(self.info.to_dict())
            if row is None:
                s.add(
                    m.StudyRow(
                        id=self.study_id,
                        title=self.info.title,
                        design=self.info.design,
                        definition=definition,
                    )
                )
                return
            if bare:
                if row.definition:
                    self.info = StudyInfo.from_dict(row.definition)
                return
            if canonical_json(row.definition) != canonical_json(definition):
                s.info[REASON_KEY] = "study definition changed (study.yaml edited)"
                row.definition, row.title, row.design = definition, self.info.title, self.info.design

    def stored_path(self, path: Path) -> str:
        """The text stored for a file: relative to the study folder when inside it, else absolute."""
        path = Path(path).expanduser().resolve()
        try:
            return path.relative_to(self.study_dir.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def resolve_path(self, stored: str) -> Path:
        """The file a stored path refers to."""
        path = Path(stored)
        return path if path.is_absolute() else self.study_dir / path

    def _subject(self, s: Session, subject_id: str) -> m.SubjectRow:
        row = s.scalar(
            select(m.SubjectRow).where(
                m.SubjectRow.study_id == self.study_id, m.SubjectRow.subject_id == subject_id
            )
        )
        if row is None:
            raise StoreError(
                f"subject {subject_id!r} is not enrolled in study {self.study_id}; "
                f"enrol first: toolkit subject enroll --subject {subject_id} ..."
            )
        return row

    def _visit(self, s: Session, subject: m.SubjectRow, visit_id: str) -> m.VisitRow:
        info = self.info.visit(visit_id)
        if self.info.visits and info is None:
            raise DataError(
                f"visit {visit_id!r} is not a visit of study {self.study_id}; accepted: "
                + ", ".join(v.id for v in self.info.visits)
            )
        row = s.scalar(
            select(m.VisitRow).where(m.VisitRow.subject_pk == subject.id, m.VisitRow.visit_id == visit_id)
        )
        if row is None:
            row = m.VisitRow(
                subject_pk=subject.id, visit_id=visit_id, visit_number=info.number if info else None
            )
            s.add(row)
            s.flush()
        return row

    # -- subjects ---------------------------------------------------------------------------------------------
    def enroll_subject(
        self,
        subject_id: str,
        *,
        age: int,
        sex: str,
        fitzpatrick: str | int,
        race: str | None = None,
        strata: Mapping[str, Any] | None = None,
        site: str | None = None,
    ) -> SubjectRecord:
        """Enrol a subject with demographics and stratum values.

        Parameters
        ----------
        subject_id : str
            Site subject id, e.g. ``"S-001"`` (letters, digits, ``-_.``; at most 40 characters).
        age : int
            Age in years (18–120).
        sex : {'F', 'M', 'U'}
        fitzpatrick : {'I', 'II', 'III', 'IV', 'V', 'VI'} or 1–6
        race : str, optional
        strata : dict, optional
            Value of each stratification factor of the study (e.g. ``{"fitzpatrick_group": "I-III"}``).
        site : str, optional
        """
        subject_id = str(subject_id).strip()
        if not _SUBJECT_ID.match(subject_id):
            raise DataError(
                f"subject id {subject_id!r} is not accepted; use letters, digits, '-', '_' or '.', "
                "at most 40 characters (e.g. S-001)"
            )
        try:
            age_years = int(age)
        except (TypeError, ValueError):
            raise DataError(f"age {age!r} is not a whole number of years") from None
        if isinstance(age, float) and not float(age).is_integer():
            raise DataError(f"age {age!r} is not a whole number of years")
        if not 18 <= age_years <= 120:
            raise DataError(f"age {age_years} is outside 18–120 years (adults only)")
        sex_code = _SEX_WORDS.get(str(sex).strip().lower())
        if sex_code is None:
            raise DataError(f"sex {sex!r} is not accepted; accepted: F, M, U")
        strata_values = {str(k): str(v) for k, v in (strata or {}).items()}
        self._check_strata(strata_values)
        with self.session() as s:
            exists = s.scalar(
                select(m.SubjectRow.id).where(
                    m.SubjectRow.study_id == self.study_id, m.SubjectRow.subject_id == subject_id
                )
            )
            if exists is not None:
                raise StoreError(f"subject {subject_id!r} is already enrolled in study {self.study_id}")
            s.add(
                m.SubjectRow(
                    study_id=self.study_id,
                    subject_id=subject_id,
                    site=site,
                    age=age_years,
                    sex=sex_code,
                    race=race,
                    fitzpatrick=_fitzpatrick(fitzpatrick),
                    strata=strata_values,
                )
            )
        return self.subject(subject_id)

    def _check_strata(self, strata: dict[str, str]) -> None:
        factors = self.info.strata_factors
        if not factors:
            return
        problems = [f"missing value for stratification factor {f!r}" for f in factors if f not in strata]
        problems += [f"{k!r} is not a stratification factor" for k in strata if k not in factors]
        for f, levels in self.info.strata_levels.items():
            if f in strata and levels and strata[f] not in levels:
                problems.append(f"{f}={strata[f]!r} is not a level; accepted: {', '.join(levels)}")
        if problems:
            raise DataError(
                f"strata do not match the study's stratification factors ({', '.join(factors)})",
                details=problems,
            )

    def record_consent(self, subject_id: str, *, signed_on: date) -> None:
        """Record signed informed consent (a later call records a re-consent)."""
        signed = _as_date(signed_on, "signed_on")
        if signed > date.today():
            raise DataError(f"consent date {signed} is in the future")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            s.add(m.ConsentRow(subject_pk=subject.id, signed_on=signed))

    def record_patch_test(
        self, subject_id: str, *, passed: bool, read_on: date, notes: str | None = None
    ) -> None:
        """Record a patch test read; the latest read decides eligibility."""
        if not isinstance(passed, bool):
            raise DataError(f"patch test result {passed!r} must be True (pass) or False (fail)")
        read = _as_date(read_on, "read_on")
        if read > date.today():
            raise DataError(f"patch test read date {read} is in the future")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            consent = s.scalar(
                select(func.min(m.ConsentRow.signed_on)).where(m.ConsentRow.subject_pk == subject.id)
            )
            if consent is None:
                raise StoreError(f"subject {subject_id}: record consent before the patch test")
            s.add(m.PatchTestRow(subject_pk=subject.id, passed=passed, read_on=read, notes=notes))

    def _subject_record(self, s: Session, row: m.SubjectRow) -> SubjectRecord:
        consent = s.scalar(
            select(m.ConsentRow)
            .where(m.ConsentRow.subject_pk == row.id)
            .order_by(m.ConsentRow.id.desc())
            .limit(1)
        )
        patch = s.scalar(
            select(m.PatchTestRow)
            .where(m.PatchTestRow.subject_pk == row.id)
            .order_by(m.PatchTestRow.id.desc())
            .limit(1)
        )
        alloc = s.scalar(select(m.AllocationRow).where(m.AllocationRow.subject_pk == row.id))
        crit = self.info.eligibility
        eligibility = {"consent signed": consent is not None}
        if crit.patch_test_required:
            eligibility["patch test passed"] = bool(patch and patch.passed)
        if crit.age_min_years is not None and crit.age_max_years is not None:
            eligibility[f"age {crit.age_min_years}–{crit.age_max_years} years"] = (
                crit.age_min_years <= row.age <= crit.age_max_years
            )
        if crit.fitzpatrick_types:
            allowed = [FITZPATRICK_TYPES[t - 1] for t in crit.fitzpatrick_types if 1 <= t <= 6]
            eligibility[f"Fitzpatrick type {'/'.join(allowed)}"] = row.fitzpatrick in allowed
        eligibility["not withdrawn"] = row.withdrawn_on is None
        return SubjectRecord(
            subject_id=row.subject_id,
            age=row.age,
            sex=row.sex,
            fitzpatrick=row.fitzpatrick,
            race=row.race,
            site=row.site,
            strata=dict(row.strata or {}),
            enrolled_at=row.enrolled_at,
            consent_signed_on=consent.signed_on if consent else None,
            patch_test=PatchTest(patch.passed, patch.read_on, patch.notes) if patch else None,
            allocation=_allocation(alloc) if alloc else None,
            eligibility=eligibility,
            withdrawn_on=row.withdrawn_on,
        )

    def subject(self, subject_id: str) -> SubjectRecord:
        """The subject's record: demographics, consent, patch test, allocation and eligibility."""
        with self.reading() as s:
            return self._subject_record(s, self._subject(s, subject_id))

    def subjects(self) -> list[SubjectRecord]:
        """All subjects of the study, in enrolment order."""
        with self.reading() as s:
            rows = s.scalars(
                select(m.SubjectRow).where(m.SubjectRow.study_id == self.study_id).order_by(m.SubjectRow.id)
            ).all()
            return [self._subject_record(s, r) for r in rows]

    # -- allocation -------------------------------------------------------------------------------------------
    def arm_codes(self) -> tuple[dict[str, str], str]:
        """The arm -> blinded code map and its source (``allocation.json`` path, or ``"derived"``)."""
        return code_map(self.study_dir, [a.id for a in self.info.arms] or self._allocated_arms())

    def _allocated_arms(self) -> list[str]:
        with self.connect() as conn:
            return sorted(
                conn.scalars(
                    select(m.AllocationRow.arm_id).where(m.AllocationRow.study_id == self.study_id).distinct()
                )
            )

    def allocate(self, subject_id: str) -> Allocation:
        """Give the subject the next unused row of the allocation list in their stratum.

        The subject must have signed consent and passed the patch test. Calling again returns the same
        allocation. Raises :class:`StoreError` when the list is missing (run ``toolkit study randomize``) or
        the stratum's rows are used up.
        """
        with self.session() as s:
            subject = self._subject(s, subject_id)
            existing = s.scalar(select(m.AllocationRow).where(m.AllocationRow.subject_pk == subject.id))
            if existing is not None:
                return _allocation(existing)
            record = self._subject_record(s, subject)
            if not record.eligible:
                raise StoreError(
                    f"subject {subject_id} cannot be randomised: not met: {', '.join(record.unmet)}"
                )
            alist = AllocationList.read(self.study_dir)
            rows = alist.rows_for(subject.strata or {}, self.info.strata_factors)
            if not rows:
                raise StoreError(
                    f"{alist.path} has no rows for subject {subject_id}'s stratum {subject.strata or '{}'}; "
                    "check the subject's strata or run `toolkit study randomize` with this stratum"
                )
            used = set(
                s.scalars(select(m.AllocationRow.rand_no).where(m.AllocationRow.study_id == self.study_id))
            )
            free = [r for r in rows if r.rand_no not in used]
            if not free:
                raise StoreError(
                    f"the allocation list {alist.path} is exhausted for stratum {rows[0].stratum} "
                    f"({len(rows)} rows used); extend it with `toolkit study randomize`"
                )
            row = free[0]
            codes, _ = self.arm_codes()
            code = alist.codes.get(row.arm_id) or codes.get(row.arm_id)
            if code is None:
                raise StoreError(f"{alist.path} line {row.line}: arm {row.arm_id!r} has no blinded code")
            if self.info.arms and self.info.arm(row.arm_id) is None:
                raise DataError(
                    f"{alist.path} line {row.line}: arm {row.arm_id!r} is not an arm of study {self.study_id}"
                )
            alloc = m.AllocationRow(
                study_id=self.study_id,
                subject_pk=subject.id,
                rand_no=row.rand_no,
                stratum=row.stratum,
                arm_id=row.arm_id,
                code=code,
                side_map=row.side_map,
            )
            s.add(alloc)
            s.flush()
            return _allocation(alloc)

    # -- deliveries -------------------------------------------------------------------------------------------
    def start_delivery(
        self,
        subject_id: str,
        *,
        session_number: int,
        arm_id: str,
        side: str | None,
        prescription: dict,
        bench: dict,
        instruments: dict,
        settings: dict,
        resumed_from: int | None = None,
        started_at: datetime | None = None,
    ) -> int:
        """Record the start of a treatment session (status ``in_progress``); return the delivery id.

        Refused unless the subject is eligible and allocated to ``arm_id`` (on ``side`` for split-face
        designs). A resumed or repeated session passes ``resumed_from`` = the id of the first record.
        """
        if int(session_number) < 1:
            raise DataError(f"session_number {session_number!r} must be 1 or more")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            record = self._subject_record(s, subject)
            if not record.eligible:
                raise StoreError(
                    f"subject {subject_id} cannot be treated: not met: {', '.join(record.unmet)}"
                )
            alloc = record.allocation
            if alloc is None:
                raise StoreError(f"subject {subject_id} is not randomised; allocate before treating")
            if alloc.side_map:
                if side not in alloc.side_map:
                    raise DataError(
                        f"subject {subject_id} is split-face: side must be one of {', '.join(alloc.side_map)}"
                    )
                expected = alloc.side_map[side]
            else:
                expected = alloc.arm_id
            if arm_id != expected:
                raise StoreError(
                    f"subject {subject_id} is allocated to arm {expected!r}"
                    + (f" on the {side} side" if alloc.side_map else "")
                    + f", not {arm_id!r}; refusing to record a delivery of the wrong treatment"
                )
            if resumed_from is not None:
                first = s.get(m.DeliveryRow, int(resumed_from))
                if first is None or first.subject_pk != subject.id:
                    raise StoreError(
                        f"resumed_from={resumed_from}: no delivery #{resumed_from} of {subject_id}"
                    )
            row = m.DeliveryRow(
                subject_pk=subject.id,
                session_number=int(session_number),
                arm_id=arm_id,
                side=side,
                prescription=_json_ready(prescription, "prescription"),
                bench=_json_ready(bench, "bench"),
                instruments=_json_ready(instruments, "instruments"),
                settings=_json_ready(settings, "settings"),
                status="in_progress",
                resumed_from=resumed_from,
                started_at=started_at or datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            return row.id

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        outcome: str,
        reason: str | None,
        dose: dict,
        verification: list[dict],
        waveforms: list[tuple[Path, str]],
        ended_at: datetime | None = None,
    ) -> None:
        """Record how a session ended, the delivered dose, verification results and waveform files.

        ``outcome`` is ``completed``, ``aborted`` (``reason`` required) or ``output_state_unknown``
        (``reason`` required). Each waveform file must exist and match its SHA-256.
        """
        if outcome not in DELIVERY_OUTCOMES:
            raise DataError(f"outcome {outcome!r} is not accepted; accepted: {', '.join(DELIVERY_OUTCOMES)}")
        if outcome != "completed" and not (reason and reason.strip()):
            raise DataError(f"a delivery that ended '{outcome}' needs a reason")
        files = []
        for path, digest in waveforms:
            files.append((self.stored_path(Path(path)), self._checked_sha(Path(path), digest, "waveform")))
        why = reason if reason else f"session ended: {outcome}"
        with self.session(reason=why) as s:
            row = s.get(m.DeliveryRow, int(delivery_id))
            if row is None:
                raise StoreError(f"no delivery #{delivery_id} in {self.database}")
            if row.status != "in_progress":
                raise StoreError(
                    f"delivery #{delivery_id} already ended ({row.status}); a repeat session is a new record "
                    "(start_delivery(..., resumed_from=...))"
                )
            row.status = outcome
            row.reason = reason
            row.dose = _json_ready(dose, "dose")
            row.verification = _json_ready(list(verification), "verification")
            row.ended_at = ended_at or datetime.now(UTC)
            for stored, digest in files:
                s.add(m.WaveformFileRow(delivery_id=row.id, path=stored, sha256=digest))

    def close_interrupted_delivery(
        self,
        delivery_id: int,
        *,
        reason: str,
        outcome: str = "aborted",
        now: datetime | None = None,
        grace_min: float = INTERRUPTED_GRACE_MIN,
    ) -> None:
        """Close a delivery record that its host left ``in_progress`` (a crash, a power cut, a killed process).

        The stimulator stopped by itself within one burst (bursts are finite and re-triggered by the host), but
        nobody recorded how the session ended. The record keeps its prescription, bench and instruments, and
        gets ``outcome`` (``aborted``, or ``output_state_unknown`` when the output was not seen off), the
        reason prefixed ``interrupted:``, the closing time as its end, and no dose (not measured). The change is
        audited like any other. Closing makes the subject count as treated (safety population) and lets the
        session be repeated as a linked record.

        Refused while the session could still be running: until its start plus the prescribed duration plus
        ``grace_min`` minutes.
        """
        if outcome not in ("aborted", "output_state_unknown"):
            raise DataError(f"outcome {outcome!r} is not accepted for an interrupted session; accepted: "
                            "aborted, output_state_unknown")
        if not (reason and reason.strip()):
            raise DataError("closing an interrupted session needs a reason (what happened to the host)")
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        with self.session(reason=f"interrupted session closed: {reason.strip()}") as s:
            row = s.get(m.DeliveryRow, int(delivery_id))
            subject = s.get(m.SubjectRow, row.subject_pk) if row is not None else None
            if row is None or subject is None or subject.study_id != self.study_id:
                raise StoreError(f"no delivery #{delivery_id} in study {self.study_id} ({self.database})")
            if row.status != "in_progress":
                raise StoreError(f"delivery #{delivery_id} is not open: it ended {row.status}; nothing to close")
            earliest = interrupted_close_from(row.started_at, row.prescription, grace_min)
            if now < earliest:
                raise StoreError(
                    f"delivery #{delivery_id} started {row.started_at:%Y-%m-%d %H:%M} UTC and may still be running; "
                    f"it can be closed from {earliest:%Y-%m-%d %H:%M} UTC, {grace_min:g} min after its prescribed "
                    "end (a running session ends itself on the bench)"
                )
            row.status = outcome
            row.reason = f"interrupted: {reason.strip()}"
            row.dose = {}
            row.verification = []
            row.ended_at = now

    def deliveries(self, subject_id: str | None = None) -> Any:
        """Delivery sessions as a :class:`pandas.DataFrame`, one row per record (oldest first)."""
        import pandas as pd

        stmt = (
            select(m.DeliveryRow, m.SubjectRow.subject_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.DeliveryRow.subject_pk)
            .where(m.SubjectRow.study_id == self.study_id)
            .order_by(m.DeliveryRow.id)
        )
        if subject_id is not None:
            stmt = stmt.where(m.SubjectRow.subject_id == subject_id)
        with self.reading() as s:
            rows = s.execute(stmt).all()
            waves = {}
            for w in s.scalars(select(m.WaveformFileRow).order_by(m.WaveformFileRow.id)):
                waves.setdefault(w.delivery_id, []).append({"path": w.path, "sha256": w.sha256})
        columns = [
            "delivery_id", "subject_id", "session_number", "arm_id", "side", "status", "reason", "started_at",
            "ended_at", "resumed_from", "prescription", "bench", "instruments", "settings", "dose",
            "verification", "waveforms",
        ]  # fmt: skip
        records = [
            {
                "delivery_id": d.id,
                "subject_id": sid,
                "session_number": d.session_number,
                "arm_id": d.arm_id,
                "side": d.side,
                "status": d.status,
                "reason": d.reason,
                "started_at": d.started_at,
                "ended_at": d.ended_at,
                "resumed_from": d.resumed_from,
                "prescription": d.prescription,
                "bench": d.bench,
                "instruments": d.instruments,
                "settings": d.settings,
                "dose": d.dose,
                "verification": d.verification,
                "waveforms": waves.get(d.id, []),
            }
            for d, sid in rows
        ]
        return pd.DataFrame.from_records(records, columns=columns)

    # -- photos and measurements ------------------------------------------------------------------------------
    def _checked_sha(self, path: Path, sha256: str, what: str) -> str:
        digest = str(sha256).strip().lower()
        if not _SHA256.match(digest):
            raise DataError(f"{what} {path}: sha256 {sha256!r} is not 64 hexadecimal characters")
        if not path.is_file():
            raise DataError(f"{what} file {path} does not exist")
        actual = sha256_file(path)
        if actual != digest:
            raise DataError(
                f"{what} file {path}: its SHA-256 is {actual}, not the given {digest} (copy damaged or wrong file)"
            )
        return digest

    def add_photo(
        self,
        subject_id: str,
        *,
        visit_id: str,
        path: Path,
        sha256: str,
        view: str = "frontal",
        captured_at: datetime | None = None,
        meta: dict | None = None,
        qc: dict | None = None,
    ) -> int:
        """Register a raw photo of a subject at a visit; return the photo id.

        The file must exist and match ``sha256``; the same file cannot be registered twice.
        """
        path = Path(path)
        digest = self._checked_sha(path, sha256, "photo")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            dup = s.scalar(
                select(m.PhotoRow.id)
                .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id, m.PhotoRow.sha256 == digest)
            )
            if dup is not None:
                raise StoreError(f"photo {path} is already stored as photo #{dup} (same SHA-256)")
            visit = self._visit(s, subject, visit_id)
            row = m.PhotoRow(
                subject_pk=subject.id,
                visit_pk=visit.id,
                view=str(view),
                path=self.stored_path(path),
                sha256=digest,
                captured_at=captured_at,
                meta=_json_ready(meta or {}, "meta"),
                qc=_json_ready(qc, "qc") if qc is not None else None,
            )
            s.add(row)
            s.flush()
            return row.id

    def _photo_records(self, s: Session, where: Any = None) -> list[PhotoRecord]:
        stmt = (
            select(m.PhotoRow, m.SubjectRow.subject_id, m.VisitRow.visit_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .join(m.VisitRow, m.VisitRow.id == m.PhotoRow.visit_pk)
            .where(m.SubjectRow.study_id == self.study_id)
            .order_by(m.PhotoRow.id)
        )
        if where is not None:
            stmt = stmt.where(where)
        return [
            PhotoRecord(
                photo_id=p.id,
                subject_id=sid,
                visit_id=vid,
                view=p.view,
                path=self.resolve_path(p.path),
                sha256=p.sha256,
                captured_at=p.captured_at,
                meta=dict(p.meta or {}),
                qc=p.qc,
            )
            for p, sid, vid in s.execute(stmt).all()
        ]

    def photos(self, subject_id: str | None = None) -> list[PhotoRecord]:
        """Stored photos (optionally of one subject), oldest first."""
        with self.reading() as s:
            return self._photo_records(s, m.SubjectRow.subject_id == subject_id if subject_id else None)

    def pending_photos(self) -> list[PhotoRecord]:
        """Photos that have no measurements yet."""
        with self.reading() as s:
            measured = select(m.MeasurementRunRow.photo_id)
            return self._photo_records(s, m.PhotoRow.id.not_in(measured))

    def add_measurements(self, photo_id: int, frame: Any, *, algorithm_version: str, qc: dict) -> int:
        """Store the metrics of one photo from one algorithm run; return the run id.

        Parameters
        ----------
        photo_id : int
        frame : pandas.DataFrame
            Long form with columns ``region``, ``metric``, ``value`` (optional ``unit``), or wide form with a
            ``region`` column (or index) and one numeric column per metric.
        algorithm_version : str
            Version of the code that computed the metrics (e.g. ``"toolkit 0.1.0 / wrinkles 2"``).
        qc : dict
            Quality-control results of the photo for this run.
        """
        rows = _measurement_rows(frame)
        if not str(algorithm_version).strip():
            raise DataError("algorithm_version is required (the code version that computed the metrics)")
        with self.session() as s:
            photo = s.get(m.PhotoRow, int(photo_id))
            if photo is None:
                raise StoreError(f"no photo #{photo_id} in {self.database}")
            run = m.MeasurementRunRow(
                photo_id=photo.id, algorithm_version=str(algorithm_version), qc=_json_ready(qc or {}, "qc")
            )
            s.add(run)
            s.flush()
            if rows:
                for r in rows:
                    r["run_id"] = run.id
                s.execute(insert(m.MeasurementRow), rows)
            return run.id

    def add_measurement_runs(
        self, runs: Iterable[tuple[int, Any, dict]], *, algorithm_version: str
    ) -> list[int]:
        """Store the metrics of many photos in one transaction (faster than one call per photo).

        Parameters
        ----------
        runs : iterable of (photo_id, frame, qc)
            As for :meth:`add_measurements`, one item per photo.
        algorithm_version : str

        Returns
        -------
        list of int
            The run ids, in input order. Either every run is stored or none.
        """
        items = [(int(pid), _measurement_rows(frame), qc) for pid, frame, qc in runs]
        if not str(algorithm_version).strip():
            raise DataError("algorithm_version is required (the code version that computed the metrics)")
        with self.session() as s:
            known = set(s.scalars(select(m.PhotoRow.id).where(m.PhotoRow.id.in_([i[0] for i in items]))))
            missing = sorted({i[0] for i in items} - known)
            if missing:
                raise StoreError(f"no photo #{', #'.join(map(str, missing))} in {self.database}")
            run_rows = [
                m.MeasurementRunRow(
                    photo_id=pid, algorithm_version=str(algorithm_version), qc=_json_ready(qc or {}, "qc")
                )
                for pid, _, qc in items
            ]
            s.add_all(run_rows)
            s.flush()
            rows = []
            for run, (_, measured, _) in zip(run_rows, items, strict=True):
                for r in measured:
                    r["run_id"] = run.id
                rows.extend(measured)
            if rows:
                s.execute(insert(m.MeasurementRow), rows)
            return [r.id for r in run_rows]

    def measurements(self) -> Any:
        """All measurements with subject, visit, photo and algorithm version (DataFrame, latest runs only)."""
        import pandas as pd

        latest = (
            select(func.max(m.MeasurementRunRow.id).label("run_id"))
            .group_by(m.MeasurementRunRow.photo_id)
            .scalar_subquery()
        )
        stmt = (
            select(
                m.SubjectRow.subject_id,
                m.VisitRow.visit_id,
                m.PhotoRow.id.label("photo_id"),
                m.PhotoRow.view,
                m.MeasurementRunRow.algorithm_version,
                m.MeasurementRow.region,
                m.MeasurementRow.metric,
                m.MeasurementRow.value,
                m.MeasurementRow.unit,
            )
            .join(m.MeasurementRunRow, m.MeasurementRunRow.id == m.MeasurementRow.run_id)
            .join(m.PhotoRow, m.PhotoRow.id == m.MeasurementRunRow.photo_id)
            .join(m.VisitRow, m.VisitRow.id == m.PhotoRow.visit_pk)
            .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
            .where(m.SubjectRow.study_id == self.study_id, m.MeasurementRunRow.id.in_(latest))
        )
        with self.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))

    # -- assessments, AEs, deviations -------------------------------------------------------------------------
    def add_assessment(
        self,
        subject_id: str,
        *,
        visit_id: str,
        scale: str,
        score: float,
        assessor: str,
        side: str | None = None,
    ) -> int:
        """Record a clinician's score on a scale at a visit; return its id.

        The scale must be one of the study's scale endpoints and the score inside its range; ``side``
        (``"left"``/``"right"``) marks a per-side score in split-face studies.
        """
        value = self._check_score(scale, score)
        if not str(assessor or "").strip():
            raise DataError("assessor is required (who scored)")
        if side is not None and side not in ("left", "right"):
            raise DataError(f"side {side!r} is not accepted; accepted: left, right (or leave it out)")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            visit = self._visit(s, subject, visit_id)
            row = m.AssessmentRow(
                subject_pk=subject.id,
                visit_pk=visit.id,
                scale=scale,
                side=side,
                score=value,
                assessor=str(assessor),
            )
            s.add(row)
            s.flush()
            return row.id

    def _check_score(self, scale: str, score: Any) -> float:
        scales = self.info.scales
        if scales and scale not in scales:
            raise DataError(
                f"scale {scale!r} is not a scale of study {self.study_id}; accepted: {', '.join(scales)}"
            )
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise DataError(f"score {score!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"score {score!r} is not a finite number")
        low, high = self.info.scale_range(scale)
        if low is not None and high is not None and not low <= value <= high:
            raise DataError(f"{scale} score {value:g} is outside the scale's range {low:g}–{high:g}")
        return value

    def add_adverse_event(
        self,
        subject_id: str,
        *,
        term: str,
        soc: str,
        severity: str,
        serious: bool,
        relation: str,
        onset: date,
        resolved: date | None = None,
    ) -> int:
        """Record an adverse event; return its id."""
        values = _ae_values(term, soc, severity, serious, relation, onset, resolved)
        with self.session() as s:
            subject = self._subject(s, subject_id)
            row = m.AdverseEventRow(subject_pk=subject.id, **values)
            s.add(row)
            s.flush()
            return row.id

    def _ae_records(self, where: Any) -> list[AdverseEventRecord]:
        with self.reading() as s:
            rows = s.execute(
                select(m.AdverseEventRow, m.SubjectRow.subject_id)
                .join(m.SubjectRow, m.SubjectRow.id == m.AdverseEventRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id, where)
                .order_by(m.AdverseEventRow.id)
            ).all()
        return [
            AdverseEventRecord(
                a.id, sid, a.term, a.soc, a.severity, a.serious, a.relation, a.onset, a.resolved
            )
            for a, sid in rows
        ]

    def adverse_events(self, subject_id: str | None = None) -> list[AdverseEventRecord]:
        """Adverse events (optionally of one subject)."""
        where = m.SubjectRow.subject_id == subject_id if subject_id else m.AdverseEventRow.id.is_not(None)
        return self._ae_records(where)

    def unresolved_serious_aes(self, subject_id: str) -> list[AdverseEventRecord]:
        """Serious adverse events of the subject that have no resolution date (treatment must not go on)."""
        return self._ae_records(
            (m.SubjectRow.subject_id == subject_id)
            & m.AdverseEventRow.serious.is_(True)
            & m.AdverseEventRow.resolved.is_(None)
        )

    def add_deviation(self, subject_id: str, *, description: str, category: str) -> int:
        """Record a protocol deviation (``minor`` or ``major``; major ones exclude from per-protocol)."""
        cat = _choice(category, DEVIATION_CATEGORIES, "deviation category")
        if not str(description or "").strip():
            raise DataError("a protocol deviation needs a description")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            row = m.DeviationRow(subject_pk=subject.id, description=str(description), category=cat)
            s.add(row)
            s.flush()
            return row.id

    # -- corrections ------------------------------------------------------------------------------------------
    def update_record(self, table: str, record_id: int, *, reason: str, **changes: Any) -> None:
        """Correct fields of a stored row; the old and new values and ``reason`` go to the audit trail.

        Parameters
        ----------
        table : str
            One of the study tables, e.g. ``"adverse_events"``, ``"subjects"``, ``"assessments"``.
        record_id : int
            The row's id.
        reason : str
            Why (required).
        **changes
            Column -> new value.
        """
        cls = self._table(table)
        if not changes:
            raise DataError("nothing to change: pass column=value pairs")
        with self.session(reason=reason) as s:
            row = s.get(cls, int(record_id))
            if row is None:
                raise StoreError(f"no row #{record_id} in {table}")
            columns = {a.key for a in cls.__mapper__.column_attrs} - {"id"}
            unknown = sorted(set(changes) - columns)
            if unknown:
                raise DataError(
                    f"{table} has no column {', '.join(unknown)}; columns: {', '.join(sorted(columns))}"
                )
            if table == "adverse_events":
                merged = {
                    k: getattr(row, k) for k in ("term", "soc", "severity", "serious", "relation", "onset")
                }
                merged["resolved"] = row.resolved
                merged.update(changes)
                changes = _ae_values(**merged)
            for k, v in changes.items():
                setattr(row, k, v)

    def delete_record(self, table: str, record_id: int, *, reason: str) -> None:
        """Delete a stored row (e.g. a duplicate entry); the old values and ``reason`` are audited."""
        cls = self._table(table)
        with self.session(reason=reason) as s:
            row = s.get(cls, int(record_id))
            if row is None:
                raise StoreError(f"no row #{record_id} in {table}")
            s.delete(row)

    def _table(self, table: str) -> type[m.Base]:
        if table not in _TABLES:
            raise DataError(f"table {table!r} cannot be corrected; accepted: {', '.join(sorted(_TABLES))}")
        return _TABLES[table]

    # -- blinding ---------------------------------------------------------------------------------------------
    def unblind(self, *, by: str, reason: str) -> None:
        """Record the unblinding of analysis outputs (who, why); later exports carry real arm names."""
        if not str(by or "").strip():
            raise DataError("unblinding needs the name of the person who unblinds (by=...)")
        if not str(reason or "").strip():
            raise DataError("unblinding needs a reason (e.g. 'database lock, final analysis')")
        with self.session(reason=reason) as s:
            s.add(m.UnblindingRow(study_id=self.study_id, by=str(by), reason=str(reason)))

    @property
    def is_unblinded(self) -> bool:
        """True once an unblinding has been recorded."""
        with self.connect() as conn:
            return (
                conn.scalar(
                    select(func.count(m.UnblindingRow.id)).where(m.UnblindingRow.study_id == self.study_id)
                )
                or 0
            ) > 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def _allocation(row: m.AllocationRow) -> Allocation:
    return Allocation(
        rand_no=row.rand_no,
        arm_id=row.arm_id,
        code=row.code,
        stratum=row.stratum,
        side_map=dict(row.side_map) if row.side_map else None,
        allocated_at=row.allocated_at,
    )


def _json_ready(value: Any, field: str) -> Any:
    try:
        return plain(value)
    except TypeError as exc:
        raise DataError(f"{field}: {exc}") from None


def _ae_values(
    term: Any, soc: Any, severity: Any, serious: Any, relation: Any, onset: Any, resolved: Any
) -> dict[str, Any]:
    if not str(term or "").strip():
        raise DataError("adverse event term is required")
    if not str(soc or "").strip():
        raise DataError("adverse event system organ class (soc) is required")
    if not isinstance(serious, bool):
        raise DataError(f"serious {serious!r} must be True or False")
    onset_d = _as_date(onset, "onset")
    resolved_d = _as_date(resolved, "resolved") if resolved not in (None, "") else None
    if onset_d > date.today():
        raise DataError(f"onset {onset_d} is in the future")
    if resolved_d is not None and resolved_d < onset_d:
        raise DataError(f"resolved {resolved_d} is before onset {onset_d}")
    return {
        "term": str(term).strip(),
        "soc": str(soc).strip(),
        "severity": _choice(severity, AE_SEVERITIES, "severity"),
        "serious": serious,
        "relation": _choice(relation, AE_RELATIONS, "relation"),
        "onset": onset_d,
        "resolved": resolved_d,
    }


def _measurement_rows(frame: Any) -> list[dict[str, Any]]:
    import numpy as np
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"measurements must be a pandas DataFrame, not {type(frame).__name__}")
    df = frame
    if "region" not in df.columns and df.index.name == "region":
        df = df.reset_index()
    if "region" not in df.columns:
        raise DataError(f"measurements need a 'region' column; found {', '.join(map(str, df.columns))}")
    if not {"metric", "value"} <= set(df.columns):
        id_cols = ["region"] + (["unit"] if "unit" in df.columns else [])
        value_cols = [c for c in df.columns if c not in id_cols]
        bad = [c for c in value_cols if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise DataError(f"measurement columns {', '.join(map(str, bad))} are not numeric")
        df = df.melt(id_vars=id_cols, value_vars=value_cols, var_name="metric", value_name="value")
    if df.duplicated(["region", "metric"]).any():
        dups = df.loc[df.duplicated(["region", "metric"]), ["region", "metric"]].head(3).values.tolist()
        raise DataError(f"measurements repeat region/metric pairs, e.g. {dups}")
    try:
        values = pd.to_numeric(df["value"], errors="raise").astype(float).to_numpy()
    except (TypeError, ValueError):
        raise DataError("measurement values must be numbers") from None
    regions = df["region"].astype(str).to_numpy()
    metrics = df["metric"].astype(str).to_numpy()
    units = df["unit"].to_numpy() if "unit" in df.columns else [None] * len(df)
    finite = np.isfinite(values)
    # SQLite stores NaN as NULL; make that explicit so every backend keeps the same value
    return [
        {
            "region": regions[i],
            "metric": metrics[i],
            "value": float(values[i]) if finite[i] else None,
            "unit": None
            if units[i] is None or (isinstance(units[i], float) and math.isnan(units[i]))
            else str(units[i]),
        }
        for i in range(len(df))
    ]


def open_store(
    study: Any,
    url: str | None = None,
    actor: str | None = None,
    *,
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
) -> Store:
    """Open (creating and migrating if needed) the store of ``study``; usable as a context manager.

    Parameters
    ----------
    study : toolkit.study.Study, str or path
        The study model, a study id, or the path of a ``study.yaml`` / study folder.
    url : str, optional
        SQLAlchemy URL (default ``$TOOLKIT_DB_URL``, else ``data/<study-id>/study.db``).
    actor : str, optional
        Who makes the changes.
    busy_timeout_s : float
        SQLite busy timeout in seconds.

    Examples
    --------
    >>> with open_store(study, actor="J. Doe") as store:  # doctest: +SKIP
    ...     store.enroll_subject("S-001", age=45, sex="F", fitzpatrick="III")
    """
    if isinstance(study, Path) or (
        isinstance(study, str) and (os.sep in study or study.endswith((".yaml", ".yml")))
    ):
        from toolkit.store.study_view import load_study_from

        study = load_study_from(study)
    try:
        return Store(study, url=url, actor=actor, busy_timeout_s=busy_timeout_s)
    except IntegrityError as exc:  # pragma: no cover - translated inside, kept for safety
        raise StoreError(str(exc.orig)) from None
