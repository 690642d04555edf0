"""JPEG compression read from the file and checked: strong compression, or compression that changed since the
baseline, is flagged (both move the wrinkle measures: fine lines are smoothed and 8-pixel block texture added).

The quality estimate is checked against two independent encoders (OpenCV's libjpeg-turbo and Pillow's
libjpeg), which must be recovered exactly at every quality setting they were given.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from toolkit.imaging import analyze_photo
from toolkit.imaging.photo_io import jpeg_quality, read_photo_header
from toolkit.imaging.qc import QCThresholds
from toolkit.imaging.synthetic import portrait


def test_the_quality_a_file_was_saved_at_is_read_back_exactly(tmp_path: Path) -> None:
    img = (np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)
    wrong = []
    for q in range(1, 101):
        a, b = tmp_path / f"cv{q}.jpg", tmp_path / f"pil{q}.jpg"
        cv2.imwrite(str(a), img, [cv2.IMWRITE_JPEG_QUALITY, q])
        Image.fromarray(img).save(b, quality=q)
        got = (read_photo_header(a).jpeg_quality, read_photo_header(b).jpeg_quality)
        if got != (q, q):
            wrong.append((q, got))
    assert wrong == []
    # PNG has no quantisation, and a table of the wrong size is refused
    Image.fromarray(img).save(tmp_path / "x.png")
    assert read_photo_header(tmp_path / "x.png").jpeg_quality is None
    with pytest.raises(ValueError, match="64 entries"):
        jpeg_quality([1] * 10)


def _save(tmp_path: Path, name: str, rgb: np.ndarray, quality: int) -> Path:
    path = tmp_path / name
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return path


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return cv2.resize(portrait("astronaut"), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)


def test_strong_compression_is_flagged(tmp_path: Path, face: np.ndarray) -> None:
    good = analyze_photo(_save(tmp_path, "q95.jpg", face, 95), overlays=False)
    assert "jpeg_quality" not in good.qc.flag_codes and good.qc.metrics["jpeg_quality"] == 95
    poor = analyze_photo(_save(tmp_path, "q60.jpg", face, 60), overlays=False)
    assert "jpeg_quality" in poor.qc.flag_codes, poor.qc.flags
    assert "quality 60" in "; ".join(poor.qc.flags) and poor.qc.passed
    strict = analyze_photo(tmp_path / "q60.jpg", overlays=False, qc_thresholds=QCThresholds(fail_on_flags=("jpeg_quality",)))
    assert not strict.qc.passed and "jpeg_quality" in strict.qc.codes
    # an array carries no file's compression: nothing is claimed about it
    assert "jpeg_quality" not in analyze_photo(face, overlays=False).qc.metrics


def test_compression_changed_since_baseline_is_flagged(tmp_path: Path, face: np.ndarray) -> None:
    base = _save(tmp_path, "base.jpg", face, 95)
    same = analyze_photo(_save(tmp_path, "q92.jpg", face, 92), baseline=base, overlays=False)
    assert "compression_change" not in same.qc.flag_codes, same.qc.flags
    changed = analyze_photo(_save(tmp_path, "q80.jpg", face, 80), baseline=base, overlays=False)
    assert "compression_change" in changed.qc.flag_codes, changed.qc.flags
    assert "quality 80 against 95" in "; ".join(changed.qc.flags)
    assert "jpeg_quality" in changed.qc.flag_codes  # and 80 is below the 85 every photo should meet
