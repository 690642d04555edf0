"""Whether a JPEG or PNG file holds all of its image: the container's own structure, walked without decoding.

An interrupted copy or transfer leaves a file that still opens: its header is intact, and a lenient
decoder fills the missing rows with grey. These checks find where such a file stops making sense:

- JPEG (ITU-T T.81, Annex B): the marker segments are walked from the start-of-image marker; each scan's
  entropy-coded data runs to the next marker (in it, 0xFF is always followed by a 0x00 stuffing byte or a
  restart marker), and the file must reach its end-of-image marker (0xFFD9) after the last scan. Bytes
  after that marker (camera trailers, a second embedded picture) are allowed.
- PNG (ISO/IEC 15948, section 5): every chunk must fit in the file and match its CRC-32, up to the IEND
  chunk.

Each function returns ``None`` for a complete file, otherwise a sentence saying what is wrong and where.
"""

from __future__ import annotations

import re
import struct
import zlib

__all__ = ["jpeg_problem", "png_problem"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MARKER_NAMES = {0xC0: "frame header (SOF0)", 0xC2: "frame header (SOF2)", 0xC4: "Huffman table (DHT)",
                 0xDB: "quantisation table (DQT)", 0xDA: "scan header (SOS)", 0xDD: "restart interval (DRI)",
                 0xE1: "EXIF/XMP block (APP1)", 0xFE: "comment (COM)"}
_CUT = "the file is cut short (an interrupted copy or transfer?)"
#: a marker that ends entropy-coded data: 0xFF followed by anything but a stuffing byte (0x00), a fill
#: byte (0xFF) or a restart marker (0xD0–0xD7)
_SCAN_END = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _segment_name(marker: int) -> str:
    if marker in _MARKER_NAMES:
        return _MARKER_NAMES[marker]
    if 0xE0 <= marker <= 0xEF:
        return f"application block (APP{marker - 0xE0})"
    return f"segment 0xFF{marker:02X}"


def jpeg_problem(data: bytes) -> str | None:
    """What keeps a JPEG file from being complete, or ``None``.

    Parameters
    ----------
    data : bytes
        The whole file.
    """
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return "not a JPEG file: no start-of-image marker (0xFFD8) at its beginning"
    pos, scans = 2, 0
    while True:
        if pos >= size:
            if scans:
                return f"no end-of-image marker (0xFFD9) after scan {scans}: {_CUT}"
            return f"it ends at byte {size} before any image data: {_CUT}"
        if data[pos] != 0xFF:
            return f"byte {pos} should start a marker (0xFF) but is 0x{data[pos]:02X}: the file is damaged"
        while pos + 1 < size and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos + 1 >= size:
            continue  # ends on a lone 0xFF: reported as cut short above
        marker = data[pos + 1]
        if marker == 0xD9:
            return None if scans else "the end-of-image marker comes before any image data"
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers and TEM stand alone
            pos += 2
            continue
        if pos + 4 > size:
            return f"it ends at byte {size} inside a marker: {_CUT}"
        length = struct.unpack_from(">H", data, pos + 2)[0]
        end = pos + 2 + length
        if length < 2 or end > size:
            return (f"its {_segment_name(marker)} at byte {pos} claims {length} bytes but the file ends at byte "
                    f"{size}: {_CUT}")
        if marker != 0xDA:
            pos = end
            continue
        scans += 1
        pos = _end_of_scan(data, end)
        if pos < 0:
            return (f"the compressed data of scan {scans} (from byte {end}) runs to the end of the file at byte "
                    f"{size} with no end-of-image marker (0xFFD9): {_CUT}")


def _end_of_scan(data: bytes, pos: int) -> int:
    """Offset of the marker that ends the entropy-coded data starting at ``pos``; -1 if the file ends first."""
    # one search in C: a camera's scan holds tens of thousands of stuffed 0xFF bytes to step over
    found = _SCAN_END.search(data, pos)
    return -1 if found is None else found.start()


def png_problem(data: bytes) -> str | None:
    """What keeps a PNG file from being complete and intact, or ``None`` (CRC-32 of every chunk checked).

    Parameters
    ----------
    data : bytes
        The whole file.
    """
    size = len(data)
    if bytes(data[:8]) != _PNG_SIGNATURE:
        return "not a PNG file: no PNG signature at its beginning"
    pos, chunks = 8, 0
    while True:
        if pos + 8 > size:
            return f"it ends at byte {size} after {chunks} chunk(s) without an IEND chunk: {_CUT}"
        length, kind = struct.unpack_from(">I4s", data, pos)
        name = kind.decode("latin-1")
        end = pos + 12 + length
        if end > size:
            return (f"its {name} chunk at byte {pos} holds {length} bytes but the file ends at byte {size}: "
                    f"{_CUT}")
        crc = struct.unpack_from(">I", data, end - 4)[0]
        if zlib.crc32(memoryview(data)[pos + 4:end - 4]) != crc:
            return f"its {name} chunk at byte {pos} fails its CRC-32 check: the file is damaged"
        chunks += 1
        if kind == b"IEND":
            return None
        pos = end
