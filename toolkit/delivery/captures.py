"""Raw waveform captures of a session, stored once and checksummed.

Each capture is one ``.npz`` file (``time_s``, ``volts_V``, ``amps_A``, a JSON ``meta`` string and the
capture's prescribed envelope, ``envelope_V`` or ``envelope_A``) under
``<data root>/<study-id>/waveforms/<subject>/<session>/``. Files are written to a temporary name and renamed
into place, so a crash never leaves a half-written capture, and never overwritten: a repeated session writes
into its own delivery folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import StoreError
from toolkit.paths import safe_path_part

__all__ = ["CaptureStore", "StoredCapture", "load_capture", "sha256_file"]

def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredCapture:
    """A capture written to disk: its path relative to the study folder and its SHA-256."""

    path: str
    sha256: str
    absolute: Path


class CaptureStore:
    """Writes the captures of one delivery.

    Parameters
    ----------
    study_dir : Path
        ``<data root>/<study-id>``.
    subject_id : str
        Subject identifier (path-safe characters are kept, others replaced by ``_``).
    session_number : int
        Session number of the schedule.
    delivery_id : int
        Store id of the delivery; each delivery writes into its own folder so nothing is overwritten.
    """

    def __init__(self, study_dir: Path, subject_id: str, session_number: int, delivery_id: int) -> None:
        self.study_dir = Path(study_dir)
        self.folder = (
            self.study_dir
            / "waveforms"
            / safe_path_part(subject_id)
            / str(int(session_number))
            / f"delivery-{int(delivery_id)}"
        )
        self._seq = 0
        self.stored: list[StoredCapture] = []

    def save(
        self,
        label: str,
        time_s: np.ndarray,
        volts_V: np.ndarray,
        amps_A: np.ndarray,
        meta: Mapping[str, Any] | None = None,
        arrays: Mapping[str, np.ndarray] | None = None,
    ) -> StoredCapture:
        """Write one capture and return its relative path and checksum; ``arrays`` are stored beside the
        samples (the capture's envelope: :mod:`toolkit.delivery.envelope`)."""
        extra = dict(arrays or {})
        clash = set(extra) & {"time_s", "volts_V", "amps_A", "meta"}
        if clash:
            raise ValueError(f"capture arrays {sorted(clash)} would replace the capture's own")
        self._seq += 1
        name = f"{self._seq:05d}-{safe_path_part(label)}.npz"
        target = self.folder / name
        buffer = io.BytesIO()
        np.savez(
            buffer,
            time_s=np.asarray(time_s, dtype=np.float64),
            volts_V=np.asarray(volts_V, dtype=np.float64),
            amps_A=np.asarray(amps_A, dtype=np.float64),
            meta=np.array(json.dumps(dict(meta or {}), default=str, sort_keys=True)),
            **{k: np.asarray(a, dtype=np.float64) for k, a in extra.items()},
        )
        # the buffer's own bytes (no copy of the ~1.4 MB of a deep record): hashed, then written
        data = buffer.getbuffer()
        digest = hashlib.sha256(data).hexdigest()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if target.exists():
                raise StoreError(f"waveform file {target} already exists; captures are never overwritten")
            tmp = target.with_suffix(".npz.partial")
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise StoreError(
                f"cannot write waveform capture {target}: {exc.strerror or exc}; "
                "check that the data folder ($TOOLKIT_DATA_DIR) is writable and has space"
            ) from exc
        stored = StoredCapture(target.relative_to(self.study_dir).as_posix(), digest, target)
        self.stored.append(stored)
        return stored


def load_capture(path: Path, *, sha256: str | None = None) -> dict[str, Any]:
    """Read a capture file; verify its checksum when ``sha256`` is given.

    Returns
    -------
    dict
        ``time_s``, ``volts_V``, ``amps_A`` arrays, ``meta`` (a dict), and any further arrays stored with
        the capture (``envelope_V`` or ``envelope_A``).
    """
    path = Path(path)
    if sha256 is not None and sha256_file(path) != sha256:
        raise StoreError(f"waveform file {path} does not match its recorded SHA-256 (modified or corrupt)")
    with np.load(path, allow_pickle=False) as npz:
        out: dict[str, Any] = {k: npz[k] for k in npz.files if k != "meta"}
        out["meta"] = json.loads(str(npz["meta"]))
    for key in ("time_s", "volts_V", "amps_A"):
        if key not in out:
            raise StoreError(f"waveform file {path} has no {key} array (not a capture written by this toolkit)")
    return out
