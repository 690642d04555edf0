"""The same face with darker skin, or lit from one side at a follow-up, measures the same.

A trial enrols every skin type, and a site's lighting drifts between visits. Neither is a change of the skin:

- **Darker skin.** The real portraits' skin (the face and neck, less the hand-drawn hair and cap outlines of
  ``data/portrait_nonskin.json``) is re-rendered with less reflectance in linear light, more so towards blue as
  melanin absorbs: about 0.6 / 0.5 / 0.45 of the original in R / G / B (a type IV-like skin) and 0.26 / 0.18 /
  0.14 (type VI-like). Lines keep their relative depth, as they do on a real face: the truth is the original
  portrait's own measurement. The regions must still lie on skin (the hand-drawn outlines), the folds measure
  the same within ±12 %, and folds drawn on the darker skin are counted as on the original.
- **Side or top lighting at a follow-up.** A re-capture with no true change, lit with a ±40 % left–right or
  ±25 % top–bottom gradient (linear light), must read no lift and the same folds as the evenly lit re-capture.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.imaging.test_regions_on_skin import ANNOTATIONS, _face_truth, _nonskin_truth
from toolkit.imaging import analyze_photo
from toolkit.imaging import mesh_topology as topo
from toolkit.imaging.synthetic import fold_layout, portrait, simulate_visit

#: reflectance of the re-rendered skin relative to the portrait's, per channel (R, G, B), in linear light
TONES = {"IV": (0.62, 0.52, 0.45), "VI": (0.26, 0.18, 0.14)}
SCALE = 2


def _linear(img: np.ndarray) -> np.ndarray:
    return (img / 255.0) ** 2.2


def _encoded(lin: np.ndarray) -> np.ndarray:
    return (np.clip(lin, 0.0, 1.0) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


def _skin_area(name: str, img: np.ndarray) -> np.ndarray:
    """Face and neck of the native portrait, less the hand-drawn hair and headwear (float weight, soft edge)."""
    res = analyze_photo(img, overlays=False)
    oval = res.face.mesh[list(topo.FACE_OVAL), :2]
    centre = oval.mean(axis=0)
    area = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(area, [np.round((oval - centre) * 1.2 + centre).astype(np.int32)], 1)  # the ears and hairline too
    chin = oval[:, 1].max()
    x0, x1 = np.percentile(oval[:, 0], [15, 85])
    cv2.rectangle(area, (int(x0), int(centre[1])), (int(x1), int(chin + 0.35 * (chin - centre[1]))), 1, -1)
    for poly in ANNOTATIONS[name]["polygons"].values():
        cv2.fillPoly(area, [np.asarray(poly, np.int32)], 0)
    return cv2.GaussianBlur(area.astype(np.float32), (0, 0), 2.0)[..., None]


def _darker(name: str, tone: str) -> np.ndarray:
    img = portrait(name)
    w = _skin_area(name, img)
    out = _encoded(_linear(img) * (1.0 - w + w * np.asarray(TONES[tone])))
    return cv2.resize(out, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)


def _enlarged(name: str) -> np.ndarray:
    return cv2.resize(portrait(name), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def originals() -> dict:
    return {n: analyze_photo(_enlarged(n), overlays=False) for n in ("astronaut", "grace_hopper")}


@pytest.mark.parametrize("tone", list(TONES))
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_darker_skin_is_measured_on_skin_and_alike(originals, name: str, tone: str) -> None:
    res = analyze_photo(_darker(name, tone), overlays=False, keep_masks=True)
    # nothing new is wrong with the photo: no failure, the original's flags (the astronaut's smile, Grace
    # Hopper's spectacles) and no other
    assert res.qc.passed, res.qc.reasons
    assert res.qc.flag_codes == originals[name].qc.flag_codes
    # every region on skin by the hand-drawn outlines (as test_regions_on_skin checks the originals)
    truth = _face_truth(res)
    truth &= ~np.logical_or.reduce(list(_nonskin_truth(name, truth.shape, res.grid_matrix, SCALE).values()))
    on_skin = {r: float(truth[m].mean()) for r, m in res.region_masks.items() if m.any()}
    assert min(on_skin.values()) >= 0.90, {r: round(f, 3) for r, f in on_skin.items() if f < 0.9}
    # the same regions measured (at most one more or fewer, where a region's skin share sits at the limit)
    now, before = res.regions.set_index("region"), originals[name].regions.set_index("region")
    both = now.wrinkle_length_mm.notna() & before.wrinkle_length_mm.notna()
    assert (now.wrinkle_length_mm.notna() != before.wrinkle_length_mm.notna()).sum() <= 1
    assert both.sum() >= 7
    for metric in ("wrinkle_length_mm", "wrinkle_depth_index"):
        total, original = now.loc[both, metric].sum(), before.loc[both, metric].sum()
        assert total == pytest.approx(original, rel=0.12), (metric, total, original)


@pytest.mark.parametrize(("name", "region", "metric"), [
    ("astronaut", "cheek_r", "wrinkle_length_mm"),
    ("astronaut", "nasolabial_l", "wrinkle_length_mm"),
    ("astronaut", "jawline_r", "wrinkle_length_mm"),
    ("grace_hopper", "forehead", "wrinkle_depth_index"),
])
def test_folds_drawn_on_the_darkest_skin_are_counted_there(name: str, region: str, metric: str) -> None:
    # as test_drawn_lines on the originals: Grace Hopper's lined skin is checked by depth (see there)
    base = _darker(name, "VI")
    before = analyze_photo(base, overlays=False).regions.set_index("region")
    img, truth = simulate_visit(base, wrinkle_change={}, perturb=False, wrinkle_regions=(region,),
                                layout=fold_layout(base, (region,)))
    drawn = truth[metric][region]
    res = analyze_photo(img, baseline=base, overlays=False)
    assert res.qc.passed, res.qc.reasons
    change = res.regions.set_index("region")[metric] - before[metric]
    assert change[region] == pytest.approx(drawn, rel=0.15), (change[region], drawn)
    assert abs(change.drop(region).sum()) < 0.10 * drawn, change.round(2).to_dict()


def _relit(img: np.ndarray, axis: int, amplitude: float) -> np.ndarray:
    """``img`` lit with a linear gradient of ±``amplitude`` along ``axis`` (1: left to right, 0: top to bottom)."""
    n = img.shape[axis]
    ramp = 1.0 + 2.0 * amplitude * (np.arange(n) / (n - 1) - 0.5)
    gain = ramp[None, :, None] if axis == 1 else ramp[:, None, None]
    return _encoded(_linear(img) * gain)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_lighting_from_one_side_at_a_follow_up_reads_no_change(name: str) -> None:
    img = _enlarged(name)
    layout = fold_layout(img)
    base, _ = simulate_visit(img, wrinkle_change={}, seed=100, layout=layout)
    follow, _ = simulate_visit(img, wrinkle_change={}, seed=1, layout=layout)
    even = analyze_photo(follow, baseline=base, overlays=False).regions.set_index("region")
    for axis, amplitude in ((1, 0.4), (0, 0.25)):
        res = analyze_photo(_relit(follow, axis, amplitude), baseline=base, overlays=False)
        assert res.qc.passed, res.qc.reasons
        lit = res.regions.set_index("region")
        assert lit.lift_mm.abs().max() <= 0.15, lit.lift_mm.round(3).to_dict()
        assert (lit.lift_mm - even.lift_mm).abs().max() <= 0.06
        for metric in ("wrinkle_length_mm", "wrinkle_depth_index"):
            assert lit[metric].sum() == pytest.approx(even[metric].sum(), rel=0.03), (axis, metric)
