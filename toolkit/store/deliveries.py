"""Delivery sessions: started, finished (dose, verification, waveform files) or closed as interrupted."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.signatures import Signatures
from toolkit.store.subjects import Subjects
from toolkit.store.values import json_ready

__all__ = ["DELIVERY_OUTCOMES", "INTERRUPTED_GRACE_MIN", "Deliveries", "interrupted_close_from"]

#: how a delivery session can end
DELIVERY_OUTCOMES = ("completed", "aborted", "output_state_unknown")
#: minutes after its prescribed end before a session left in progress may be closed as interrupted
INTERRUPTED_GRACE_MIN = 10.0


def interrupted_close_from(started_at: datetime, prescription: Mapping | None,
                           grace_min: float = INTERRUPTED_GRACE_MIN) -> datetime:
    """When a session left in progress can no longer be running: its start + prescribed duration + grace."""
    minutes = float((prescription or {}).get("duration_min") or 0.0)
    return started_at + timedelta(minutes=minutes + float(grace_min))


class Deliveries(Subjects, Signatures):
    """Treatment sessions on the bench, one record per session (a repeat is a new, linked record)."""

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
        self._require("deliver", "record treatment sessions")
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
                prescription=json_ready(prescription, "prescription"),
                bench=json_ready(bench, "bench"),
                instruments=json_ready(instruments, "instruments"),
                settings=json_ready(settings, "settings"),
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
        (``reason`` required). Each waveform file must exist and match its SHA-256. A completed session is
        signed ``performed`` by its operator (the logged-in user) in the same transaction, bound to the
        record's content and its waveform files.
        """
        self._require("deliver", "record treatment sessions")
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
            row.dose = json_ready(dose, "dose")
            row.verification = json_ready(list(verification), "verification")
            row.ended_at = ended_at or datetime.now(UTC)
            for stored, digest in files:
                s.add(m.WaveformFileRow(delivery_id=row.id, path=stored, sha256=digest))
            if outcome == "completed":
                self._sign_in(s, "deliveries", row.id, "performed")

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
        self._require("deliver", "close interrupted sessions")
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
        self._require("read_allocation", "see delivery records (arms, doses, settings)")
        import pandas as pd

        mine = m.SubjectRow.study_id == self.study_id
        if subject_id is not None:
            mine = mine & (m.SubjectRow.subject_id == subject_id)
        stmt = (
            select(m.DeliveryRow, m.SubjectRow.subject_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.DeliveryRow.subject_pk)
            .where(mine)
            .order_by(m.DeliveryRow.id)
        )
        w = m.WaveformFileRow
        # the files of these deliveries only (not every file of the database)
        files = (
            select(w.delivery_id, w.path, w.sha256)
            .join(m.DeliveryRow, m.DeliveryRow.id == w.delivery_id)
            .join(m.SubjectRow, m.SubjectRow.id == m.DeliveryRow.subject_pk)
            .where(mine)
            .order_by(w.id)
        )
        with self.reading() as s:
            rows = s.execute(stmt).all()
            waves = {}
            for delivery_id, path, digest in s.execute(files):
                waves.setdefault(delivery_id, []).append({"path": path, "sha256": digest})
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

