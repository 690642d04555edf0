"""Raw waveform captures of a session, stored once and checksummed.

Each capture is one ``.npz`` file under ``<data root>/<study-id>/waveforms/<subject>/<session>/``: the samples of
the electrode voltage and the current, a JSON ``meta`` string (with each channel's preamble in
``voltage_meta``/``current_meta``) and the capture's prescribed envelope, ``envelope_V`` or ``envelope_A``.
Samples read from a scope are stored as the scope sent them: its integer codes (``volts_code``, ``amps_code``,
a byte per sample), which the channel's preamble scales to volts or amperes exactly as the session did
(:func:`instruments.waveform.physical_samples`), and no time array when the preamble gives the sample times;
``meta["stored_as"]`` says so in words. Anything else (samples not from a scope's codes) is stored as float64
``time_s``, ``volts_V``, ``amps_A``. :func:`read_capture` and :func:`load_capture` return the float arrays either
way. Files are written to a temporary name and renamed into place, so a crash never leaves a half-written
capture, and never overwritten: a repeated session writes into its own delivery folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instruments.waveform import encode_samples, physical_samples, preamble_from, sample_times
from toolkit.errors import StoreError
from toolkit.paths import safe_path_part

__all__ = ["CaptureStore", "StoredCapture", "load_capture", "read_capture", "read_capture_header", "sha256_file"]

#: the sample arrays of a capture, the channel metadata whose preamble scales each, and the name of its codes
_CODED = {"volts_V": ("voltage_meta", "volts_code"), "amps_A": ("current_meta", "amps_code")}
_OWN = frozenset({"time_s", "volts_V", "amps_A", "meta", *(code for _, code in _CODED.values())})


def _encoded(time_s: np.ndarray, samples: Mapping[str, np.ndarray],
             meta: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays to store for ``samples`` (and ``time_s``), and what ``meta["stored_as"]`` says of those not
    stored as float64: each channel as the scope's codes when its preamble turns them back into exactly the
    samples, the time array left out when the voltage's preamble gives exactly those times."""
    arrays: dict[str, np.ndarray] = {}
    said: dict[str, str] = {}
    for key, values in samples.items():
        where, code_key = _CODED[key]
        channel = meta.get(where)
        values = np.asarray(values, dtype=np.float64)
        codes = None
        if isinstance(channel, Mapping):
            try:
                codes = encode_samples(values, preamble_from(channel), shunt_ohms=channel.get("shunt_ohms"))
            except (KeyError, TypeError, ValueError):
                codes = None
        if codes is None:
            arrays[key] = values
        else:
            arrays[code_key] = codes
            unit = "A" if channel.get("shunt_ohms") else "V"
            said[key] = (f"{code_key}: the scope's codes, scaled by the preamble in {where} (value = code × yinc + "
                         f"the family's offset{', ÷ shunt_ohms' if unit == 'A' else ''}, in {unit})")
    time_s = np.asarray(time_s, dtype=np.float64)
    channel = meta.get("voltage_meta")
    try:
        given = (time_s.ndim == 1 and isinstance(channel, Mapping)
                 and np.array_equal(sample_times(preamble_from(channel), time_s.size), time_s))
    except (KeyError, TypeError, ValueError):
        given = False
    if given:
        said["time_s"] = ("from the preamble in voltage_meta: xorigin + (i − xref) × xinc for sample i (rigol: "
                          "xorigin + i × xinc), in s")
    else:
        arrays["time_s"] = time_s
    return arrays, said


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
        clash = set(extra) & _OWN
        if clash:
            raise ValueError(f"capture arrays {sorted(clash)} would replace the capture's own")
        meta = dict(meta or {})
        if "stored_as" in meta:
            raise ValueError("capture meta 'stored_as' is written by the store (how the samples are kept)")
        samples, said = _encoded(time_s, {"volts_V": volts_V, "amps_A": amps_A}, meta)
        if said:
            meta["stored_as"] = said
        self._seq += 1
        name = f"{self._seq:05d}-{safe_path_part(label)}.npz"
        target = self.folder / name
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.array(json.dumps(meta, default=str, sort_keys=True)),
            **samples,
            **{k: np.asarray(a, dtype=np.float64) for k, a in extra.items()},
        )
        # the buffer's own bytes (no copy): hashed, then written
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


@contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """The capture file opened as an ``.npz`` (members read on demand); StoreError naming it if it is not one."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise StoreError(f"waveform file {path} cannot be read as a capture (.npz): {exc}") from None
    with npz:
        try:
            yield npz
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a member damaged inside
            raise StoreError(f"waveform file {path} cannot be read as a capture (.npz): {exc}") from None


def _meta_of(npz: Any, path: Path) -> dict[str, Any]:
    """The capture's JSON ``meta`` ({} when it has none)."""
    if "meta" not in npz.files:
        return {}
    try:
        meta = json.loads(str(npz["meta"]))
    except ValueError as exc:
        raise StoreError(f"waveform file {path}: its meta is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise StoreError(f"waveform file {path}: its meta is not a JSON object")
    return meta


def read_capture_header(path: Path) -> tuple[frozenset[str], dict[str, Any]]:
    """The names of a capture file's arrays and its ``meta``, without reading its samples.

    Raises
    ------
    StoreError
        If the file cannot be read as a capture (naming it and what is wrong).
    """
    path = Path(path)
    with _opened(path) as npz:
        return frozenset(npz.files) - {"meta"}, _meta_of(npz, path)


def read_capture(path: Path) -> dict[str, Any]:
    """Read a capture file as it is, its samples in physical units (no checksum check; see
    :func:`load_capture`).

    Returns
    -------
    dict
        Its float64 arrays (``time_s``, ``volts_V``, ``amps_A`` where stored, and any others such as the
        envelope), the samples stored as the scope's codes scaled back to volts and amperes, and ``meta`` (a
        dict; empty when the file has none).

    Raises
    ------
    StoreError
        If the file cannot be read as a capture (naming it and what is wrong).
    """
    path = Path(path)
    with _opened(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
        meta = _meta_of(npz, path)
    out: dict[str, Any] = {}
    try:
        for key, (where, code_key) in _CODED.items():
            if code_key in arrays:
                channel = meta[where]
                out[key] = physical_samples(arrays.pop(code_key), preamble_from(channel),
                                            shunt_ohms=channel.get("shunt_ohms"))
        if "time_s" not in arrays and "time_s" in (meta.get("stored_as") or {}):
            n = next((len(a[k]) for a in (out, arrays) for k in ("volts_V", "amps_A") if k in a), None)
            if n is None:
                raise KeyError("the samples the times belong to")
            out["time_s"] = sample_times(preamble_from(meta["voltage_meta"]), n)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"waveform file {path}: its samples are stored as codes but the preamble to scale them is "
                         f"missing or malformed ({exc})") from None
    out.update(arrays)
    out["meta"] = meta
    return out


def load_capture(path: Path, *, sha256: str | None = None) -> dict[str, Any]:
    """Read a capture file; verify its checksum when ``sha256`` is given.

    Returns
    -------
    dict
        ``time_s``, ``volts_V``, ``amps_A`` arrays (float64, in s, V and A, however the file keeps them), ``meta``
        (a dict), and any further arrays stored with the capture (``envelope_V`` or ``envelope_A``).
    """
    path = Path(path)
    if sha256 is not None and sha256_file(path) != sha256:
        raise StoreError(f"waveform file {path} does not match its recorded SHA-256 (modified or corrupt)")
    out = read_capture(path)
    for key in ("time_s", "volts_V", "amps_A"):
        if key not in out:
            raise StoreError(f"waveform file {path} has no {key} array (not a capture written by this toolkit)")
    return out
