"""Registration of a follow-up photo onto its baseline.

A similarity from matched ORB features of the face (or, when too few agree, from the two eye centres)
gives the start; dense matching (DIS optical flow) on the
stable upper face only (forehead, glabella, nose bridge) refines it by least squares, so that a
real change of the lower face is left in the registered image for the lift measurement instead of being
absorbed by the transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.imaging.faces import FaceGeometry
from toolkit.imaging.ridges import local_mean

__all__ = ["Registration", "contrast_normalised", "feature_similarity", "fit_similarity", "similarity_from_eyes",
           "register_to_baseline", "robust_similarity"]


@dataclass(frozen=True)
class Registration:
    """How a follow-up was mapped onto its baseline.

    Attributes
    ----------
    matrix : (2, 3) ndarray
        Affine map from baseline pixel coordinates to follow-up pixel coordinates (the ECC/OpenCV
        ``WARP_INVERSE_MAP`` convention).
    method : str
        ``mesh+dense``, ``features+dense`` or ``eyes+dense``: where the start came from (the two faces'
        mesh vertices, matched ORB features, or the eye centres), then refined by dense matching; without
        the refinement (too few stable pixels) just ``mesh``, ``features`` or ``eyes``.
    ecc_correlation : float
        Fraction of stable pixels kept as inliers in the last refinement (NaN without refinement).
    scale : float
        Follow-up pixels per baseline pixel.
    rotation_deg : float
        Rotation of the follow-up relative to the baseline.
    residual_px, residual_mm : float
        Median remaining displacement on the stable regions after registration (filled by the lift step).
    """

    matrix: np.ndarray
    method: str
    ecc_correlation: float
    scale: float
    rotation_deg: float
    residual_px: float = float("nan")
    residual_mm: float = float("nan")


def similarity_from_eyes(src: FaceGeometry, dst: FaceGeometry) -> np.ndarray:
    """2×3 similarity mapping ``src`` eye centres onto ``dst`` eye centres."""
    s0 = np.array(src.eye_right, dtype=float)
    s1 = np.array(src.eye_left, dtype=float)
    d0 = np.array(dst.eye_right, dtype=float)
    d1 = np.array(dst.eye_left, dtype=float)
    vs, vd = s1 - s0, d1 - d0
    k = np.linalg.norm(vd) / max(np.linalg.norm(vs), 1e-9)
    ang = math.atan2(vd[1], vd[0]) - math.atan2(vs[1], vs[0])
    c, s = k * math.cos(ang), k * math.sin(ang)
    a = np.array([[c, -s], [s, c]])
    t = d0 - a @ s0
    return np.hstack([a, t[:, None]])


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2×3 similarity mapping ``src`` points onto ``dst`` (Umeyama, no reflection)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    d = np.diag([1.0, 1.0 if np.linalg.det(u @ vt) > 0 else -1.0])
    rot = u @ d @ vt
    k = float(np.trace(np.diag(sv) @ d) / max(s0.var(axis=0).sum(), 1e-12))
    a = k * rot
    return np.hstack([a, (md - a @ ms)[:, None]])


def robust_similarity(points: np.ndarray, motion: np.ndarray, *, return_inlier_fraction: bool = False,
                      max_points: int = 20_000):
    """Least-squares similarity mapping ``points`` onto ``points + motion``, after two rounds of
    rejecting motions more than 3 robust deviations (1.4826 MAD, + 0.05 px) from the median.

    Returns the 2×3 matrix, and with ``return_inlier_fraction`` the fraction of points kept. Above
    ``max_points`` an evenly spaced subset is used: four parameters are fixed long before that.
    """
    if len(motion) > max_points:
        step = int(math.ceil(len(motion) / max_points))
        points, motion = points[::step], motion[::step]
    keep = np.ones(len(motion), dtype=bool)
    for _ in range(2):
        med = np.median(motion[keep], axis=0)
        dev = np.hypot(*(motion - med).T)
        mad = np.median(dev[keep]) + 1e-6
        keep = dev < 3.0 * 1.4826 * mad + 0.05
    sim = fit_similarity(points[keep], points[keep] + motion[keep])
    return (sim, float(keep.mean())) if return_inlier_fraction else sim


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2×3 affine of ``outer ∘ inner``."""
    o = np.vstack([outer, [0, 0, 1]])
    i = np.vstack([inner, [0, 0, 1]])
    return (o @ i)[:2]


