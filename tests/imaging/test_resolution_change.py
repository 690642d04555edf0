"""A follow-up taken at another image size (the camera's size setting, another body of the same kind) is not a
change of distance; a change of distance still is.

The QC compares the face's size between the visits to catch a camera moved nearer or farther (perspective and
lighting change with it). Comparing it in pixels failed a follow-up that only had twice the pixels across the same
frame ("face size differs from baseline by +100 %"). When the two frames have the same shape, the face's size is
now compared relative to the frame, and the photo is flagged ``resolution_change`` instead: on Grace Hopper a
follow-up with half the baseline's pixels read +10 % wrinkle length and depth with no true change.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from toolkit.imaging import analyze_photo
from toolkit.imaging.synthetic import portrait, simulate_visit


def _at(name: str, scale: float) -> np.ndarray:
    img = portrait(name)
    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)


def _nearer(img: np.ndarray, factor: float) -> np.ndarray:
    """The same frame with the face ``factor`` times larger (the camera moved nearer), centre kept."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, factor)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize(("name", "base_scale", "follow_scale"), [
    ("astronaut", 2, 4), ("astronaut", 4, 2), ("grace_hopper", 2, 4), ("grace_hopper", 4, 2)])
def test_another_image_size_of_the_same_frame_passes_and_is_flagged(name: str, base_scale: int,
                                                                     follow_scale: int) -> None:
    base = _at(name, base_scale)
    follow, _ = simulate_visit(_at(name, follow_scale), wrinkle_change={}, seed=1, wrinkle_regions=())
    res = analyze_photo(follow, baseline=base, overlays=False)
    assert res.qc.passed, res.qc.reasons
    assert "resolution_change" in res.qc.flag_codes
    assert any(f"{follow_scale / base_scale:.2f}×" in f for f in res.qc.flags), res.qc.flags
    # simulate_visit's own re-capture changes the scale by up to 3 %
    assert abs(res.qc.metrics["scale_change"]) <= 0.04
    assert res.regions.lift_mm.abs().max() <= 0.15


@pytest.mark.parametrize("follow_scale", [2, 4])
def test_a_camera_moved_nearer_still_fails_whatever_the_image_size(follow_scale: int) -> None:
    base = _at("grace_hopper", 2)
    follow = _nearer(_at("grace_hopper", follow_scale), 1.15)
    res = analyze_photo(follow, baseline=base, overlays=False)
    assert "scale" in res.qc.codes, res.qc.reasons
    assert res.qc.metrics["scale_change"] == pytest.approx(0.15, abs=0.02)


def test_a_frame_of_another_shape_is_compared_in_pixels() -> None:
    # a square crop of the same photo: the same pixels per millimetre, a frame of another shape
    base = _at("grace_hopper", 2)
    h, w = base.shape[:2]
    side = min(h, w)
    crop = np.ascontiguousarray(base[(h - side) // 2:(h - side) // 2 + side])
    res = analyze_photo(crop, baseline=base, overlays=False)
    assert res.qc.passed, res.qc.reasons
    assert "resolution_change" not in res.qc.flag_codes
    assert abs(res.qc.metrics["scale_change"]) <= 0.01
