"""A follow-up saved mirrored (a front camera's selfie view, an editor's flip) fails QC instead of swapping sides.

The mesh names sides by the image, so a mirrored photo would measure the subject's right fold as
``nasolabial_l`` and a split-face study's treated side as the untreated one, with every other check passing (a
face is nearly symmetric: the identity, pose and registration checks all pass on a flipped re-capture). The
truth here is the flip itself, made with ``cv2.flip`` on real portraits' re-captures.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.imaging.portraits import portrait_at, with_baseline
from toolkit.imaging import analyze_photo
from toolkit.imaging.synthetic import simulate_visit


@pytest.fixture(scope="module", params=[("astronaut", 1), ("astronaut", 2), ("grace_hopper", 1), ("grace_hopper", 2)],
                ids=lambda p: f"{p[0]}@{p[1]}x")
def visits(request) -> dict[str, np.ndarray]:
    img = portrait_at(*request.param)
    layout, baseline = with_baseline(img)
    again, _ = simulate_visit(img, wrinkle_change={}, seed=1, layout=layout)
    treated, _ = simulate_visit(img, wrinkle_change={"nasolabial_l": -0.4, "nasolabial_r": -0.4}, lift_mm=1.5,
                                seed=2, layout=layout)
    return {"baseline": baseline, "again": again, "treated": treated}


def test_a_mirrored_follow_up_fails_with_the_reason(visits) -> None:
    res = analyze_photo(cv2.flip(visits["again"], 1), baseline=visits["baseline"], overlays=False)
    assert "mirrored" in res.qc.codes, (res.qc.codes, res.qc.metrics.get("baseline_match"),
                                        res.qc.metrics.get("baseline_match_mirrored"))
    reason = next(r for r in res.qc.reasons if "mirror image" in r)
    assert "left and right" in reason
    assert res.qc.metrics["baseline_match_mirrored"] > res.qc.metrics["baseline_match"] + 0.15


def test_a_mirrored_baseline_is_found_the_same_way(visits) -> None:
    res = analyze_photo(visits["again"], baseline=cv2.flip(visits["baseline"], 1), overlays=False)
    assert "mirrored" in res.qc.codes, res.qc.codes


@pytest.mark.parametrize("visit", ["again", "treated"])
def test_follow_ups_as_the_camera_saw_them_are_not_called_mirrored(visits, visit: str) -> None:
    res = analyze_photo(visits[visit], baseline=visits["baseline"], overlays=False)
    assert "mirrored" not in res.qc.codes, res.qc.reasons
    assert res.qc.metrics["baseline_match"] > res.qc.metrics["baseline_match_mirrored"] + 0.3, res.qc.metrics


def test_light_from_the_other_side_is_not_a_mirror(visits) -> None:
    # the key light moved across: a left-right gradient of ±40 % in linear light at the follow-up
    img = visits["again"]
    ramp = np.linspace(0.6, 1.4, img.shape[1])[None, :, None]
    lit = np.clip(255 * np.clip((img / 255.0) ** 2.2 * ramp, 0, 1) ** (1 / 2.2) + 0.5, 0, 255).astype(np.uint8)
    res = analyze_photo(lit, baseline=visits["baseline"], overlays=False)
    assert "mirrored" not in res.qc.codes, res.qc.reasons
