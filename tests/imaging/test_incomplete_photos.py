"""Photo files cut short or damaged inside: refused at ingest with nothing written, and a QC failure in analysis.

The files are real: a portrait encoded by OpenCV (baseline and progressive JPEG with restart markers, PNG),
cut at several points the way an interrupted copy leaves them, or damaged in the middle.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.imaging import analyze_photo
from toolkit.imaging.file_checks import jpeg_problem, png_problem
from toolkit.imaging.photo_io import PhotoRejected, load_photo, verify_photo_file
from toolkit.imaging.synthetic import portrait

#: fractions of the file kept: inside the headers, early, the issue's 60 %, late, all but the end marker
CUTS = (0.002, 0.1, 0.35, 0.6, 0.9)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    bgr = cv2.cvtColor(portrait("grace_hopper"), cv2.COLOR_RGB2BGR)
    bgr = cv2.resize(bgr, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    return {
        "jpg": cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes(),
        "progressive.jpg": cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1,
                                                      cv2.IMWRITE_JPEG_RST_INTERVAL, 8])[1].tobytes(),
        "png": cv2.imencode(".png", bgr)[1].tobytes(),
    }


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path: Path, *words: str) -> PhotoRejected:
    for check in (verify_photo_file, load_photo):
        with pytest.raises(PhotoRejected) as info:
            check(path)
        assert info.value.reason == "corrupt"
        assert str(path) in str(info.value), "the message names the file"
        for word in words:
            assert word in str(info.value)
    return info.value


@pytest.mark.parametrize("kind", ["jpg", "progressive.jpg", "png"])
@pytest.mark.parametrize("kept", CUTS)
def test_a_file_cut_short_is_refused(encoded: dict[str, bytes], tmp_path: Path, kind: str, kept: float) -> None:
    data = encoded[kind]
    cut = _write(tmp_path, f"cut.{kind}", data[: int(len(data) * kept)])
    _refused(cut, "cut short")


def test_a_jpeg_missing_only_its_end_marker_is_refused(encoded: dict[str, bytes], tmp_path: Path) -> None:
    data = encoded["jpg"]
    assert data.endswith(b"\xff\xd9")
    err = _refused(_write(tmp_path, "no_eoi.jpg", data[:-2]), "end-of-image marker")
    assert "scan 1" in str(err)


@pytest.mark.parametrize("damage", ["zeros", "dropped", "random"])
def test_a_jpeg_damaged_in_the_middle_is_refused(encoded: dict[str, bytes], tmp_path: Path, damage: str) -> None:
    # the header and the end marker are intact: only decoding tells
    data = encoded["jpg"]
    mid, n = len(data) // 2, 4000
    middle = {"zeros": bytes(n), "dropped": b"",
              "random": np.random.default_rng(5).integers(0, 256, n, dtype=np.uint8).tobytes()}[damage]
    path = _write(tmp_path, f"{damage}.jpg", data[:mid] + middle + data[mid + n:])
    _refused(path, "damaged")
    # OpenCV's own decoder takes it (grey or garbage where the data was lost): the check is ours
    assert cv2.imread(str(path)) is not None


def test_a_png_with_a_damaged_chunk_is_refused(encoded: dict[str, bytes], tmp_path: Path) -> None:
    data = bytearray(encoded["png"])
    data[len(data) // 2] ^= 0x5A
    _refused(_write(tmp_path, "flipped.png", bytes(data)), "CRC-32")


@pytest.mark.parametrize("kind", ["jpg", "progressive.jpg", "png"])
def test_bytes_after_the_end_of_the_image_are_accepted(encoded: dict[str, bytes], tmp_path: Path, kind: str) -> None:
    whole = _write(tmp_path, f"whole.{kind}", encoded[kind])
    trailer = _write(tmp_path, f"trailer.{kind}", encoded[kind] + b"\x00" * 64 + b"CAMERA-TRAILER\xff\xd8")
    assert verify_photo_file(trailer).format in ("JPEG", "PNG")
    np.testing.assert_array_equal(load_photo(trailer)[0], load_photo(whole)[0])


def test_decoding_is_unchanged_for_whole_files(encoded: dict[str, bytes], tmp_path: Path) -> None:
    for kind in ("jpg", "progressive.jpg"):
        path = _write(tmp_path, f"whole.{kind}", encoded[kind])
        opencv = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(load_photo(path)[0], opencv)


def test_structure_checks_say_where_the_file_stops() -> None:
    assert jpeg_problem(b"GIF89a....") is not None and "not a JPEG" in jpeg_problem(b"GIF89a....")
    assert "claims" in jpeg_problem(b"\xff\xd8\xff\xe0\x00\x10JFIF")  # cut inside the APP0 block
    assert "before any image data" in jpeg_problem(b"\xff\xd8\xff\xd9")
    assert "IEND" in png_problem(b"\x89PNG\r\n\x1a\n")


def test_analysis_reports_a_truncated_photo_as_a_qc_failure(encoded: dict[str, bytes], tmp_path: Path) -> None:
    data = encoded["jpg"]
    cut = _write(tmp_path, "cut.jpg", data[: int(len(data) * 0.6)])
    res = analyze_photo(cut, overlays=False)
    assert not res.qc.passed and "corrupt" in res.qc.codes
    assert any("cut short" in r for r in res.qc.reasons)
    # as a baseline too: the follow-up fails, saying why the baseline is unusable
    whole = _write(tmp_path, "whole.jpg", data)
    res = analyze_photo(whole, baseline=cut, overlays=False)
    assert not res.qc.passed and "baseline_unusable" in res.qc.codes
    assert any(r.startswith("baseline: ") and "cut short" in r for r in res.qc.reasons)


def test_ingest_refuses_a_cut_file_and_writes_nothing(encoded: dict[str, bytes], tmp_path: Path, study_dir: Path,
                                                      data_root: Path, _toolkit) -> None:
    data = encoded["jpg"]
    cut = _write(tmp_path, "IMG_0001.jpg", data[: int(len(data) * 0.6)])
    damaged = _write(tmp_path, "IMG_0002.jpg", data[: len(data) // 2] + bytes(4000) + data[len(data) // 2 + 4000:])
    whole = _write(tmp_path, "IMG_0003.jpg", data + b"trailer")
    r = _toolkit("photos", "ingest", str(cut), str(damaged), str(whole), "--study", str(study_dir),
                 "--subject", "S-001", "--visit", "BASELINE")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "2 of 3 file(s) not ingested" in r.stderr
    assert f"{cut}: incomplete or damaged JPEG file" in r.stderr and "cut short" in r.stderr
    assert f"{damaged}: damaged JPEG data" in r.stderr
    raw = data_root / "epmc-demo" / "photos" / "raw" / "S-001" / "BASELINE"
    names = sorted(p.name for p in raw.iterdir())
    assert len(names) == 2 and all("IMG_0003" in n for n in names), names  # the photo and its sidecar
    from toolkit.store import open_store
    from toolkit.study import load_study

    with open_store(load_study(study_dir)) as store:
        assert [Path(p.path).name for p in store.photos()] == [n for n in names if n.endswith(".jpg")]
