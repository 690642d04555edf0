"""Decoding oscilloscope data: IEEE-488.2 definite-length blocks, preambles, and each family's scaling.

* Rigol DS1000Z: ``volts = (raw - yorigin - yref) * yinc``; ``time = xorigin + i * xinc``.
* Keysight InfiniiVision: ``volts = (raw - yref) * yinc + yorigin``; ``time = (i - xref) * xinc + xorigin``.
* Tektronix: ``volts = (raw - YOFf) * YMUlt + YZEro``; ``time = XZEro + (i - PT_Off) * XINcr``.

Scaling is a single fused multiply-add on a float64 array made from a zero-copy ``numpy.frombuffer`` view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from instruments.errors import BlockFormatError

__all__ = ["Preamble", "encode_samples", "parse_block", "parse_preamble", "physical_samples", "preamble_from",
           "scale_samples", "sample_times"]

Family = Literal["rigol", "keysight", "tektronix"]


def parse_block(data: bytes | bytearray | memoryview, *, resource: str = "") -> memoryview:
    """Return the payload of an IEEE-488.2 definite-length block ``#<n><length><bytes>``.

    A trailing newline after the payload is allowed.

    Raises
    ------
    BlockFormatError
        If the header is missing or malformed, or the payload is shorter than announced.
    """
    mv = memoryview(data)
    where = f" from {resource}" if resource else ""
    if len(mv) < 2 or mv[0] != ord("#"):
        raise BlockFormatError(f"binary block{where} does not start with '#<digits>'", resource=resource)
    nd = mv[1] - ord("0")
    if not 1 <= nd <= 9:
        raise BlockFormatError(f"binary block{where} has an invalid header digit count {chr(mv[1])!r} "
                               "(expected 1-9; indefinite '#0' blocks are not accepted)", resource=resource)
    header = bytes(mv[2:2 + nd])
    if len(header) != nd or not header.isdigit():
        raise BlockFormatError(f"binary block{where} has a malformed length field {header!r}", resource=resource)
    length = int(header)
    start = 2 + nd
    if len(mv) - start < length:
        raise BlockFormatError(
            f"binary block{where} is truncated: {len(mv) - start} of {length} announced bytes received",
            resource=resource)
    return mv[start:start + length]


@dataclass(frozen=True)
class Preamble:
    """The fields every family reports, named as in the Rigol/Keysight ``:WAV:PRE?`` reply."""

    family: str
    points: int
    xinc: float
    xorigin: float
    xref: float
    yinc: float
    yorigin: float
    yref: float

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain dict (for trace metadata and stored captures)."""
        return asdict(self)


def preamble_from(meta: Mapping[str, Any]) -> Preamble:
    """The :class:`Preamble` kept in a trace's metadata (:meth:`Preamble.as_dict` among other keys).

    Raises
    ------
    KeyError, TypeError, ValueError
        If a field is missing or not a number.
    """
    return Preamble(str(meta["family"]), int(meta["points"]),
                    *(float(meta[k]) for k in ("xinc", "xorigin", "xref", "yinc", "yorigin", "yref")))


def parse_preamble(reply: str, family: Family, *, resource: str = "") -> Preamble:
    """Parse a ``:WAV:PRE?`` reply (Rigol, Keysight: 10 comma-separated fields).

    Tektronix ``WFMOutpre?`` replies are parsed by name: pass the ``XINCR;XZERO;PT_OFF;YMULT;YZERO;YOFF;NR_PT``
    values as ``key=value`` pairs joined by ``;`` (the driver builds this from the named queries).

    Raises
    ------
    BlockFormatError
        If the reply does not have the expected fields.
    """
    try:
        if family == "tektronix":
            kv = dict(item.split("=", 1) for item in reply.strip().split(";") if item)
            return Preamble(family, int(float(kv["NR_PT"])), float(kv["XINCR"]), float(kv["XZERO"]),
                            float(kv["PT_OFF"]), float(kv["YMULT"]), float(kv["YZERO"]), float(kv["YOFF"]))
        f = [x.strip() for x in reply.strip().split(",")]
        if len(f) != 10:
            raise ValueError(f"{len(f)} fields")
        return Preamble(family, int(float(f[2])), float(f[4]), float(f[5]), float(f[6]),
                        float(f[7]), float(f[8]), float(f[9]))
    except (ValueError, KeyError) as exc:
        raise BlockFormatError(f"preamble from {resource or 'the scope'} is malformed ({exc}): {reply[:120]!r}",
                               resource=resource) from None


