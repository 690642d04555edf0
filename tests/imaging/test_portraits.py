"""Real portraits shipped in installed packages: faces, repeatability under re-capture, known lift."""

from __future__ import annotations

import math
import pickle

import cv2
import numpy as np
import pandas as pd
import pytest

from toolkit.imaging import METRIC_COLUMNS, REGION_NAMES, analyze_photo
from toolkit.imaging.faces import HaarCascadeBackend
from toolkit.imaging.synthetic import portrait, simulate_visit

LOWER_FACE = ("nasolabial_l", "nasolabial_r", "perioral", "marionette_l", "marionette_r", "jawline_l", "jawline_r")


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_face_and_both_eyes_are_found(name: str) -> None:
    img = portrait(name)
    search = HaarCascadeBackend().detect(img)
    assert len(search.faces) == 1
    face = search.faces[0]
    assert not face.eyes_estimated
    x, y, w, h = face.box
    # eyes inside the upper half of the face box, subject's right eye on the image left
    assert face.eye_right[0] < x + w / 2 < face.eye_left[0]
    assert y < face.eye_right[1] < y + 0.6 * h and y < face.eye_left[1] < y + 0.6 * h
    assert 0.3 * w < face.inter_ocular_px < 0.6 * w


def test_analysis_without_baseline_has_nan_lift_and_pickles() -> None:
    result = analyze_photo(portrait("astronaut"))
    assert result.qc.passed, result.qc.reasons
    assert list(result.regions.columns) == ["region", *METRIC_COLUMNS]
    assert tuple(result.regions.region) == REGION_NAMES
    assert result.regions.lift_mm.isna().all() and result.regions.displacement_mm.isna().all()
    assert (result.regions.wrinkle_length_mm >= 0).all()
    assert result.calibration.source == "inter_ocular_estimate"
    frame = result.to_frame()
    assert (frame.algorithm_version == result.algorithm_version).all()
    again = pickle.loads(pickle.dumps(result))
    pd.testing.assert_frame_equal(again.regions, result.regions)
    assert set(result.overlays) == {"wrinkles"}


@pytest.fixture(scope="module")
def recaptures() -> dict[str, list[pd.DataFrame]]:
    """Twelve re-captures (no true change, seeds 1–12) of each portrait, analysed against the original.

    Re-captures that fail QC are left out, as a study would retake them; only an exposure failure is
    expected (grace_hopper's bright skin clips at +9 % brightness).
    """
    out: dict[str, list[pd.DataFrame]] = {}
    for name in ("astronaut", "grace_hopper"):
        base = portrait(name)
        frames, failed = [], []
        for seed in range(1, 13):
            img, truth = simulate_visit(base, lift_mm=0.0, seed=seed, wrinkle_regions=())
            res = analyze_photo(img, baseline=base, overlays=False)
            if not res.qc.passed:
                failed.append(res.qc.codes)
                continue
            assert res.registration.residual_mm < 0.2, (name, seed)
            frames.append(res.regions.set_index("region"))
        assert len(failed) <= 1 and all(codes == ["exposure"] for codes in failed), failed
        out[name] = frames
    return out


# grace_hopper is ≈0.8 mm per pixel and astronaut ≈1.4 mm: 0.1 mm is 0.07–0.13 px. Measured over the
# re-captures: every grace_hopper region value within 0.1 mm (largest 0.078 mm); astronaut 97 % (largest
# 0.144 mm = 0.105 px); the median photo's largest |lift| 0.037 and 0.077 mm.
@pytest.mark.parametrize("name, all_within", [("astronaut", 0.95), ("grace_hopper", 1.0)])
def test_no_true_change_gives_no_lift(recaptures, name: str, all_within: float) -> None:
    lifts = pd.concat([f.lift_mm for f in recaptures[name]], axis=1)
    assert (lifts.abs() <= 0.1).to_numpy().mean() >= all_within, lifts.abs().max(axis=1)
    assert lifts.abs().max().median() <= 0.1
    assert lifts.abs().max().max() <= 0.2
    # and hardly any bias: the mean over re-captures of every region
    assert lifts.mean(axis=1).abs().max() <= 0.06


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_wrinkle_length_repeatability(recaptures, name: str) -> None:
    lengths = pd.concat([f.wrinkle_length_mm for f in recaptures[name]], axis=1)
    mean = lengths.mean(axis=1)
    # the CV is defined where the portrait shows line structure (mean length ≥ 20 mm)
    defined = mean >= 20.0
    cv = lengths.std(axis=1, ddof=1)[defined] / mean[defined]
    assert defined.sum() >= 8
    # Measured over the re-captures: median CV 0.033 (astronaut, 10 regions) and 0.026 (grace_hopper,
    # 15 regions); 22 of the 25 regions at or below 0.05, the largest 0.062 (astronaut's perioral and
    # marionette regions, lip edges and shading at 1.4 mm per pixel). A channel the camera clipped is left
    # out of the contrast (grace_hopper's red channel saturates on most of her glabella at +6–9 %
    # brightness; with the plain luminance that region's CV was 0.109).
    assert cv.median() <= 0.05
    assert (cv <= 0.05).mean() >= 0.75, cv.sort_values().tail(4)
    assert (cv <= 0.08).all(), cv.sort_values().tail(3)