def contrast_normalised(gray: np.ndarray, sigma_px: float) -> np.ndarray:
    """Luminance divided by its local mean (Gaussian, ``sigma_px``), as uint8 around 128.

    Dense matching assumes that a point keeps its brightness between the two images. Dividing by the
    local mean removes what a change of exposure or of slow shading does to that (a 10 % exposure change
    otherwise reads as motion), and keeps the skin texture the matching relies on.
    """
    g = np.asarray(gray, dtype=np.float32)
    sigma = max(float(sigma_px), 1.0)
    background = local_mean(g, sigma)
    rel = g / np.maximum(background, 4.0)
    return np.clip(128.0 + 255.0 * (rel - 1.0), 0, 255).astype(np.uint8)


def feature_similarity(
    base_gray: np.ndarray, follow_gray: np.ndarray, base_mask: np.ndarray | None = None, *, min_inliers: int = 20,
    max_side: int = 640,
) -> tuple[np.ndarray | None, int]:
    """Similarity mapping baseline pixels to follow-up pixels from ORB features matched with a ratio test
    and fitted by RANSAC (``cv2.estimateAffinePartial2D``).

    Returns the 2×3 matrix (None when fewer than ``min_inliers`` matches agree) and the inlier count.
    Unlike the eye centres of a Haar cascade, which can land several pixels off, hundreds of skin and
    hair features pin the scale to a few tenths of a percent.
    """
    base8 = np.asarray(base_gray, dtype=np.uint8)
    follow8 = np.asarray(follow_gray, dtype=np.uint8)
    # features only need to pin a start for dense matching: find them on copies at most `max_side` wide
    k = min(1.0, max_side / max(base8.shape))
    if k < 1.0:
        base8 = cv2.resize(base8, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        follow8 = cv2.resize(follow8, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        if base_mask is not None:
            base_mask = cv2.resize(np.asarray(base_mask, dtype=np.uint8), (base8.shape[1], base8.shape[0]),
                                   interpolation=cv2.INTER_NEAREST)
    orb = cv2.ORB_create(nfeatures=2000, edgeThreshold=15, patchSize=15, fastThreshold=5)
    mask = None if base_mask is None else (np.asarray(base_mask) > 0).astype(np.uint8) * 255
    kb, db = orb.detectAndCompute(base8, mask)
    kf, df = orb.detectAndCompute(follow8, None)
    if db is None or df is None or len(kb) < min_inliers or len(kf) < min_inliers:
        return None, 0
    good = [m[0] for m in cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(db, df, k=2)
            if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < min_inliers:
        return None, len(good)
    src = np.float32([kb[g.queryIdx].pt for g in good])
    dst = np.float32([kf[g.trainIdx].pt for g in good])
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0,
                                                  maxIters=5000, confidence=0.999, refineIters=10)
    count = int(inliers.sum()) if inliers is not None else 0
    if matrix is None or count < min_inliers:
        return None, count
    matrix = matrix.astype(float)
    matrix[:, 2] /= k  # same rotation and scale at full size; the shift scales back
    return matrix, count


def register_to_baseline(
    follow_gray: np.ndarray,
    base_gray: np.ndarray,
    follow_geometry: FaceGeometry,
    base_geometry: FaceGeometry,
    stable_mask: np.ndarray,
    *,
    iterations: int = 2,
    full_resolution_last: bool = True,
    face_mask: np.ndarray | None = None,
    normalise_px: float | None = None,
    start: np.ndarray | None = None,
) -> tuple[Registration, np.ndarray]:
    """Register a follow-up onto the baseline frame.

    The eye similarity is refined by dense matching on the stable regions: DIS optical flow between the
    baseline and the current warp gives a correspondence for every stable pixel, and a similarity is
    fitted to them by least squares with outlier rejection. Dense matching uses every textured pixel of
    the forehead and nose bridge, which keeps the scale and rotation errors small enough not to fake a
    lift in the lower face, far from the reference.

    Parameters
    ----------
    follow_gray, base_gray : 2-D uint8 ndarrays
        Luminance of the follow-up and baseline (analysis resolution).
    follow_geometry, base_geometry : FaceGeometry
        Faces in the same two images.
    stable_mask : 2-D bool ndarray
        Baseline pixels that do not move with treatment (forehead, glabella, nose bridge).
    iterations : int
        Refinement rounds (matching at half resolution, where the similarity is already well determined).
    full_resolution_last : bool
        Match the last round at full resolution. Half-resolution matching alone leaves a scale bias of a
        few tenths of a percent, which becomes a false lift of 0.2–1 mm at the jaw.
    start : (2, 3) ndarray, optional
        Starting similarity (baseline → follow-up pixels), e.g. fitted to the two faces' mesh vertices;
        without it the start comes from matched features, else from the eye centres.

    Returns
    -------
    registration : Registration
    registered : uint8 ndarray
        The follow-up warped into the baseline frame (shape of ``base_gray``).
    """
    size = (base_gray.shape[1], base_gray.shape[0])
    follow8 = np.asarray(follow_gray, dtype=np.uint8)
    base8 = np.asarray(base_gray, dtype=np.uint8)
    if start is not None:
        warp, start_name = np.asarray(start, dtype=float), "mesh"
    else:
        # start from matched features when they agree (see feature_similarity), else from the eyes
        warp, _ = feature_similarity(base_gray, follow_gray, face_mask)
        start_name = "features"
        if warp is None:
            warp, start_name = similarity_from_eyes(base_geometry, follow_geometry), "eyes"
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    sigma_n = normalise_px if normalise_px is not None else max(3.0, 0.1 * base_geometry.inter_ocular_px)
    base_n = contrast_normalised(base8, sigma_n)
    # early rounds only need the coarse motion: match at half resolution, then once at full resolution
    half_base = cv2.resize(base_n, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(stable_mask)
    pts = np.column_stack([xs, ys]).astype(np.float64)
    method = start_name
    quality = float("nan")
    if len(pts) >= 50:
        for it in range(iterations):
            reg = contrast_normalised(cv2.warpAffine(follow8, warp, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                                     borderMode=cv2.BORDER_REFLECT), sigma_n)
            if it < iterations - 1 or not full_resolution_last:
                small = cv2.resize(reg, (half_base.shape[1], half_base.shape[0]), interpolation=cv2.INTER_AREA)
                flow = cv2.resize(dis.calc(half_base, small, None), size, interpolation=cv2.INTER_LINEAR) * 2.0
            else:
                flow = dis.calc(base_n, reg, None)
            # the stable pixels should not move: fit the similarity that explains their residual motion
            corr, quality = robust_similarity(pts, flow[ys, xs].astype(np.float64), return_inlier_fraction=True)
            warp = _compose(warp, corr)
        method = f"{start_name}+dense"
    a = warp[:, :2].astype(float)
    scale = math.sqrt(abs(np.linalg.det(a)))
    rot = math.degrees(math.atan2(a[1, 0], a[0, 0]))
    # cubic keeps fine lines sharper than linear, so wrinkle metrics change less through registration
    registered = cv2.warpAffine(follow8, warp.astype(np.float32), size,
                                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    reg = Registration(matrix=warp.astype(float), method=method, ecc_correlation=quality, scale=scale, rotation_deg=rot)
    return reg, registered
