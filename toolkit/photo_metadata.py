"""Removing identifying metadata (EXIF, XMP, IPTC, comments, text chunks) from photo files, losslessly.

Raw photos are kept exactly as captured (they are the source record, checksummed); every *derived* or
*exported* photo (overlays, registered crops, report panels, files handed to a reader) goes through
:func:`strip_metadata` so that camera serial numbers, owner names, GPS positions and capture software do not
leave the study. JPEG files keep their compressed image data byte for byte (only marker segments are dropped;
the ICC colour profile and the JFIF header stay); PNG files keep every image chunk and drop text, EXIF and
time chunks. Other formats are refused rather than passed through unchecked.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import DataError

__all__ = ["identifying_metadata", "strip_metadata", "strip_metadata_file"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG chunks that carry text, EXIF or a timestamp (everything else describes the image)
_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
_ICC_APP2 = b"ICC_PROFILE\x00"


def _jpeg_segments(data: bytes):
    """(marker, segment bytes) of a JPEG up to the start of scan, then (None, the rest)."""
    if data[:2] != b"\xff\xd8":
        raise DataError("not a JPEG file (no SOI marker)")
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            raise DataError(f"damaged JPEG: no marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the image data follows to EOI
            yield None, data[i:]
            return
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            yield marker, data[i : i + 2]
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        yield marker, data[i : i + 2 + length]
        i += 2 + length
    raise DataError("damaged JPEG: no image data (start of scan) found")


def _strip_jpeg(data: bytes) -> bytes:
    out = [b"\xff\xd8"]
    for marker, seg in _jpeg_segments(data):
        if marker is None:
            out.append(seg)
            break
        is_app = 0xE0 <= marker <= 0xEF
        keep = not is_app or marker == 0xE0 or (marker == 0xE2 and seg[4:16] == _ICC_APP2)
        if marker == 0xFE:  # comment
            keep = False
        if keep:
            out.append(seg)
    return b"".join(out)


def _png_chunks(data: bytes):
    if data[:8] != _PNG_SIGNATURE:
        raise DataError("not a PNG file (bad signature)")
    i = 8
    while i < len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        yield kind, data[i : i + 12 + length]
        i += 12 + length


def _strip_png(data: bytes) -> bytes:
    return _PNG_SIGNATURE + b"".join(chunk for kind, chunk in _png_chunks(data) if kind not in _PNG_DROP)


def strip_metadata(data: bytes) -> bytes:
    """The bytes of a JPEG or PNG photo without identifying metadata (the image itself unchanged)."""
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data)
    if data[:8] == _PNG_SIGNATURE:
        return _strip_png(data)
    raise DataError("metadata can be removed from JPEG and PNG photos only")


def strip_metadata_file(source: Path, target: Path | None = None) -> Path:
    """Write ``source`` without metadata to ``target`` (default: replace ``source``); return the target."""
    source = Path(source)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read photo {source}: {exc.strerror}") from None
    try:
        clean = strip_metadata(data)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    target = Path(target) if target is not None else source
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(clean)
    tmp.replace(target)
    return target


def identifying_metadata(data: bytes) -> list[str]:
    """What identifying metadata a JPEG or PNG carries (``[]`` when clean), e.g. ``["EXIF (APP1)"]``."""
    found = []
    if data[:2] == b"\xff\xd8":
        names = {0xE1: "EXIF/XMP (APP1)", 0xED: "IPTC (APP13)", 0xFE: "comment"}
        for marker, _segment in _jpeg_segments(data):
            if marker is None:
                break
            if marker in names:
                found.append(names[marker])
            elif 0xE3 <= marker <= 0xEF:
                found.append(f"APP{marker - 0xE0}")
    elif data[:8] == _PNG_SIGNATURE:
        found = [kind.decode("ascii") for kind, _ in _png_chunks(data) if kind in _PNG_DROP]
    return found
