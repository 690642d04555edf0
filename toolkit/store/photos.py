"""Raw photos: registered once, checksummed, never modified."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from toolkit.errors import StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.records import PhotoRecord
from toolkit.store.values import json_ready

__all__ = ["Photos"]


class Photos(StoreBase):
    """Photos of subjects at visits, with capture metadata and QC."""

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
        self._require("add_photos", "register photos")
        path = Path(path)
        digest = self._checked_sha(path, sha256, "photo")
        with self.session() as s:
            subject = self._subject(s, subject_id)
            visit = self._visit(s, subject, visit_id)  # an unknown visit is said first, with the accepted ones
            dup = s.scalar(
                select(m.PhotoRow.id)
                .join(m.SubjectRow, m.SubjectRow.id == m.PhotoRow.subject_pk)
                .where(m.SubjectRow.study_id == self.study_id, m.PhotoRow.sha256 == digest)
            )
            if dup is not None:
                raise StoreError(f"photo {path} is already stored as photo #{dup} (same SHA-256)", field="source")
            row = m.PhotoRow(
                subject_pk=subject.id,
                visit_pk=visit.id,
                view=str(view),
                path=self.stored_path(path),
                sha256=digest,
                captured_at=captured_at,
                meta=json_ready(meta or {}, "meta"),
                qc=json_ready(qc, "qc") if qc is not None else None,
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
        self._require("read_records", "list photos")
        with self.reading() as s:
            return self._photo_records(s, m.SubjectRow.subject_id == subject_id if subject_id else None)

    def pending_photos(self) -> list[PhotoRecord]:
        """Photos that have no measurements yet."""
        self._require("read_records", "list photos")
        with self.reading() as s:
            measured = select(m.MeasurementRunRow.photo_id)
            return self._photo_records(s, m.PhotoRow.id.not_in(measured))

