"""A photo saved sideways or upside down fails as such, instead of being measured or failing for closed eyes.

The detector and the mesh follow a face at any roll, so a photo whose camera orientation tag was lost was measured
sideways: its regions were found, but the lift was read across the face. Upside down, BlazeFace misses the face,
the mesh is fitted to it the wrong way up and the photo failed as "eyes closed" or "mouth open". The truth is
the rotation itself (``cv2.rotate``), on the real portraits at 1x and 2x, and a JPEG stored sideways with its
EXIF orientation tag, which is read and applied.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.imaging.portraits import portrait_at
from toolkit.imaging import analyze_photo
from toolkit.imaging.synthetic import portrait

TURNS = {"clockwise": (cv2.ROTATE_90_CLOCKWISE, "a quarter clockwise"),
         "anticlockwise": (cv2.ROTATE_90_COUNTERCLOCKWISE, "a quarter anticlockwise"),
         "upside_down": (cv2.ROTATE_180, "upside down")}


@pytest.fixture(scope="module", params=[("astronaut", 1), ("astronaut", 2), ("grace_hopper", 1), ("grace_hopper", 2)],
                ids=lambda p: f"{p[0]}@{p[1]}x")
def face(request) -> np.ndarray:
    return portrait_at(*request.param)


@pytest.mark.parametrize("turn", list(TURNS))
def test_a_turned_photo_fails_naming_the_turn(face: np.ndarray, turn: str) -> None:
    code, words = TURNS[turn]
    res = analyze_photo(cv2.rotate(face, code), overlays=False)
    assert res.qc.codes == ["orientation"], res.qc.reasons
    assert words in res.qc.reasons[0] and "orientation tag" in res.qc.reasons[0]
    assert res.regions["wrinkle_length_mm"].isna().all()


def test_a_turned_baseline_fails_the_follow_up(face: np.ndarray) -> None:
    res = analyze_photo(face, baseline=cv2.rotate(face, cv2.ROTATE_90_CLOCKWISE), overlays=False)
    assert res.qc.codes == ["baseline_unusable"] and "baseline: the photo is turned" in res.qc.reasons[0]


def test_upright_photos_pass_even_tilted_blurred_or_dark(face: np.ndarray) -> None:
    h, w = face.shape[:2]
    tilted = cv2.warpAffine(face, cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0), (w, h),
                            borderMode=cv2.BORDER_REFLECT)
    scale = face.shape[1] / 512
    for img in (face, tilted, cv2.GaussianBlur(face, (0, 0), 3 * scale), (face * 0.35).astype(np.uint8)):
        res = analyze_photo(img, overlays=False)
        assert "orientation" not in res.qc.codes, res.qc.reasons


def test_a_sideways_jpeg_with_its_orientation_tag_is_read_upright(tmp_path: Path) -> None:
    upright = portrait("grace_hopper")
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # as a camera held on its side stores it
    tagged, lost = tmp_path / "tagged.jpg", tmp_path / "lost.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # display turned 90° clockwise
    Image.fromarray(stored).save(tagged, quality=95, exif=exif)
    Image.fromarray(stored).save(lost, quality=95)
    ok = analyze_photo(tagged, overlays=False)
    assert ok.qc.passed and "orientation" not in ok.qc.codes, ok.qc.reasons
    bad = analyze_photo(lost, overlays=False)
    assert bad.qc.codes == ["orientation"] and "a quarter anticlockwise" in bad.qc.reasons[0]
