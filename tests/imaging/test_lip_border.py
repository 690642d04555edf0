"""The lips' border is anatomy, not perioral lines; perioral lines, which run across it, are counted.

The face mesh places the lips' outline up to a millimetre or two inside the vermilion edge, and where it falls
depends on how the face sits in the frame. Measured with a fixed margin alone, Grace Hopper's perioral region
counted the edge under her lower lip in one frame and not in another (62.8 mm in a 4000×3000 frame, 76.4 mm in a
6000×4000 frame of the same face). A ridge within 5 mm of the outline that runs along it is the border and is
not counted; lines crossing it (perioral lines are radial) are: the folds drawn from the nose and the mouth
corners in ``test_drawn_lines`` (nasolabial, marionette) end beside the lips and are still counted there
within its ±15 %; around the mouth corners nothing is taken for the border.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.imaging.test_camera_sizes import _close_up
from toolkit.imaging import analyze_photo
from toolkit.imaging import mesh_topology as topo
from toolkit.imaging.synthetic import draw_line, portrait


def _lips(result) -> np.ndarray:
    return result.face.mesh[list(topo.LIPS_OUTER), :2]


def _enlarged(name: str, scale: int) -> np.ndarray:
    img = portrait(name)
    return img if scale == 1 else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def test_a_line_along_the_lower_lip_is_taken_for_its_border() -> None:
    base = _enlarged("astronaut", 2)
    before = analyze_photo(base, overlays=False)
    mm = before.calibration.mm_per_px
    lips = _lips(before)
    bottom = lips[lips[:, 1] >= np.median(lips[:, 1])]
    order = np.argsort(bottom[:, 0])
    xs = np.linspace(bottom[order[0], 0], bottom[order[-1], 0], 9)[2:-2]
    ys = np.interp(xs, bottom[order, 0], bottom[order, 1]) + 4.0 / mm  # 4 mm below the outline, along it
    img = base
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True):
        img = draw_line(img, (x0, y0), (x1, y1), width_px=1.0 / mm, contrast=0.3)
    drawn = float(np.hypot(np.diff(xs), np.diff(ys)).sum()) * mm
    res = analyze_photo(img, baseline=base, overlays=False)
    change = res.regions.set_index("region").wrinkle_length_mm - before.regions.set_index("region").wrinkle_length_mm
    assert drawn >= 10.0
    assert change["perioral"] < 0.15 * drawn, (change["perioral"], drawn)


@pytest.mark.parametrize("frame", [(6000, 4000), (8192, 5464)])
def test_the_same_lips_in_another_frame_measure_the_same(frame: tuple[int, int]) -> None:
    ref = analyze_photo(_close_up(4000, 3000), overlays=False).regions.set_index("region").wrinkle_length_mm
    other = analyze_photo(_close_up(*frame), overlays=False).regions.set_index("region").wrinkle_length_mm
    assert other["perioral"] == pytest.approx(ref["perioral"], rel=0.15), (other["perioral"], ref["perioral"])
