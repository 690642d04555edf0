"""Raw photo files: stored once, read-only, checksummed, with their capture metadata beside them.

Layout: ``data/<study-id>/photos/raw/<subject>/<visit>/<sha256[:12]>-<original name>`` plus a JSON
sidecar ``….json`` with the metadata. Both are made read-only (0444); the file is written to a temporary
name and renamed, so an interrupted ingest never leaves a half-written photo. A source file that is itself
incomplete (cut short by an interrupted transfer) or damaged is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from toolkit.errors import DataError
from toolkit.imaging.photo_io import SUPPORTED_SUFFIXES, heif_photo, sha256_file, verify_photo_file
from toolkit.paths import study_data_dir

__all__ = ["StoredPhoto", "raw_photo_dir", "store_raw_photo"]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class StoredPhoto:
    """A raw photo in the study's data folder."""

    path: Path
    sha256: str
    meta: dict
    already_present: bool


def raw_photo_dir(study_id: str, subject_id: str, visit_id: str) -> Path:
    """``data/<study>/photos/raw/<subject>/<visit>`` (not created)."""
    for label, value in (("study id", study_id), ("subject id", subject_id), ("visit id", visit_id)):
        if not _SAFE.match(value):
            raise DataError(f"{label} {value!r} cannot name a folder; use letters, digits, '-', '_' and '.'")
    return study_data_dir(study_id) / "photos" / "raw" / subject_id / visit_id


def store_raw_photo(
    source: str | Path,
    *,
    study_id: str,
    subject_id: str,
    visit_id: str,
    meta: dict | None = None,
) -> StoredPhoto:
    """Copy a photo file into the raw store, read-only, and return where it went with its SHA-256.

    Raises
    ------
    DataError
        The file is missing, has an unsupported suffix, is not an image, or is incomplete or damaged
        (:func:`toolkit.imaging.photo_io.verify_photo_file`); nothing is written then.
    """
    source = Path(source)
    if not source.is_file():
        raise DataError(f"photo file not found: {source}")
    if source.suffix.lower() not in SUPPORTED_SUFFIXES:
        # (an HEIC under a supported name is told by verify_photo_file's header read)
        if heif := heif_photo(source):
            raise DataError(f"{source}: {heif}")
        raise DataError(f"{source}: unsupported file type {source.suffix!r}; accepted: {', '.join(SUPPORTED_SUFFIXES)}")
    header = verify_photo_file(source)  # a file cut short or damaged never enters the raw store
    digest = sha256_file(source)
    folder = raw_photo_dir(study_id, subject_id, visit_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", source.name)
    prefix = f"{digest[:12]}-"
    # a file taken from the raw store itself already carries its hash prefix: it is not prefixed twice
    dest = folder / (name if name.startswith(prefix) else prefix + name)
    full_meta = {
        "original_name": source.name,
        "width_px": header.width,
        "height_px": header.height,
        "format": header.format,
        "mode": header.mode,
        "exif_orientation": header.orientation,
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(meta or {}),
    }
    if dest.exists():
        if sha256_file(dest) != digest:
            raise DataError(f"{dest} exists with different content; the raw store was modified outside the toolkit")
        return StoredPhoto(dest, digest, full_meta, already_present=True)
    tmp = folder / f".{dest.name}.part"
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o444)
    tmp.replace(dest)
    sidecar = dest.with_name(dest.name + ".json")
    sidecar.write_text(json.dumps({"sha256": digest, **full_meta}, indent=2, default=str), encoding="utf-8")
    os.chmod(sidecar, 0o444)
    return StoredPhoto(dest, digest, full_meta, already_present=False)
