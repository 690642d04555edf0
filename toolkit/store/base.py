"""The base of the :class:`~toolkit.store.store.Store`: connection, transactions, paths and shared lookups.

Each aggregate of the store (subjects, allocations, deliveries, photos, measurements, assessments, safety,
corrections, blinding) lives in a module of its own as a class built on :class:`StoreBase`; the
:class:`~toolkit.store.store.Store` facade combines them. Each public method is one logical write in one
transaction: it either happens completely, with its audit entries, or not at all.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.paths import study_data_dir
from toolkit.store import models as m
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
from toolkit.store.study_view import StudyInfo
from toolkit.store.values import SHA256_HEX

__all__ = ["StoreBase"]


class StoreBase:
    """What every part of the store shares: the study, the database connection, transactions and paths.

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(study={self.study_id!r}, database={self.database!r}, actor={self.actor!r})"

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


    def _checked_sha(self, path: Path, sha256: str, what: str) -> str:
        digest = str(sha256).strip().lower()
        if not SHA256_HEX.match(digest):
            raise DataError(f"{what} {path}: sha256 {sha256!r} is not 64 hexadecimal characters")
        if not path.is_file():
            raise DataError(f"{what} file {path} does not exist")
        actual = sha256_file(path)
        if actual != digest:
            raise DataError(
                f"{what} file {path}: its SHA-256 is {actual}, not the given {digest} (copy damaged or wrong file)"
            )
        return digest



def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"

