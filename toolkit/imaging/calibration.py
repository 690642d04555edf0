"""Calibration of a photo: millimetres per pixel and colour normalisation.

Scale comes, in order of preference, from a value the user gives, from an ArUco marker of known side held
in the plane of the face, or (flagged as an estimate) from the inter-ocular distance and the adult mean
of 63 mm. Colour is normalised by the gray-world assumption by default, or by a colour chart whose patch
positions and reference values the study declares.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.errors import ConfigurationError

__all__ = [
    "ARUCO_DICTIONARIES",
    "MEAN_INTER_OCULAR_MM",
    "Calibration",
    "MarkerDetection",
    "detect_scale_marker",
    "ColourChart",
    "gray_world",
    "chart_correction",
]

#: adult mean inter-pupillary distance used only as a flagged fallback scale
MEAN_INTER_OCULAR_MM = 63.0
#: ArUco dictionaries accepted by name
ARUCO_DICTIONARIES = ("DICT_4X4_50", "DICT_4X4_100", "DICT_5X5_50", "DICT_5X5_100", "DICT_6X6_50", "DICT_6X6_250")


@dataclass(frozen=True)
class MarkerDetection:
    """An ArUco scale marker found in a photo (pixel coordinates of the original image)."""

    marker_id: int
    corners_px: np.ndarray  # (4, 2)
    side_px: float


@dataclass(frozen=True)
class Calibration:
    """Pixel size of a photo and where it came from.

    ``source`` is ``user``, ``marker``, ``inter_ocular_estimate`` (63 mm between the eye centres), or
    ``baseline_registration`` (a follow-up without its own scale: the baseline's pixel size carried over
    by the registration).
    """

    mm_per_px: float
    source: str
    marker: MarkerDetection | None = None


def _dictionary(name: str):
    if name not in ARUCO_DICTIONARIES:
        raise ConfigurationError(f"unknown ArUco dictionary {name!r}; accepted: {', '.join(ARUCO_DICTIONARIES)}")
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def detect_scale_marker(
    image: np.ndarray,
    *,
    dictionary: str = "DICT_4X4_50",
    marker_id: int | None = None,
    detect_long_side_px: int = 2000,
) -> MarkerDetection | None:
    """Find an ArUco marker and measure its side in pixels.

    Parameters
    ----------
    image : (M, N, 3) or (M, N) uint8 ndarray
    dictionary : str
        One of :data:`ARUCO_DICTIONARIES`.
    marker_id : int, optional
        Accept only this marker id (default: the largest marker found).
    detect_long_side_px : int
        Large photos are searched on a downscaled copy; corners are then refined at full resolution.

    Returns
    -------
    MarkerDetection or None
    """
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else np.asarray(image, dtype=np.uint8)
    scale = min(1.0, detect_long_side_px / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(_dictionary(dictionary), params)
    corners, ids, _ = detector.detectMarkers(small)
    if ids is None or len(ids) == 0:
        return None
    best = None
    for c, i in zip(corners, ids.ravel(), strict=True):
        if marker_id is not None and int(i) != marker_id:
            continue
        pts = c.reshape(4, 2).astype(np.float32) / scale
        side = float(np.mean(np.linalg.norm(pts - np.roll(pts, -1, axis=0), axis=1)))
        if best is None or side > best[2]:
            best = (int(i), pts, side)
    if best is None:
        return None
    mid, pts, _ = best
    if scale < 1:
        win = max(2, int(round(1.5 / scale)))
        pts = cv2.cornerSubPix(
            gray, pts.reshape(-1, 1, 2).copy(), (win, win), (-1, -1),
            (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.01),
        ).reshape(4, 2)
    side = float(np.mean(np.linalg.norm(pts - np.roll(pts, -1, axis=0), axis=1)))
    return MarkerDetection(marker_id=mid, corners_px=pts, side_px=side)


def gray_world(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Gray-world colour normalisation: scale each channel so the channel means are equal.

    Parameters
    ----------
    image : (M, N, 3) uint8 ndarray
    mask : (M, N) bool ndarray, optional
        Pixels that estimate the illuminant (default: all).

    Returns
    -------
    (M, N, 3) uint8 ndarray
    """
    image = np.asarray(image)
    sel = image[mask] if mask is not None and mask.any() else image.reshape(-1, 3)
    means = np.maximum(sel.astype(np.float32).mean(axis=0), 1e-3)
    gains = means.mean() / means
    if image.dtype == np.uint8:
        # the same arithmetic on the 256 levels of each channel, applied as a look-up table
        levels = np.arange(256, dtype=np.float32)[:, None]
        lut = np.clip(levels * gains, 0, 255).astype(np.uint8).reshape(1, 256, 3)
        return cv2.LUT(np.ascontiguousarray(image), lut)
    return np.clip(image.astype(np.float32) * gains, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ColourChart:
    """A colour chart in the photo: patch boxes (x, y, w, h in pixels) and their reference sRGB values."""

    patches_px: tuple[tuple[int, int, int, int], ...]
    reference_rgb: np.ndarray  # (K, 3) in 0..255

    def __post_init__(self) -> None:
        ref = np.asarray(self.reference_rgb, dtype=float)
        if ref.shape != (len(self.patches_px), 3) or len(self.patches_px) < 4:
            raise ConfigurationError(
                "colour chart: need at least 4 patches and one reference [R, G, B] per patch, got "
                f"{len(self.patches_px)} patches and reference shape {ref.shape}"
            )


def chart_correction(image: np.ndarray, chart: ColourChart) -> tuple[np.ndarray, float]:
    """Correct colours with a 3×3 matrix plus offset fitted to the chart patches by least squares.

    Returns
    -------
    corrected : (M, N, 3) uint8 ndarray
    rms_error : float
        Residual RMS error on the patches after correction (0..255 units).
    """
    img = np.asarray(image, dtype=np.float32)
    measured = []
    for x, y, w, h in chart.patches_px:
        patch = img[y : y + h, x : x + w].reshape(-1, 3)
        if patch.size == 0:
            raise ConfigurationError(f"colour chart patch {(x, y, w, h)} lies outside the photo")
        measured.append(np.median(patch, axis=0))
    a = np.hstack([np.asarray(measured), np.ones((len(measured), 1))])
    ref = np.asarray(chart.reference_rgb, dtype=float)
    coef, *_ = np.linalg.lstsq(a, ref, rcond=None)
    rms = float(np.sqrt(np.mean((a @ coef - ref) ** 2)))
    flat = img.reshape(-1, 3) @ coef[:3].astype(np.float32) + coef[3].astype(np.float32)
    return np.clip(flat.reshape(img.shape), 0, 255).astype(np.uint8), rms
