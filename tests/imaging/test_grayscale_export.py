"""A black-and-white export saved as an RGB file is refused like a grayscale file.

A single-channel file is refused at ingest (``grayscale``), but an editor's black-and-white export or a camera's
monochrome picture style is usually stored with three equal channels. Without colour the skin model has only
brightness and texture to tell skin from grey hair, a cap, a collar or the background: on Grace Hopper's portrait
(2x) the skin it found changed by 8 points of the forehead region and 23 of the left jaw region, and a grayscale
follow-up of an unchanged face read 12-13 % less wrinkle length than its baseline (a colour re-capture: 5 %).
Colour photos under a strong cast or half desaturated still pass.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.imaging import analyze_photo
from toolkit.imaging.analysis import colour_spread
from toolkit.imaging.synthetic import portrait


def _as_gray_rgb(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def _cast(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    linear = (rgb / 255.0) ** 2.2 * np.asarray(gains)
    return np.clip(255 * np.clip(linear, 0, 1) ** (1 / 2.2) + 0.5, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


@pytest.fixture(scope="module", params=["astronaut", "grace_hopper"])
def face(request) -> np.ndarray:
    return portrait(request.param)


def test_a_grayscale_export_is_refused_with_the_reason(tmp_path: Path, face: np.ndarray) -> None:
    path = _save(tmp_path / "bw.jpg", _as_gray_rgb(face))
    res = analyze_photo(path, overlays=False)
    assert not res.qc.passed and res.qc.codes == ["grayscale"], res.qc.reasons
    assert "colour photo is required" in res.qc.reasons[0] and "hair" in res.qc.reasons[0]
    assert res.regions["wrinkle_length_mm"].isna().all()  # nothing measured on it


def test_a_grayscale_follow_up_or_baseline_is_refused(tmp_path: Path, face: np.ndarray) -> None:
    colour = _save(tmp_path / "colour.jpg", face)
    gray = _save(tmp_path / "bw.jpg", _as_gray_rgb(face))
    follow_up = analyze_photo(gray, baseline=colour, overlays=False)
    assert not follow_up.qc.passed and "grayscale" in follow_up.qc.codes
    against_gray = analyze_photo(colour, baseline=gray, overlays=False)
    assert not against_gray.qc.passed and against_gray.qc.codes == ["baseline_unusable"], against_gray.qc.codes
    assert any(r.startswith("baseline: grayscale image") for r in against_gray.qc.reasons)


@pytest.mark.parametrize("change", ["warm", "cool", "green", "half_desaturated"])
def test_colour_photos_under_a_cast_or_desaturated_pass(face: np.ndarray, change: str) -> None:
    img = {"warm": lambda: _cast(face, (1.25, 1.0, 0.8)), "cool": lambda: _cast(face, (0.8, 1.0, 1.25)),
           "green": lambda: _cast(face, (0.9, 1.15, 0.9)),
           "half_desaturated": lambda: ((face.astype(np.uint16) + _as_gray_rgb(face)) // 2).astype(np.uint8)}[change]()
    res = analyze_photo(img, overlays=False)
    assert "grayscale" not in res.qc.codes and res.qc.metrics["colour_spread"] >= 30, res.qc.metrics["colour_spread"]


def test_colour_spread_measures_the_channels_difference() -> None:
    gray = np.full((40, 40, 3), 120, np.uint8)
    assert colour_spread(gray) == 0.0
    tinted = gray.copy()
    tinted[..., 0] += 20  # red 20 levels above green and blue everywhere
    assert colour_spread(tinted) == 20.0
    patch = gray.copy()
    patch[:10, :, 2] = 200  # a blue band over a quarter of the rows: above the 95th percentile
    assert colour_spread(patch) == 80.0
