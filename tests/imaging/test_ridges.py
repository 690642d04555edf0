"""Ridge filters: properties with known answers, and agreement with scikit-image's Frangi filter."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.imaging.ridges import (
    gaussian_derivative_kernels,
    hessian_eigenvalues,
    ridge_response,
    ridge_strength,
)
from toolkit.imaging.wrinkles import WrinkleParams


def _gaussian_line(contrast: float, width_px: float, size: int = 160) -> np.ndarray:
    x = np.arange(size, dtype=float)
    profile = 200.0 - contrast * np.exp(-((x - size / 2) ** 2) / (2 * width_px**2))
    return np.tile(profile, (60, 1))


def test_kernels_differentiate_polynomials_exactly() -> None:
    g0, g1, g2 = gaussian_derivative_kernels(2.5)
    x = np.arange(len(g0)) - len(g0) // 2
    assert g0.sum() == pytest.approx(1.0, abs=1e-6)
    # correlation with g1 gives -d/dx; with g2 gives d²/dx²
    assert float((g1 * x).sum()) == pytest.approx(-1.0, abs=1e-5)
    assert float((g2 * x**2 / 2).sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(g2.sum()) == pytest.approx(0.0, abs=1e-6)


def test_flat_image_gives_zero_response() -> None:
    flat = np.full((64, 64), 123.0)
    assert np.abs(ridge_response(flat, (1, 2, 4))).max() == 0.0
    strength, index = ridge_strength(flat, (1, 2, 4))
    assert strength.max() == 0.0 and (index == -1).all()


@pytest.mark.parametrize("width_px", [1.5, 3.0, 6.0])
def test_strength_equals_line_contrast_whatever_the_width(width_px: float) -> None:
    sigmas = [width_px * np.sqrt(2) * f for f in (0.6, 0.8, 1.0, 1.25, 1.6)]
    for contrast in (10.0, 40.0):
        s, _ = ridge_strength(_gaussian_line(contrast, width_px), sigmas)
        assert s[30, 80] == pytest.approx(contrast, rel=0.03)


def test_bright_lines_need_black_ridges_false() -> None:
    img = 255.0 - _gaussian_line(50.0, 2.0)
    dark, _ = ridge_strength(img, (2.0, 3.0))
    bright, _ = ridge_strength(img, (2.0, 3.0), black_ridges=False)
    assert dark[30, 80] == 0.0
    assert bright[30, 80] == pytest.approx(50.0, rel=0.05)


def test_pyramid_matches_direct_filtering() -> None:
    rng = np.random.default_rng(1)
    import cv2

    img = cv2.GaussianBlur(rng.normal(0, 20, (256, 256)).astype(np.float32), (0, 0), 3)
    a = hessian_eigenvalues(img, 8.0)[1]
    b = hessian_eigenvalues(img, 8.0, pyramid=False)[1]
    inner = (slice(32, -32), slice(32, -32))
    assert np.corrcoef(a[inner].ravel(), b[inner].ravel())[0, 1] > 0.98


def test_vesselness_agrees_with_skimage_frangi() -> None:
    from skimage.filters import frangi

    from toolkit.imaging.synthetic import portrait

    img = portrait("grace_hopper")[..., 1].astype(np.float32)
    ours = ridge_response(img, (1, 3, 5))
    ref = frangi(img, sigmas=(1, 3, 5))
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.9


def test_bad_dimensions_are_refused() -> None:
    with pytest.raises(ValueError, match="2-dimensional"):
        ridge_response(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="positive"):
        gaussian_derivative_kernels(0.0)


def test_sigmas_follow_physical_scale() -> None:
    p = WrinkleParams(sigmas_mm=(0.25, 0.5, 1.0), min_sigma_px=1.5)
    assert p.sigmas_px(0.05) == (5.0, 10.0, 20.0)
    # scales finer than the grid resolves are left out, never stretched to a coarser one
    assert p.sigmas_px(0.25) == (2.0, 4.0)
    assert p.sigmas_px(1.0) == (1.0,)  # nothing resolvable: the coarsest scale alone


def test_scales_the_photo_cannot_resolve_are_not_used() -> None:
    p = WrinkleParams(sigmas_mm=(0.3, 0.6, 1.2), min_sigma_px=1.0, min_sigma_source_px=0.7)
    grid = 0.2
    assert p.sigmas_px(grid, source_mm_per_px=0.1) == pytest.approx((1.5, 3.0, 6.0))
    # a photo of 0.72 mm per pixel shows nothing finer than ≈ 0.5 mm, whatever grid it is resampled to
    assert p.sigmas_px(grid, source_mm_per_px=0.72) == pytest.approx((3.0, 6.0))
    assert p.sigmas_px(grid, source_mm_per_px=1.45) == pytest.approx((6.0,))


def test_thresholds_follow_the_skin_texture_but_never_fall_below_the_minimum() -> None:
    p = WrinkleParams()
    assert p.thresholds(None) == (p.low_contrast_pct, p.high_contrast_pct)
    assert p.thresholds(1.0) == (p.low_contrast_pct, p.high_contrast_pct)
    low, high = p.thresholds(20.0)
    assert low == pytest.approx(p.low_over_texture * 20.0) and high == pytest.approx(p.high_over_texture * 20.0)


def test_response_does_not_depend_on_how_rows_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    # a curved dark line crossing many strip boundaries, at full-grid and pyramid scales
    yy, xx = np.mgrid[0:150, 0:130].astype(np.float32)
    img = 180.0 - 60.0 * np.exp(-((xx - 40 - 0.004 * (yy - 20) ** 2) ** 2) / 8.0)
    reference = ridge_response(img, (1.5, 3, 6))
    import toolkit.imaging.ridges as ridges

    for rows in (1, 7, 64, 1000):
        monkeypatch.setattr(ridges, "_STRIP_ROWS", rows)
        np.testing.assert_allclose(ridge_response(img, (1.5, 3, 6)), reference, atol=1e-6)
    # a straight vertical line gives the same response on every row away from the top and bottom edges
    line = ridge_response(np.tile(_gaussian_line(50.0, 2.0)[0], (150, 1)), (2.0, 3.0))
    assert line[10:-10, 80].max() - line[10:-10, 80].min() < 1e-6
    assert line[75, 80] > 0.5


def test_response_ignores_an_intensity_offset_and_mirrors_for_bright_lines() -> None:
    from toolkit.imaging.synthetic import portrait

    img = portrait("grace_hopper")[..., 1].astype(np.float32)
    base = ridge_response(img, (1, 3, 5))
    # a 16-bit-like offset leaves no float32 round-off noise in the response
    assert np.abs(ridge_response(img + 30000.0, (1, 3, 5)) - base).max() < 1e-3
    assert np.abs(ridge_response(255.0 - img, (1, 3, 5), black_ridges=False) - base).max() < 1e-3
    assert base.dtype == np.float32 and base.min() >= 0.0 and base.max() <= 1.0


def test_steps_and_flat_patches_give_no_nan() -> None:
    img = np.zeros((90, 90), dtype=np.float32)
    img[:, 45:] = 100.0  # flat halves with a step: zero Hessian on most pixels
    img[60:70, 10:20] = 50.0
    v = ridge_response(img, (1, 2, 4, 8))
    assert np.isfinite(v).all() and v.min() >= 0.0 and v.max() <= 1.0
    rng = np.random.default_rng(0)
    for shape in ((1, 1), (1, 4), (4, 1), (2, 3), (33, 4)):  # OpenCV takes tiny arrays for scalars
        v = ridge_response(rng.random(shape) * 100, (1, 2, 4))
        assert v.shape == shape and np.isfinite(v).all()


def test_coarse_scales_agree_with_skimage_frangi_on_an_upscaled_photo() -> None:
    import cv2
    from skimage.filters import frangi

    from toolkit.imaging.synthetic import portrait

    # the benchmark's setting (scales 2, 4, 8 on a photo upscaled toward clinical pixel sizes), smaller
    img = portrait("grace_hopper")[..., 1]
    img = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    ours = ridge_response(img, (2, 4, 8))
    ref = frangi(img, sigmas=(2, 4, 8))
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.99