def test_exposure_change_alone_moves_nothing() -> None:
    # ±10 % brightness and nothing else: dense matching must not read it as motion, nor the wrinkle
    # metric as lines appearing or fading
    base = portrait("astronaut")
    frames = []
    for gain in (0.9, 1.1):
        img = np.clip(base.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        res = analyze_photo(img, baseline=base, overlays=False)
        assert res.qc.passed, res.qc.reasons
        frames.append(res.regions.set_index("region"))
    for f in frames:
        assert f.lift_mm.abs().max() <= 0.1
    lengths = pd.concat([f.wrinkle_length_mm for f in frames], axis=1)
    defined = lengths.mean(axis=1) >= 20.0
    ratio = lengths[defined].iloc[:, 1] / lengths[defined].iloc[:, 0]
    # 8-bit rounding and the highlights that clip at +10 % change a region or two by up to ≈12 %
    assert (ratio - 1).abs().median() <= 0.03, ratio
    assert ((ratio - 1).abs() <= 0.15).all(), ratio


def test_wrong_subject_as_baseline_fails_registration_qc() -> None:
    res = analyze_photo(portrait("astronaut", long_side_px=600), baseline=portrait("grace_hopper"), overlays=False)
    assert not res.qc.passed
    assert "registration" in res.qc.codes
    assert res.qc.metrics["registration_residual_mm"] > 0.5
    assert any("registration to baseline failed" in r and "limit 0.5 mm" in r for r in res.qc.reasons)


def test_known_lower_face_lift_is_recovered() -> None:
    base = portrait("grace_hopper")
    img, truth = simulate_visit(base, lift_mm=2.0, seed=3, wrinkle_regions=())
    res = analyze_photo(img, baseline=base, mm_per_px=truth["mm_per_px"])
    assert res.qc.passed, res.qc.reasons
    table = res.regions.set_index("region")
    for region in LOWER_FACE:
        expected = truth["region_lift_mm"][region]
        assert table.loc[region, "lift_mm"] == pytest.approx(expected, abs=0.2 + 0.1 * abs(expected)), region
    assert abs(table.loc["forehead", "lift_mm"]) <= 0.1
    assert {"wrinkles", "displacement", "ghost"} <= set(res.overlays)
    assert res.overlays["displacement"].dtype == np.uint8


def test_synthetic_wrinkle_change_is_measured() -> None:
    # astronaut: smooth skin, so the drawn lines are not lost among the subject's own deep wrinkles
    base_img = portrait("astronaut", long_side_px=900)
    baseline, truth0 = simulate_visit(base_img, wrinkle_change={}, perturb=False, seed=0)
    follow, truth1 = simulate_visit(base_img, wrinkle_change={"nasolabial_l": -0.5, "nasolabial_r": -0.5}, seed=4)
    assert truth1["wrinkle_length_mm"]["nasolabial_l"] == pytest.approx(0.5 * truth0["wrinkle_length_mm"]["nasolabial_l"])
    r0 = analyze_photo(baseline).regions.set_index("region")
    r1 = analyze_photo(follow, baseline=baseline).regions.set_index("region")
    for side in ("l", "r"):
        drawn_change = truth1["wrinkle_length_mm"][f"nasolabial_{side}"] - truth0["wrinkle_length_mm"][f"nasolabial_{side}"]
        measured_change = r1.loc[f"nasolabial_{side}", "wrinkle_length_mm"] - r0.loc[f"nasolabial_{side}", "wrinkle_length_mm"]
        # lines drawn at 900 px are partly below the detection contrast after re-capture: the change is
        # found with the right sign and at least a third of its size
        assert measured_change < 0
        assert abs(measured_change) >= abs(drawn_change) / 3
    # crow's feet were left as they were
    for side in ("l", "r"):
        c0, c1 = r0.loc[f"crows_feet_{side}", "wrinkle_length_mm"], r1.loc[f"crows_feet_{side}", "wrinkle_length_mm"]
        assert math.isclose(c0, c1, rel_tol=0.25)


def test_simulate_visit_is_fast_enough_for_a_demo_study() -> None:
    import time

    base = portrait("astronaut", long_side_px=1000)
    face = HaarCascadeBackend().detect(base).faces[0]
    t0 = time.perf_counter()
    for seed in range(3):
        simulate_visit(base, lift_mm=1.0, wrinkle_change={"nasolabial_l": -0.2}, seed=seed, face=face)
    assert (time.perf_counter() - t0) / 3 < 0.6  # ≈0.15 s on a quiet core; the margin absorbs shared CI load


@pytest.mark.parametrize("region", ["nasolabial_l", "nasolabial_r", "crows_feet_l", "crows_feet_r"])
def test_synthetic_lines_stay_inside_their_region(region: str) -> None:
    from toolkit.imaging.regions import load_roi_template
    from toolkit.imaging.synthetic import _LINE_HALF_FRACTION, _line_layout

    poly = load_roi_template().polygon(region).astype(np.float32)
    lines = _line_layout(poly, region)
    assert len(lines) == 2
    for centre, along, chord in lines:
        assert chord > 0.2  # inter-ocular units: a line long enough to measure
        for sev in (0.5, 1.0, 1.5):
            half = _LINE_HALF_FRACTION * chord * sev
            for end in (centre - along * half, centre + along * half):
                assert cv2.pointPolygonTest(poly, (float(end[0]), float(end[1])), True) > 0


def test_measured_nasolabial_length_follows_the_drawn_length() -> None:
    # the demo's end point: nasolabial_l + nasolabial_r length, over a severity sweep at 1024 px
    base = portrait("astronaut", long_side_px=1024)
    face = HaarCascadeBackend().detect(base).faces[0]
    reference, _ = simulate_visit(base, wrinkle_change={}, seed=999, face=face)
    drawn, measured = [], []
    for i, sev in enumerate((0.6, 0.8, 1.0, 1.2, 1.4)):
        change = {"nasolabial_l": sev - 1.0, "nasolabial_r": sev - 1.0}
        img, truth = simulate_visit(base, lift_mm=0.5, wrinkle_change=change, seed=i + 1, face=face)
        regions = analyze_photo(img, baseline=reference, overlays=False).regions.set_index("region")
        drawn.append(truth["wrinkle_length_mm"]["nasolabial_l"] + truth["wrinkle_length_mm"]["nasolabial_r"])
        measured.append(regions.loc[["nasolabial_l", "nasolabial_r"], "wrinkle_length_mm"].sum())
    slope = np.polyfit(drawn, measured, 1)[0]
    assert 0.8 < slope < 1.3
    assert np.corrcoef(drawn, measured)[0, 1] > 0.95


def test_follow_up_without_its_own_scale_takes_the_baseline_scale() -> None:
    # a follow-up taken 3 % further away: its pixels are 1/0.97 times larger in millimetres
    base = portrait("grace_hopper")
    baseline_cal = analyze_photo(base, overlays=False).calibration
    far = cv2.resize(base, None, fx=0.97, fy=0.97, interpolation=cv2.INTER_AREA)
    res = analyze_photo(far, baseline=base, overlays=False)
    assert res.qc.passed, res.qc.reasons
    assert res.calibration.source == "baseline_registration"
    assert res.calibration.mm_per_px == pytest.approx(baseline_cal.mm_per_px / 0.97, rel=0.005)
    assert res.qc.metrics["calibration_source"] == "baseline_registration"
    # a scale the user gives, or a marker, still wins
    given = analyze_photo(far, baseline=base, overlays=False, mm_per_px=0.5)
    assert given.calibration.source == "user" and given.calibration.mm_per_px == 0.5


@pytest.mark.parametrize(("angle_deg", "scale"), [(0.0, 1.0), (3.0, 1.08), (-4.0, 0.9)])
def test_feature_start_recovers_a_known_similarity(angle_deg: float, scale: float) -> None:
    from toolkit.imaging.registration import contrast_normalised, feature_similarity

    gray = cv2.cvtColor(portrait("grace_hopper"), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    forward = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, scale)  # baseline → follow-up pixels
    follow = cv2.warpAffine(gray, forward, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    matrix, inliers = feature_similarity(gray, follow)
    assert matrix is not None and inliers >= 20
    np.testing.assert_allclose(matrix[:, :2], forward[:, :2], atol=0.004)
    centre = np.array([w / 2, h / 2])
    np.testing.assert_allclose(matrix[:, :2] @ centre + matrix[:, 2], forward[:, :2] @ centre + forward[:, 2], atol=0.5)
    # exposure cancels in the matching input, texture stays
    brighter = np.clip(gray.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    a, b = contrast_normalised(gray, 8.0), contrast_normalised(brighter, 8.0)
    unclipped = gray < 200
    assert np.median(np.abs(a.astype(int) - b.astype(int))[unclipped]) <= 1
    assert a[unclipped].std() > 10


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_a_small_lift_at_the_jaw_is_recovered_without_scale_bias(name: str) -> None:
    # 1.2 mm, the demo's microcurrent effect, on 1000 px portraits: measured 0.96× (astronaut) and 0.98×
    # (grace_hopper) over four seeds. A residual registration scale of 0.1 %, left in, read 0.92× on astronaut.
    base = portrait(name, long_side_px=1000)
    img, truth = simulate_visit(base, lift_mm=1.2, seed=2, wrinkle_regions=())
    res = analyze_photo(img, baseline=base, overlays=False)
    assert res.qc.passed, res.qc.reasons
    table = res.regions.set_index("region")
    jaw = ["jawline_l", "jawline_r"]
    expected = np.mean([truth["region_lift_mm"][r] for r in jaw])
    assert table.loc[jaw, "lift_mm"].mean() / expected == pytest.approx(1.0, abs=0.08)
    assert abs(table.loc["forehead", "lift_mm"]) <= 0.05
