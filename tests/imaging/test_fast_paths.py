"""The imaging pipeline's fast paths give exactly what the plain array formulas they replace give.

Each step below was rewritten for speed (look-up tables, sorting instead of ``np.nanmedian``, broadcasting
instead of coordinate grids); the plain formula is written out here, on noisy data with the awkward cases
(clipped levels, all-masked cells, odd and even counts), and the results must be bit-identical.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from toolkit.imaging import analysis
from toolkit.imaging.calibration import gray_world
from toolkit.imaging.lift import flow_overlay
from toolkit.imaging.qc import clipping_fraction
from toolkit.imaging.ridges import LINE_RESPONSE_PER_CONTRAST, _hessian, ridge_strength

RNG = np.random.default_rng(7)


def _photo(h: int = 97, w: int = 131) -> np.ndarray:
    img = RNG.normal(128, 70, (h, w, 3))
    img[:10] = 255  # clipped rows
    img[-10:, :20] = 0
    return np.clip(img, 0, 255).astype(np.uint8)


def test_gray_world_matches_the_float_formula():
    img = _photo()
    mask = RNG.random(img.shape[:2]) < 0.4
    for m in (mask, None):
        f = img.astype(np.float32)
        sel = f[m] if m is not None else f.reshape(-1, 3)
        means = np.maximum(sel.mean(axis=0), 1e-3)
        expected = np.clip(f * (means.mean() / means), 0, 255).astype(np.uint8)
        assert np.array_equal(gray_world(img, m), expected)


def test_clipping_fraction_matches_the_per_pixel_formula():
    img = _photo()
    mask = RNG.random(img.shape[:2]) < 0.5
    px = img[mask]
    expected = (float(np.mean(np.all(px <= 2, axis=1))), float(np.mean(np.sum(px >= 254, axis=1) >= 2)))
    assert clipping_fraction(img, mask) == expected
    assert expected[0] > 0 and expected[1] > 0
    assert all(np.isnan(clipping_fraction(img, np.zeros(mask.shape, dtype=bool))))


def test_masked_median_matches_nanmedian():
    values = RNG.normal(0, 3, (40, 2500)).astype(np.float32)
    mask = RNG.random(values.shape) < RNG.random((40, 1))  # from almost none to almost all per row
    mask[0] = False
    mask[1] = False
    mask[1, :4] = True  # even count
    mask[2] = False
    mask[2, :3] = True  # odd count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(np.where(mask, values, np.nan), axis=1)
    got = analysis._masked_median_rows(values, mask)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected.astype(np.float32), equal_nan=True)


def test_overlay_tints_match_the_float_formula():
    rgb = _photo()
    skin = RNG.random(rgb.shape[:2]) < 0.6
    measurable = skin & (RNG.random(rgb.shape[:2]) < 0.7)
    skeleton = RNG.random(rgb.shape[:2]) < 0.01
    polys = {"a": np.array([[5.3, 5.1], [60.2, 8.7], [40.5, 70.25]])}
    expected = rgb.copy()
    expected[~skin] = (0.45 * expected[~skin] + np.array([0, 20, 70])).astype(np.uint8)
    edge = skin & ~measurable
    expected[edge] = (0.7 * expected[edge] + np.array([40, 40, 0])).astype(np.uint8)
    for poly in polys.values():
        cv2.polylines(expected, [np.round(poly * 4).astype(np.int32)], True, (255, 220, 0), 1, cv2.LINE_AA, shift=2)
    expected[cv2.dilate(skeleton.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)] = (255, 30, 30)
    assert np.array_equal(analysis._overlay(rgb, skin, measurable, polys, skeleton), expected)


def test_flow_overlay_draws_the_same_arrows():
    rgb = _photo(120, 90)
    flow = RNG.normal(0, 2, (120, 90, 2)).astype(np.float32)
    expected = rgb.copy()
    for y in range(4, 120, 8):
        for x in range(4, 90, 8):
            dx, dy = flow[y, x]
            end = (int(round(x + 2.5 * dx)), int(round(y + 2.5 * dy)))
            colour = (40, 220, 40) if dy < 0 else (230, 60, 60)
            cv2.arrowedLine(expected, (x, y), end, colour, 1, cv2.LINE_AA, tipLength=0.3)
    assert np.array_equal(flow_overlay(rgb, flow, step_px=8, gain=2.5), expected)


def test_ridge_strength_matches_the_masked_update():
    img = cv2.GaussianBlur(RNG.normal(100, 20, (150, 170)).astype(np.float32), (0, 0), 1.2)
    sigmas = (1.5, 3.0, 5.0)
    centred = img - np.float32(img.mean())
    best = np.zeros_like(centred)
    index = np.full(centred.shape, -1, dtype=np.int8)
    normal = np.zeros_like(centred)
    for i, sigma in enumerate(sigmas):
        dxx, dyy, dxy = _hessian(centred, sigma, True)
        ht = (dxx + dyy) * 0.5
        root = cv2.magnitude((dxx - dyy) * 0.5, dxy)
        lam2, lam1 = ht + root, ht - root
        gate = np.clip((0.75 - np.abs(lam1) / np.maximum(lam2, np.float32(1e-12))) / 0.5, 0.0, 1.0)
        s = np.where(lam2 > 0, lam2 * gate * np.float32(sigma**2 / LINE_RESPONSE_PER_CONTRAST), 0).astype(np.float32)
        better = s > best
        best[better] = s[better]
        index[better] = i
        normal[better] = (0.5 * np.arctan2(2.0 * dxy, dxx - dyy))[better]
    got_best, got_index = ridge_strength(img, sigmas)
    got_best2, got_normal = ridge_strength(img, sigmas, return_normal=True)
    # to float32 rounding: cv2.magnitude's SIMD and scalar paths round a few elements one step apart depending on
    # where an array sits in memory (up to 2 of 25,500 pixels, 2.3e-7 relative, over 100 runs)
    for got in (got_best, got_best2):
        np.testing.assert_allclose(got, best, rtol=1e-6, atol=1e-6 * float(best.max()))
    assert np.array_equal(got_index, index)
    assert np.array_equal(got_normal, normal)
    assert (index >= 0).mean() > 0.2  # the test image has ridges at every scale


def test_edge_columns_on_the_mask_box_match_the_whole_image_gradient():
    from toolkit.imaging.face_qc import _edge_columns

    rel = cv2.GaussianBlur(RNG.normal(1.0, 0.05, (80, 110)).astype(np.float32), (0, 0), 1.0)
    gy, gx = np.gradient(rel)
    for angle in (0.0, 0.3, -1.1):
        across = np.abs(-np.sin(angle) * gx + np.cos(angle) * gy)
        for box in ((slice(10, 30), slice(20, 70)), (slice(0, 15), slice(0, 110)), (slice(60, 80), slice(90, 110))):
            mask = np.zeros(rel.shape, dtype=bool)
            mask[box] = RNG.random(mask[box].shape) < 0.8  # the box touches the image's edges in two cases
            ys, xs = np.nonzero(mask)
            t = xs * np.cos(angle) + ys * np.sin(angle)
            bins = np.floor(t - t.min()).astype(int)
            strongest = np.zeros(bins.max() + 1)
            np.maximum.at(strongest, bins, across[ys, xs])
            for threshold in (0.005, 0.01, 0.02):
                assert _edge_columns(rel, mask, angle, threshold) == float(np.mean(strongest > threshold))


def test_iris_contrast_on_the_eyes_box_matches_the_whole_image_blur():
    from toolkit.imaging.face_qc import _iris_contrast

    rgb = _photo(90, 120)
    for shift in ((0.0, 0.0), (-38.0, -30.0), (60.0, 45.0)):  # eyes inside, at the top-left and bottom-right edges
        m = np.zeros((468, 2))
        for idx, (x, y) in {33: (40, 40), 133: (55, 41), 159: (47, 36), 145: (47, 45),
                            263: (90, 40), 362: (72, 41), 386: (81, 35), 374: (81, 46)}.items():
            m[idx] = (x + shift[0], y + shift[1])
        lum = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
        expected = []
        for (outer, inner), (up, low) in (((33, 133), (159, 145)), ((263, 362), (386, 374))):
            a, b = m[outer], m[inner]
            mid = (m[up] + m[low]) / 2 - (a + b) / 2
            t = np.linspace(0.1, 0.9, 41)
            pts = a[None, :] + t[:, None] * (b - a)[None, :] + mid[None, :] * np.sin(np.pi * t)[:, None]
            xs = np.clip(np.round(pts[:, 0]).astype(int), 0, lum.shape[1] - 1)
            ys = np.clip(np.round(pts[:, 1]).astype(int), 0, lum.shape[0] - 1)
            prof = lum[ys, xs]
            sides = max(float(np.max(prof[:10])), float(np.max(prof[-10:])))
            expected.append(1.0 - float(np.min(prof[10:31])) / max(sides, 1.0))
        assert _iris_contrast(rgb, m) == float(min(expected))
