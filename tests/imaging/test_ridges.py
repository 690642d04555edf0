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
from toolkit.imaging.wrinkles import WrinkleParams, skeleton_length, thin


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


def test_thinning_gives_a_one_pixel_skeleton_inside_the_shape() -> None:
    b = np.zeros((40, 120), dtype=bool)
    b[15:22, 10:110] = True  # a 7-px-thick bar, 100 px long
    sk = thin(b)
    assert (sk & ~b).sum() == 0
    assert (sk[:-1, :-1] & sk[1:, :-1] & sk[:-1, 1:] & sk[1:, 1:]).sum() == 0
    assert sk.sum(axis=0)[20:100].max() == 1  # exactly one pixel per column in the middle
    assert 85 <= skeleton_length(sk) / 0.948 <= 101


def test_skeleton_length_is_unbiased_for_diagonals() -> None:
    diag = np.eye(101, dtype=bool)
    assert skeleton_length(diag) == pytest.approx(100 * np.sqrt(2), rel=0.06)


def test_sigmas_follow_physical_scale() -> None:
    p = WrinkleParams(sigmas_mm=(0.25, 0.5, 1.0), min_sigma_px=1.5)
    assert p.sigmas_px(0.05) == (5.0, 10.0, 20.0)
    assert p.sigmas_px(1.0) == (1.5,)
