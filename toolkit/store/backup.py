"""Backups of a study's database with checksums, and restores that verify before they replace anything.

A backup is a folder ``data/<study-id>/backups/<UTC time>/`` holding the database (SQLite: a consistent copy
made with SQLite's online backup API while others may write; PostgreSQL: a ``pg_dump`` custom-format dump),
copies of the audit anchor file and the allocation ledger, and ``backup.json`` with each file's SHA-256 and
the audit head (sequence number and hash) the copy ends at.

A restore checks every checksum, verifies the copy's audit chain, checks that the copy agrees with the
anchors (it must be an earlier state of *this* study's database, not another one), moves the current
database aside (never deletes it), puts the copy in place and appends a signed ``restore`` line to the anchor
file that names the backup and how many anchored entries were given up. The allocation ledger is never
rolled back: a randomisation number handed out after the backup stays used.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.anchors import ANCHOR_FILE, anchor_problems, append_anchor, read_anchors
from toolkit.store.audit import sha256_file
from toolkit.store.identity import key_fingerprint
from toolkit.store.ledger import LEDGER_FILE

if TYPE_CHECKING:
    from toolkit.store.store import Store

__all__ = ["BACKUP_MANIFEST", "BackupInfo", "backup_store", "restore_store"]

#: the manifest file of a backup folder
BACKUP_MANIFEST = "backup.json"


@dataclass(frozen=True)
class BackupInfo:
    """A backup folder and what it holds."""

    folder: Path
    study_id: str
    backend: str
    #: the audit head the copy ends at
    head_seq: int
    head_hash: str
    files: dict[str, str]


def _pg_tool(name: str) -> str:
    import glob

    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise StoreError(f"{name} was not found; install the PostgreSQL client (apt-get install postgresql-client)")
    return found


def _libpq_url(store: Store) -> str:
    return store.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _head(conn: Any) -> tuple[int, str]:
    t = m.AuditEntry.__table__
    seq = conn.scalar(select(func.max(t.c.seq))) or 0
    digest = conn.scalar(select(t.c.hash).where(t.c.seq == seq)) if seq else "0" * 64
    return int(seq), str(digest)


def backup_store(store: Store, out: Path | None = None) -> BackupInfo:
    """Back up the store's database, anchors and ledger into a new folder; return what was written."""
    store._require("backup", "back up the database")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = Path(out) if out is not None else store.study_dir / "backups" / stamp
    if folder.exists() and any(folder.iterdir()):
        raise DataError(f"backup folder {folder} is not empty; give a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    backend = store.url.get_backend_name()
    if backend == "sqlite":
        target = folder / "study.db"
        with store._errors():
            src = sqlite3.connect(str(store.url.database), timeout=store.busy_timeout_s)
            dst = sqlite3.connect(str(target))
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        db = sqlite3.connect(str(target))
        try:
            row = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            db.close()
        head = (int(row[0]), str(row[1])) if row else (0, "0" * 64)
    elif backend == "postgresql":
        target = folder / "study.pgdump"
        with store.connect() as conn:
            head = _head(conn)
        proc = subprocess.run(
            [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), _libpq_url(store)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise StoreError(f"pg_dump of {store.database} failed: {proc.stderr.strip()[-400:]}")
    else:  # pragma: no cover - the store supports these two
        raise StoreError(f"backups of {backend} databases are not supported")
    for name in (ANCHOR_FILE, LEDGER_FILE):
        if (store.study_dir / name).is_file():
            shutil.copy2(store.study_dir / name, folder / name)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.name != BACKUP_MANIFEST}
    doc = {
        "study_id": store.study_id, "created": stamp, "backend": backend, "database": store.database,
        "by": store.actor, "audit_head": {"seq": head[0], "hash": head[1]}, "files": files,
    }  # fmt: skip
    (folder / BACKUP_MANIFEST).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return BackupInfo(folder, store.study_id, backend, head[0], head[1], files)


def read_backup(folder: Path) -> BackupInfo:
    """Read a backup's manifest and check every file's SHA-256; a mismatch or a missing file is refused."""
    folder = Path(folder)
    path = folder / BACKUP_MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        files = {str(k): str(v) for k, v in doc["files"].items()}
        head = doc["audit_head"]
        info = BackupInfo(folder, str(doc["study_id"]), str(doc["backend"]), int(head["seq"]), str(head["hash"]), files)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a readable backup manifest ({exc}); nothing was restored") from None
    for name, digest in files.items():
        f = folder / name
        if not f.is_file():
            raise DataError(f"backup {folder}: {name} is missing; nothing was restored")
        if sha256_file(f) != digest:
            raise DataError(
                f"backup {folder}: {name} does not match its SHA-256 in {BACKUP_MANIFEST} (damaged or altered); "
                "nothing was restored"
            )
    return info


def restore_store(study: Any, folder: Path, *, reason: str, url: str | None = None) -> BackupInfo:
    """Restore the study's database from a backup folder, verified first (see the module text).

    The restoring user logs in against the backup's own user table ($TOOLKIT_USER/$TOOLKIT_PASSWORD) and
    needs the ``restore`` permission (data manager or administrator).
    """
    from toolkit.store.audit import verify_audit
    from toolkit.store.database import resolve_url
    from toolkit.store.store import Store
    from toolkit.store.study_view import StudyInfo

    if not str(reason or "").strip():
        raise DataError("a restore needs a reason (recorded with the signed restore anchor)")
    info = read_backup(folder)
    study_id = StudyInfo.from_study(study).id
    if info.study_id != study_id:
        raise DataError(f"backup {folder} is of study {info.study_id}, not {study_id}; nothing was restored")
    target_url = resolve_url(study_id, url)
    backend = target_url.get_backend_name()
    if backend != info.backend:
        raise DataError(f"backup {folder} is a {info.backend} backup; the study's database is {backend}")
    from toolkit.paths import study_data_dir

    data_dir = study_data_dir(study_id, create=True)
    anchors = read_anchors(data_dir / ANCHOR_FILE)
    if backend == "sqlite":
        live = Path(target_url.database)
        staging = live.with_name(f".restore-{os.getpid()}.db")
        shutil.copy2(folder / "study.db", staging)
        try:
            with Store(study, url=f"sqlite:///{staging}") as copy:
                who = copy._require("restore", "restore the database")
                _check_copy(copy, info, anchors, data_dir, verify_audit)
            if live.exists():
                aside = live.with_name(f"study.db.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
                for suffix in ("-wal", "-shm"):
                    side = Path(str(live) + suffix)
                    if side.exists():
                        side.unlink()
                os.replace(live, aside)
            os.replace(staging, live)
        finally:
            if staging.exists():
                staging.unlink()
    else:
        proc = subprocess.run(
            [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
             "--dbname", target_url.set(drivername="postgresql").render_as_string(hide_password=False),
             str(folder / "study.pgdump")],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise StoreError(f"pg_restore into {target_url.render_as_string()} failed: {proc.stderr.strip()[-400:]}")
        with Store(study, url=url) as copy:
            who = copy._require("restore", "restore the database")
            _check_copy(copy, info, anchors, data_dir, verify_audit)
    if (folder / LEDGER_FILE).is_file() and not (data_dir / LEDGER_FILE).is_file():
        shutil.copy2(folder / LEDGER_FILE, data_dir / LEDGER_FILE)
    if (folder / ANCHOR_FILE).is_file() and not (data_dir / ANCHOR_FILE).is_file():
        shutil.copy2(folder / ANCHOR_FILE, data_dir / ANCHOR_FILE)
    newest = max((a.seq for a in anchors), default=info.head_seq)
    append_anchor(
        data_dir / ANCHOR_FILE, study_id=study_id, seq=info.head_seq, head_hash=info.head_hash, user=who.username,
        key=key_fingerprint(who.public_key), sign=who.sign, kind="restore",
        extra={"backup": str(folder), "reason": str(reason).strip(),
               "entries_given_up": max(0, newest - info.head_seq)},
    )  # fmt: skip
    return info


def _check_copy(copy: Any, info: BackupInfo, anchors: list, data_dir: Path, verify_audit: Any) -> None:
    report = verify_audit(copy, check_files=False)
    chain_problems = [p for p in report.problems() if not p.startswith(ANCHOR_FILE) and ANCHOR_FILE not in p]
    if report.first_broken is not None or report.data_problems or report.signature_problems:
        raise DataError(
            f"backup {info.folder}: its audit trail does not verify; nothing was restored",
            details=chain_problems[:10],
        )
    with copy.connect() as conn:
        head = _head(conn)
        t = m.AuditEntry.__table__
        chain = {r.seq: r.hash for r in conn.execute(select(t.c.seq, t.c.hash).where(t.c.seq <= head[0]))}
        from toolkit.store.integrity import public_keys

        keys = public_keys(conn)
    if head != (info.head_seq, info.head_hash):
        raise DataError(f"backup {info.folder}: the database ends at #{head[0]}, not at the head its manifest records")
    earlier = [a for a in anchors if a.seq <= head[0]]
    problems = anchor_problems(data_dir / ANCHOR_FILE, earlier, chain, head[0], keys, linked=False)
    if problems:
        raise DataError(
            f"backup {info.folder} is not an earlier copy of this study's database (it disagrees with the audit "
            "anchors); nothing was restored",
            details=problems[:10],
        )
