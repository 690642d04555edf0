"""Bad photos are recorded QC failures with a reason, never a crash of the batch."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.imaging import analyze_batch, analyze_photo, load_photo
from toolkit.imaging.photo_io import PhotoRejected
from toolkit.imaging.synthetic import portrait


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _huge_png_header(path: Path, width: int = 14200, height: int = 10600) -> None:
    """A valid PNG header announcing 150 MP, with a tiny (incomplete) pixel stream: nothing big is allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    face = cv2.cvtColor(portrait("astronaut"), cv2.COLOR_RGB2BGR)
    files: dict[str, Path] = {}
    ok, enc = cv2.imencode(".jpg", face)
    files["corrupt"] = d / "truncated.jpg"
    files["corrupt"].write_bytes(enc.tobytes()[:2000])
    files["not_an_image"] = d / "notes.jpg"
    files["not_an_image"].write_text("visit notes, not a photo\n")
    files["no_face"] = d / "coffee.png"
    from skimage import data

    cv2.imwrite(str(files["no_face"]), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    files["multiple_faces"] = d / "two.png"
    cv2.imwrite(str(files["multiple_faces"]), np.hstack([face, face[:, ::-1]]))
    files["profile_view"] = d / "profile.png"
    cam = data.camera()
    cv2.imwrite(str(files["profile_view"]), cv2.merge([cam, (cam * 0.8).astype(np.uint8), (cam * 0.7).astype(np.uint8)]))
    files["too_large"] = d / "huge.png"
    _huge_png_header(files["too_large"])
    files["grayscale"] = d / "gray.png"
    cv2.imwrite(str(files["grayscale"]), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    files["bit_depth"] = d / "deep.tif"
    cv2.imwrite(str(files["bit_depth"]), face.astype(np.uint16) * 257)
    files["palette"] = d / "indexed.png"  # a PNG-8 export: 256 colours, dithered
    from PIL import Image

    Image.fromarray(cv2.cvtColor(face, cv2.COLOR_BGR2RGB)).convert("P").save(files["palette"])
    files["missing"] = d / "absent.jpg"
    return files


CODES = ["corrupt", "not_an_image", "no_face", "multiple_faces", "profile_view", "too_large", "grayscale", "palette",
         "bit_depth", "missing"]


@pytest.mark.parametrize("code", CODES)
def test_each_bad_photo_is_a_qc_failure_with_its_reason(bad_files: dict[str, Path], code: str) -> None:
    result = analyze_photo(bad_files[code])
    assert not result.qc.passed
    assert result.qc.codes == [code], result.qc.reasons
    assert result.qc.reasons and all(r for r in result.qc.reasons)
    assert result.regions.iloc[:, 1:].isna().all().all()
    frame = result.to_frame()
    assert not frame.qc_passed.any()


@pytest.mark.parametrize(("suffix", "mode"), [(".gif", "P"), (".png", "P")])
def test_indexed_colour_exports_are_refused_before_they_are_measured(tmp_path: Path, suffix: str, mode: str) -> None:
    """A GIF or PNG-8 export (at most 256 colours, dithered) passed QC and read the astronaut's wrinkle length
    2-4 times its baseline's (117 mm against 440 over all regions, dithered): the quantisation is texture."""
    from PIL import Image

    path = tmp_path / f"indexed{suffix}"
    Image.fromarray(portrait("astronaut")).convert(mode).save(path)
    with pytest.raises(PhotoRejected, match=r"indexed-colour image \(mode P.*GIF and PNG-8.*24-bit\) PNG or TIFF") as info:
        load_photo(path)
    assert info.value.reason == "palette"
    result = analyze_photo(path)
    assert result.qc.codes == ["palette"] and str(path) in result.qc.reasons[0]


def test_size_guard_refuses_before_decoding(bad_files: dict[str, Path]) -> None:
    with pytest.raises(PhotoRejected, match=r"150\.5 MP exceeds the 120 MP limit") as info:
        load_photo(bad_files["too_large"])
    assert info.value.reason == "too_large"


def test_bad_arrays_are_refused_with_their_reason() -> None:
    for arr, code in [
        (np.zeros((64, 64), np.uint8), "grayscale"),
        (np.zeros((64, 64, 3), np.uint16), "bit_depth"),
        (np.zeros((64, 64, 5), np.uint8), "bad_array"),
    ]:
        assert analyze_photo(arr).qc.codes == [code]


def test_bad_baseline_fails_the_photo_but_keeps_its_wrinkles(bad_files: dict[str, Path]) -> None:
    result = analyze_photo(portrait("astronaut"), baseline=bad_files["corrupt"])
    assert not result.qc.passed and result.qc.codes == ["baseline_unusable"]
    assert result.regions.lift_mm.isna().all()
    # every region with enough visible skin is still measured (the fringe hides the forehead)
    measured = result.regions.skin_fraction >= 0.35
    assert measured.sum() >= 12 and result.regions.wrinkle_length_mm[measured].notna().all()


def test_a_batch_of_bad_photos_completes(bad_files: dict[str, Path], tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), cv2.cvtColor(portrait("grace_hopper"), cv2.COLOR_RGB2BGR))
    items = [str(p) for p in bad_files.values()] + [str(good)]
    results = analyze_batch(items, executor="serial", progress=False)
    assert [r.photo for r in results] == items
    assert [r.qc["passed"] for r in results] == [False] * len(bad_files) + [True]
    assert [r.qc["codes"][0] for r in results[:-1]] == list(bad_files)


@pytest.mark.parametrize("colours", [64, 256])
def test_a_palette_export_saved_again_in_full_colour_fails_qc(tmp_path: Path, colours: int) -> None:
    """The same quantisation, hidden in a 24-bit PNG (a GIF opened and saved again): the face's few distinct
    colours give it away; a real photo's face, even dark and small, shows thousands."""
    from PIL import Image

    img = portrait("astronaut")
    path = tmp_path / "resaved.png"
    Image.fromarray(img).quantize(colours).convert("RGB").save(path)
    result = analyze_photo(path)
    assert result.qc.codes == ["palette"], result.qc.reasons
    assert "distinct colours" in result.qc.reasons[0] and "original colour file" in result.qc.reasons[0]
    assert result.regions.iloc[:, 1:].isna().all().all()
    # as a baseline, it makes the follow-up unusable for comparison, with the reason
    follow = analyze_photo(img, baseline=path)
    assert follow.qc.codes == ["baseline_unusable"] and "distinct colours" in " ".join(follow.qc.reasons)
    # the real photo, even at a third of its exposure, passes this check
    dark = (img.astype(np.float32) * 0.33).astype(np.uint8)
    assert "palette" not in analyze_photo(dark).qc.codes


def test_a_sepia_toned_monochrome_saved_losslessly_fails_qc(tmp_path: Path) -> None:
    """A monochrome photo toned sepia has colour (so it is not refused as grayscale) but one colour per grey
    level: its skin model would separate nothing by colour. Saved as a PNG it fails as a palette image;
    as a JPEG, compression adds colours and it is not caught (said in the README)."""
    from PIL import Image

    grey = cv2.cvtColor(portrait("grace_hopper"), cv2.COLOR_RGB2GRAY).astype(np.float32)
    sepia = np.clip(np.stack([grey * 1.07, grey * 0.74 + 20, grey * 0.43 + 10], axis=-1), 0, 255).astype(np.uint8)
    path = tmp_path / "sepia.png"
    Image.fromarray(sepia).save(path)
    result = analyze_photo(path)
    assert result.qc.codes == ["palette"], result.qc.reasons
    assert "sepia" in result.qc.reasons[0]


@pytest.mark.parametrize(("brand", "named"), [(b"heic", "HEIC"), (b"mif1", "HEIF"), (b"avif", "AVIF")])
def test_a_phone_s_heic_photo_is_refused_with_what_to_do(tmp_path: Path, brand: bytes, named: str) -> None:
    """An iPhone saves HEIC by default: the refusal names the format and the camera setting to change."""
    path = tmp_path / "IMG_0001.HEIC"
    # an ISO base media file: an ftyp box with the major brand, then the start of a meta box
    path.write_bytes(struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 64)
    with pytest.raises(PhotoRejected, match=rf"{named} photo, a format not read here.*JPEG") as info:
        load_photo(path)
    assert info.value.reason == "not_an_image"
    result = analyze_photo(path)
    assert result.qc.codes == ["not_an_image"] and "Most Compatible" in result.qc.reasons[0]
    # any other unreadable file keeps the plain message
    other = tmp_path / "notes.jpg"
    other.write_bytes(b"not a photo at all" * 10)
    with pytest.raises(PhotoRejected, match=r"not an image file \(accepted: JPEG, PNG, TIFF; WebP and BMP are read too\)"):
        load_photo(other)
