"""Identifying metadata leaves derived and exported photos; the image itself is kept bit for bit."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit.errors import DataError
from toolkit.photo_metadata import identifying_metadata, strip_metadata, strip_metadata_file


def _jpeg_with_exif() -> bytes:
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    img = Image.open(src)
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"          # Make
    exif[0xA431] = "SN-0042-SECRET"       # BodySerialNumber (EXIF IFD, written flat here)
    exif[0x013B] = "Dr. Owner"            # Artist
    gps = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)}
    exif[0x8825] = gps
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=90, comment=b"patient photo")
    return buf.getvalue()


def test_jpeg_exif_gps_and_comment_are_removed_and_pixels_kept(tmp_path: Path) -> None:
    data = _jpeg_with_exif()
    assert b"SN-0042-SECRET" in data and "EXIF/XMP (APP1)" in identifying_metadata(data)
    clean = strip_metadata(data)
    assert identifying_metadata(clean) == []
    for secret in (b"SN-0042-SECRET", b"Dr. Owner", b"CameraMaker", b"patient photo", b"Exif\x00\x00"):
        assert secret not in clean
    before = np.asarray(Image.open(io.BytesIO(data)))
    after = np.asarray(Image.open(io.BytesIO(clean)))
    assert np.array_equal(before, after)  # lossless: the compressed image data is untouched
    assert not Image.open(io.BytesIO(clean)).getexif()


def test_png_text_chunks_are_removed(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Dr. Owner")
    info.add_itxt("Description", "subject S-001, site PAR")
    path = tmp_path / "overlay.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(path, pnginfo=info)
    assert sorted(identifying_metadata(path.read_bytes())) == ["iTXt", "tEXt"]
    out = strip_metadata_file(path, tmp_path / "clean.png")
    assert identifying_metadata(out.read_bytes()) == [] and b"Dr. Owner" not in out.read_bytes()
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(out)))


def test_other_files_are_refused_with_their_name(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    with pytest.raises(DataError, match="notes.txt: metadata can be removed from JPEG and PNG photos only"):
        strip_metadata_file(bad)
