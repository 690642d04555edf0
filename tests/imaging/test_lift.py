"""Lift from a displacement field whose answer is known analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.imaging.lift import measure_lift

H, W = 400, 300


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _similarity_flow(scale: float, angle_deg: float, shift: tuple[float, float], centre: tuple[float, float]):
    """Flow of the similarity x -> c + s·R·(x − c) + t, i.e. what a registration could leave behind."""
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float64)
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    x, y = gx - centre[0], gy - centre[1]
    fx = centre[0] + c * x - s * y + shift[0] - gx
    fy = centre[1] + s * x + c * y + shift[1] - gy
    return np.stack([fx, fy], axis=-1)


REFERENCE = _box(20, 90, 40, 260)  # forehead-like: wide, short
JAW_L, JAW_R = _box(300, 360, 30, 110), _box(300, 360, 190, 270)
CHEEK = _box(200, 250, 40, 120)


@pytest.mark.parametrize("scale, angle", [(1.001, 0.0), (0.999, 0.05), (1.0015, -0.08)])
def test_residual_similarity_is_taken_out_and_a_true_lift_is_kept(scale: float, angle: float) -> None:
    # a residual similarity of 0.1 % and a few hundredths of a degree, about the reference centre: two
    # hundred pixels below it, the scale alone moves the jaw by 0.2–0.3 px, a false lift if left in
    flow = _similarity_flow(scale, angle, (0.3, -0.2), centre=(150.0, 55.0))
    lift_px = 1.5  # the jaw moves up (negative y) by 1.5 px on top of the similarity
    flow[JAW_L | JAW_R, 1] -= lift_px
    lifts, residual = measure_lift(flow.astype(np.float32), {"jaw_l": JAW_L, "jaw_r": JAW_R, "cheek": CHEEK},
                                   REFERENCE, mm_per_px=0.5)
    assert lifts["jaw_l"].lift_mm == pytest.approx(lift_px * 0.5, abs=0.01)
    assert lifts["jaw_r"].lift_mm == pytest.approx(lift_px * 0.5, abs=0.01)
    assert lifts["jaw_l"].displacement_mm == pytest.approx(lift_px * 0.5, abs=0.01)
    assert abs(lifts["cheek"].lift_mm) <= 0.01 and lifts["cheek"].displacement_mm <= 0.01
    assert residual > 0.3  # what the registration left is still reported


def test_reference_outliers_do_not_move_the_correction() -> None:
    # hair or a moving brow over a tenth of the reference: the robust fit ignores it
    flow = _similarity_flow(1.001, 0.0, (0.0, 0.0), centre=(150.0, 55.0))
    flow[20:27, 40:260] += (3.0, -4.0)
    lifts, _ = measure_lift(flow.astype(np.float32), {"jaw": JAW_L}, REFERENCE, mm_per_px=1.0)
    assert abs(lifts["jaw"].lift_mm) <= 0.02


def test_no_reference_gives_nan_not_a_number_made_up() -> None:
    flow = np.zeros((H, W, 2), np.float32)
    lifts, residual = measure_lift(flow, {"jaw": JAW_L}, np.zeros((H, W), bool), mm_per_px=1.0)
    assert math.isnan(lifts["jaw"].lift_mm) and math.isnan(residual)