def scale_samples(raw: bytes | memoryview | np.ndarray, pre: Preamble, *, signed: bool = False) -> np.ndarray:
    """Convert raw byte samples to volts with the family's formula.

    Parameters
    ----------
    raw : bytes or ndarray
        Payload of the data block (one byte per sample).
    pre : Preamble
        Scaling fields.
    signed : bool
        Bytes are signed (Tektronix ``RIBinary``) rather than unsigned.

    Returns
    -------
    (N,) ndarray of float64
    """
    arr = raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, dtype=np.int8 if signed else np.uint8)
    # one multiply and one add: v = raw * yinc + c, with c folding the family's offsets
    out = np.multiply(arr, pre.yinc, dtype=np.float64)
    out += _offset(pre)
    return out


def _offset(pre: Preamble) -> float:
    """The constant ``c`` of ``value = raw * yinc + c`` for the preamble's family."""
    if pre.family == "rigol":
        return -(pre.yorigin + pre.yref) * pre.yinc
    # keysight: (raw - yref) * yinc + yorigin; tektronix: (raw - YOFf) * YMUlt + YZEro, stored as yref=YOFf,
    # yinc=YMUlt, yorigin=YZEro
    return pre.yorigin - pre.yref * pre.yinc


def physical_samples(raw: bytes | memoryview | np.ndarray, pre: Preamble, *, signed: bool = False,
                     shunt_ohms: float | None = None) -> np.ndarray:
    """Samples in volts at the probe tip, or in amperes through ``shunt_ohms`` (float64): what a captured
    channel holds (:class:`~instruments.base.Trace` ``values``), from its raw codes."""
    values = scale_samples(raw, pre, signed=signed)
    if shunt_ohms:
        values /= shunt_ohms
    return values


#: integer types a scope's samples come in, smallest first (bytes; words in 16-bit transfers)
_CODE_TYPES = (np.uint8, np.int8, np.uint16, np.int16)


def encode_samples(values: np.ndarray, pre: Preamble, *, shunt_ohms: float | None = None) -> np.ndarray | None:
    """The scope's codes that :func:`physical_samples` turns back into exactly ``values``, in the smallest integer
    type that holds them; None when there are none (the values were not read with this preamble, or were changed
    since). A stored capture keeps its samples as the scope sent them, at a byte per sample instead of eight."""
    v = np.asarray(values)
    if v.ndim != 1 or v.size == 0 or v.dtype != np.float64 or not pre.yinc:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        codes = np.rint(((v * shunt_ohms if shunt_ohms else v) - _offset(pre)) / pre.yinc)
    if not np.isfinite(codes).all():
        return None
    lo, hi = codes.min(), codes.max()
    for dtype in _CODE_TYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            raw = codes.astype(dtype)
            if np.array_equal(physical_samples(raw, pre, shunt_ohms=shunt_ohms), v):
                return raw
    return None


def sample_times(pre: Preamble, n: int | None = None) -> np.ndarray:
    """Sample times in seconds relative to the trigger (not a linspace including the end point)."""
    n = pre.points if n is None else n
    t = np.arange(n, dtype=np.float64)
    if pre.family != "rigol":
        t -= pre.xref
    t *= pre.xinc
    t += pre.xorigin
    return t
