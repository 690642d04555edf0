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
        Allowed pose and scale deviation from the subject's baseline. The scale is the face's size in pixels, or,
        when the follow-up's frame has the baseline's shape at another pixel count (the camera's image-size
        setting), its size relative to the frame; such a follow-up is flagged ``resolution_change``.
    max_pitch_change_deg : float
        Largest nod (head tipped up or down) from the baseline, from the two 3-D face meshes. A nod moves the
        lower face up or down in the photo (about 0.6 mm per degree at the jawline), which reads as lift. The
        mesh reads a true lift as a small nod the other way (a 2 mm lift as about −1.6°), so the photo fails
        only when the lower face moved the way the nod moves it. Re-captures without a nod read up to about
        1.8° on the shipped portraits: smaller nods than the limit are not caught.
    max_yaw_index : float
        Eye-midpoint offset from the face centre (face widths) beyond which the view is not frontal.
    require_marker : bool
        Fail when no scale marker is found (and no scale was given).
    max_registration_residual_mm : float
        Median displacement left on the stable regions after registration to the baseline; a good
        registration leaves a few hundredths of a millimetre, a failed one millimetres.
    profile_yaw_index : float
        Beyond this yaw index the view is a profile (or three-quarter) view, not a turned frontal one.
    min_eye_openness : float
        Lid opening over eye width (from the mesh) below which an eye counts as closed.
    min_iris_contrast : float
        Contrast of the iris against the sclera beside it below which an eye counts as closed (a lid shows
        no iris, whatever the mesh says).
    max_mouth_openness : float
        Inner-lip gap over mouth width above which the mouth counts as open.
    smile_index : float
        Mouth-corner rise (over mouth width) above which the face counts as smiling (a flag).
    max_expression_change : float
        Largest change of the smile index or of the mouth opening from the baseline's.
    max_outside_fraction : float
        Largest fraction of the face mesh allowed outside the image (a partial face fails).
    max_shape_distance : float
        Largest face-shape distance (inter-ocular distances, after a similarity fit) between a follow-up
        and its baseline; beyond it the baseline shows another person.
    max_region_clipped_fraction : float
        A region with more clipped skin than this is flagged (its wrinkles may be lost in the highlight).
    region_channel_clipped_fraction, max_region_channel_clipped_change, faint_line_contrast : float
        A follow-up's region whose lines are faint (their mean contrast below ``faint_line_contrast`` times the
        skin's texture level) and in which one colour channel is clipped on more than the
        first share of its skin at either visit, and on a share that differs from the baseline's by more than
        the second, is flagged ``channel_clipped``: its lines are read from the other channels at one visit and
        not at the other, and faint lines then cross the detection thresholds differently (stronger lines keep
        their length).
    max_region_covered_fraction : float
        A follow-up's region in which more than this share of the skin measured at baseline is covered at
        this visit (hair, headwear, a hand grown over it) is not measured (it would read shorter wrinkles
        only because less skin shows), and the photo is flagged ``skin_covered``.
    min_jpeg_quality : int
        A JPEG saved at a lower quality (the IJG-equivalent setting read from its quantisation tables) is
        flagged ``jpeg_quality``: strong compression smooths fine lines and adds block texture.
    min_jpeg_quality_measured : int
        A JPEG saved below this quality fails ``jpeg_quality`` whatever ``fail_on_flags`` says: against a
        quality-95 baseline, follow-ups of the shipped portraits saved at quality 65 read 12-31 % more wrinkle
        length, at 55 4-21 % less, at 75 5-14 % more (a flag).
    max_jpeg_quality_change : int
        A follow-up whose JPEG quality differs from its baseline's by more than this is flagged
        ``compression_change``: the wrinkle measures shift with the compression.
    max_sharpness_change : float
        A follow-up whose fine detail around the eyes and brows (which no treatment of the skin changes) is
        softer or sharper than its baseline's by more than this fraction is flagged ``sharpness_change``: a
        slightly defocused photo reads as fewer and shallower lines, in-camera sharpening as more, by about as
        much as the detail changed.
    max_sharpness_change_measured : float
        Beyond this change (either way) the follow-up fails ``sharpness_change`` whatever ``fail_on_flags``
        says: on defocused re-captures of the shipped portraits (1× and 2×) a photo 16-23 % softer than its
        baseline read 14-21 % less wrinkle length and 19-25 % less depth, one 12 % softer 4 % and 9 %.
    max_skin_texture_change : float
        A follow-up whose skin texture (the 75th percentile of the ridge strength over its skin, warped onto
        the baseline) is weaker or stronger than its baseline's by more than this fraction is flagged
        ``skin_texture_change``: a camera's skin-smoothing ("beauty") mode, noise reduction or retouching weakens
        it and reads as fewer and shallower lines, while the detail around the eyes, which the sharpness check
        reads, stays; sensor noise (high ISO) and compression strengthen it.
    max_new_spots : int
        A follow-up with this many more spots on its measured skin than its baseline (and at least twice as
        many) is flagged ``new_spots``: red dots after a session, a breakout or a rash. The wrinkle measures
        leave every spot out (:mod:`toolkit.imaging.spots`), but the skin has changed: look at the photo and
        record any adverse event.
    fail_on_flags : tuple of str
        Flag codes (``smile``, ``spectacles``, ``region_clipping``, ``channel_clipped``, ``skin_covered``,
        ``jpeg_quality``, ``compression_change``, ``sharpness_change``, ``skin_texture_change``,
        ``resolution_change``, ``new_spots``: :data:`toolkit.study.PHOTO_QC_FLAGS`) that a study wants to fail instead; a
        study's pipeline takes them from ``photo_qc.fail_on_flags`` in its ``study.yaml``.
    """

    min_blur_score: float = 20.0
    max_clipped_fraction: float = 0.05
    max_roll_deg: float = 5.0
    max_scale_change: float = 0.10
    max_yaw_index_change: float = 0.08
    max_pitch_change_deg: float = 2.0
    max_yaw_index: float = 0.12
    require_marker: bool = False
    max_registration_residual_mm: float = 0.5
    profile_yaw_index: float = 0.3
    min_eye_openness: float = 0.12
    min_iris_contrast: float = 0.6
    max_mouth_openness: float = 0.35
    smile_index: float = 0.08
    max_expression_change: float = 0.08
    max_outside_fraction: float = 0.02
    max_shape_distance: float = 0.015
    max_region_clipped_fraction: float = 0.10
    region_channel_clipped_fraction: float = 0.25
    max_region_channel_clipped_change: float = 0.15
    faint_line_contrast: float = 2.5
    max_region_covered_fraction: float = 0.10
    min_jpeg_quality: int = 85
    min_jpeg_quality_measured: int = 70
    max_jpeg_quality_change: int = 10
    max_sharpness_change: float = 0.10
    max_sharpness_change_measured: float = 0.15
    max_skin_texture_change: float = 0.15
    max_new_spots: int = 10
    fail_on_flags: tuple[str, ...] = ()


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
    #: warnings a photographer wants to see but that do not fail the photo (smile, spectacles, a clipped region)
    flags: list[str] = field(default_factory=list)
    #: short codes of the flags
    flag_codes: list[str] = field(default_factory=list)

    def fail(self, code: str, reason: str) -> None:
        """Record a failure."""
        self.passed = False
        self.codes.append(code)
        self.reasons.append(reason)

    def flag(self, code: str, reason: str, *, fail_on: tuple[str, ...] = ()) -> None:
        """Record a warning; it fails the photo when ``code`` is in ``fail_on``."""
        if code in fail_on:
            self.fail(code, reason)
            return
        self.flag_codes.append(code)
        self.flags.append(reason)

    def to_dict(self) -> dict:
        """Plain-data form for storage (JSON-serialisable)."""
        return {
            "passed": self.passed,
            "codes": list(self.codes),
            "reasons": list(self.reasons),
            "flags": list(self.flags),
            "flag_codes": list(self.flag_codes),
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
    n = int(np.count_nonzero(skin_mask))
    if n == 0:
        return float("nan"), float("nan")
    rgb = np.asarray(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    dark = (r <= 2) & (g <= 2) & (b <= 2)
    high = (r >= 254).view(np.uint8) + (g >= 254).view(np.uint8) + (b >= 254).view(np.uint8)
    return (float(np.count_nonzero(dark & skin_mask)) / n,
            float(np.count_nonzero((high >= 2) & skin_mask)) / n)
