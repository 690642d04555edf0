"""What a report may show: the study's blinding state, whose faces may appear, and the audit head it was built on.

Read from the study's database when the data folder has one (SQLite ``study.db``, or ``$TOOLKIT_DB_URL``).
A folder that holds a study's allocation list or audit anchors but whose database cannot be read is treated
as blinded, with no consent to publication: a report never shows more because a fact is missing. A plain
folder of analysis outputs (a sample, or outputs copied elsewhere) has no such record; its faces are masked
all the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ReportPrivacy", "masked_face", "report_privacy"]


@dataclass(frozen=True)
class ReportPrivacy:
    """The facts that decide what the report shows."""

    #: arms must not be revealed (no waveforms, doses or device settings; arms coded)
    blinded: bool
    #: why, in words (printed in the index and the manifest)
    basis: str
    #: subject ids whose consent to publication of their face is recorded
    publishable: frozenset[str] = frozenset()
    #: the audit trail's head (sequence number, hash) the report was built from, if known
    audit_head: tuple[int, str] | None = None


def report_privacy(study_id: str, data_dir: Path) -> ReportPrivacy:
    """The blinding state, the publishable faces and the audit head of the study in ``data_dir``."""
    from toolkit.errors import ToolkitError

    has_db = (data_dir / "study.db").is_file() or bool(os.environ.get("TOOLKIT_DB_URL"))
    study_markers = any((data_dir / n).is_file() for n in ("allocation.csv", "audit-anchors.jsonl"))
    if not has_db:
        if study_markers:
            return ReportPrivacy(True, "the study's database is not available: treated as blinded")
        return ReportPrivacy(False, "no study database (a folder of analysis outputs): arms as the datasets show")
    try:
        return _from_store(study_id)
    except ToolkitError as exc:
        return ReportPrivacy(True, f"the study's database could not be read ({exc}): treated as blinded")


def _from_store(study_id: str) -> ReportPrivacy:
    from sqlalchemy import func, select

    from toolkit.store import models as m
    from toolkit.store import open_store

    with open_store(study_id, login=False) as store:
        unblinded = store.is_unblinded
        with store.connect() as conn:
            rows = conn.execute(
                select(m.SubjectRow.subject_id, m.ConsentRow.publication)
                .join(m.ConsentRow, m.ConsentRow.subject_pk == m.SubjectRow.id)
                .where(m.SubjectRow.study_id == study_id)
                .order_by(m.ConsentRow.id)
            ).all()
            t = m.AuditEntry.__table__
            seq = conn.scalar(select(func.max(t.c.seq)))
            head = (int(seq), str(conn.scalar(select(t.c.hash).where(t.c.seq == seq)))) if seq else None
    latest: dict[str, bool | None] = {}
    for subject_id, publication in rows:  # the latest consent counts
        latest[subject_id] = publication
    basis = "unblinded (recorded and signed in the study database)" if unblinded else "blinded (study database)"
    return ReportPrivacy(not unblinded, basis, frozenset(s for s, ok in latest.items() if ok), head)


def masked_face(path: Path, block_fraction: float = 1 / 14) -> np.ndarray:
    """The image at ``path`` pixelated into coarse blocks: the overlay colours stay, the face is unrecognisable."""
    import cv2

    from toolkit.errors import DataError

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: not a readable image")
    h, w = img.shape[:2]
    block = max(4, int(round(max(h, w) * block_fraction)))
    small = cv2.resize(img, (max(1, w // block), max(1, h // block)), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(coarse, cv2.COLOR_BGR2RGB)
