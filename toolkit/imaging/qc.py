"""Photo quality control: one pass/fail verdict with reasons, and the measured values behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["QCThresholds", "QCReport", "blur_score", "clipping_fraction"]


@dataclass(frozen=True)
class QCThresholds:
    """Limits a photo must meet. A study may tighten or relax them.

    Attributes
    ----------
    min_blur_score : float
        Variance of the Laplacian on the face crop resized to 256 px wide.
    max_clipped_fraction : float
        Fraction of skin pixels clipped (all channels ≤ 2, or two or more ≥ 254).
    max_roll_deg, max_scale_change, max_yaw_index_change : float
        Allowed pose and scale deviation from the subject's baseline.
    max_yaw_index : float
        Eye-midpoint offset from the face centre (face widths) beyond which the view is not frontal.
    require_marker : bool
        Fail when no scale marker is found (and no scale was given).
    max_registration_residual_mm : float
        Median displacement left on the stable regions after registration to the baseline; a good
        registration leaves a few hundredths of a millimetre, a failed one millimetres.
    """

    min_blur_score: float = 20.0
    max_clipped_fraction: float = 0.05
    max_roll_deg: float = 5.0
    max_scale_change: float = 0.10
    max_yaw_index_change: float = 0.08
    max_yaw_index: float = 0.12
    require_marker: bool = False
    max_registration_residual_mm: float = 0.5


@dataclass
class QCReport:
    """QC verdict of one photo: ``passed`` and the reasons it did not, plus the measured values."""

    passed: bool = True
    reasons: list[str] = field(default_factory=list)
    #: short codes of the failures (``no_face``, ``blur``, ``corrupt`` …) for filtering
    codes: list[str] = field(default_factory=list)
    metrics: dict[str, float | str | bool] = field(default_factory=dict)
    #: notes that do not fail the photo (e.g. eyes placed from the face box)
    notes: list[str] = field(default_factory=list)

    def fail(self, code: str, reason: str) -> None:
        """Record a failure."""
        self.passed = False
        self.codes.append(code)
        self.reasons.append(reason)

    def to_dict(self) -> dict:
        """Plain-data form for storage (JSON-serialisable)."""
        return {
            "passed": self.passed,
            "codes": list(self.codes),
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "metrics": {k: (float(v) if isinstance(v, np.floating) else v) for k, v in self.metrics.items()},
        }


def blur_score(face_gray: np.ndarray, *, width_px: int = 256) -> float:
    """Variance of the Laplacian of a face crop resized to ``width_px`` wide (size-normalised sharpness)."""
    h, w = face_gray.shape[:2]
    if w < 8 or h < 8:
        return 0.0
    k = width_px / w
    crop = cv2.resize(face_gray, (width_px, max(8, int(round(h * k)))), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    return float(cv2.Laplacian(crop, cv2.CV_64F, ksize=3).var())


def clipping_fraction(rgb: np.ndarray, skin_mask: np.ndarray) -> tuple[float, float]:
    """Fractions of skin pixels clipped dark (all channels ≤ 2) and bright (two or more channels ≥ 254).

    One saturated channel alone (red, on fair skin under strong light) still leaves the luminance detail
    the metrics use, so it is not counted.
    """
    px = rgb[skin_mask]
    if px.size == 0:
        return float("nan"), float("nan")
    dark = float(np.mean(np.all(px <= 2, axis=1)))
    bright = float(np.mean(np.sum(px >= 254, axis=1) >= 2))
    return dark, bright
