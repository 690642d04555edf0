"""One photo in, numbers out: QC, calibration, skin, regions, registration, wrinkle and lift metrics.

:func:`analyze_photo` is pure (it reads its inputs and returns a result; nothing is written) and its
result pickles, so a loop, a process pool or a Dask cluster can run it.

The steps, for a photo and (optionally) the subject's baseline:

1. **Face**: the 468-point face mesh (:class:`~toolkit.imaging.faces.FaceMeshBackend`); QC of framing, pose,
   eyes, mouth, expression and eyewear (:mod:`toolkit.imaging.face_qc`).
2. **Analysis grid**: a crop around the face resampled to a fixed pixel size in millimetres
   (``analysis_mm_per_px``), so that every photo, whatever its resolution, is measured on the same grid
   with the same filters. Scales the photo cannot resolve (finer than its own pixels) are not used.
3. **Skin and regions**: region polygons on mesh vertices, intersected with the skin
   (:mod:`toolkit.imaging.skin`) minus a band along every anatomical edge.
4. **Baseline frame**: a follow-up is registered to its baseline (a similarity from the two meshes, refined
   by dense matching on the stable upper face), then *warped onto the baseline* by the dense displacement
   field, so each baseline pixel shows the same bit of skin in the follow-up (on the stable upper face the
   registration alone aligns it). Lift is that displacement (lower face against the stable reference, on
   skin); wrinkles are then measured in the baseline's regions, so a lift cannot carry a line across a region
   boundary. Skin bare at baseline and covered at the follow-up (hair, headwear) is measured nowhere.
5. **Wrinkles**: contrast-normalised Hessian ridges at scales in millimetres, thresholds relative to this
   photo's own skin texture (:mod:`toolkit.imaging.wrinkles`).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from toolkit.imaging import face_qc
from toolkit.imaging import mesh_topology as topo
from toolkit.imaging.calibration import MEAN_INTER_OCULAR_MM, Calibration, detect_scale_marker, gray_world
from toolkit.imaging.faces import FaceGeometry, FaceMeshBackend, LandmarkBackend
from toolkit.imaging.lift import displacement_field, flow_overlay, landmark_geometry, measure_lift
from toolkit.imaging.photo_io import PhotoRejected, as_rgb_array, load_photo
from toolkit.imaging.qc import QCReport, QCThresholds, blur_score, clipping_fraction
from toolkit.imaging.regions import (
    REGION_NAMES,
    RoiTemplate,
    load_roi_template,
    polygon_masks,
    region_polygons,
)
from toolkit.imaging.registration import Registration, fit_similarity, register_to_baseline
from toolkit.imaging.skin import (
    SkinParams,
    SkinSegmentation,
    fill_polygon,
    grow,
    grown_loops,
    mask_pixels,
    mask_window,
    segment_skin,
    shrink,
)
from toolkit.imaging.spots import MIN_CONTRAST as SPOT_MIN_CONTRAST
from toolkit.imaging.spots import Spots, find_spots, without_spots
from toolkit.imaging.wrinkles import (
    WrinkleParams,
    clipped_channels,
    measure_wrinkles,
    skin_texture_level,
    suppress_parallel,
    wrinkle_map,
)

__all__ = ["ALGORITHM_VERSION", "METRIC_COLUMNS", "PhotoAnalysis", "analyze_photo"]

#: recorded with every number this module produces; bump on any change that alters results
ALGORITHM_VERSION = "epmc-imaging 2.5.0"

#: the per-region columns of :attr:`PhotoAnalysis.regions`
METRIC_COLUMNS = (
    "wrinkle_count",
    "wrinkle_length_mm",
    "wrinkle_density_mm_per_cm2",
    "wrinkle_area_fraction",
    "ridge_strength",
    "wrinkle_depth_index",
    "skin_fraction",
    "lift_mm",
    "displacement_mm",
)

#: margin around the face mesh kept in the analysis crop (room for the skin model's outer ring)
_CROP_MARGIN_MM = 18.0
#: ridges along the lips' outline this near it are their border (see _lips_and_mouth_corners)
_LIP_REACH_MM = 5.0
#: mesh vertices of the mouth's corners (right, left), and how far around them lines are never the lips' border
_MOUTH_CORNERS = (61, 291)
_MOUTH_CORNER_MM = 8.0
#: detail finer than this (a Gaussian's sigma), or than the photos' pixels, is what focus and sharpening change
#: (see _check_sharpness)
_DETAIL_MM = 0.4
#: how far beyond skin covered at a visit the sharpness check leaves out (the brows under a fringe)
_COVER_REACH_MM = 4.0
#: a follow-up with more than this fraction more or fewer pixels across the baseline's frame is flagged
_RESOLUTION_CHANGE = 0.10
#: below this spread of the channels (95th percentile of the largest difference between two channels over the
#: face crop, in 8-bit levels) a photo is grayscale: 0 for a grayscale export stored as RGB; 54–164 for the shipped
#: portraits under casts of ±25 % per channel, 36–67 half desaturated, 63–77 for the demo's photos. A toned
#: monochrome (sepia, 28–31) is not caught here (saved losslessly, the face colour count below catches it)
_MIN_COLOUR_SPREAD = 8.0
#: fewest distinct colours in the face's box: a photo's face shows thousands (2 900 on a 100-px face at a third of
#: its exposure); one reduced to a palette (GIF, PNG-8) and saved in full colour again shows at most 256
_MIN_FACE_COLOURS = 512
#: an eye line further than this from the frame's horizontal: the photo is sideways (see _orientation_problem)
_MAX_FRAME_ROLL_DEG = 30.0
#: below this face presence the mesh may have been fitted to an upside-down face: BlazeFace is asked both ways
#: (upright faces 0.999999+, also blurred or dark; upside-down ones 0.94-0.9994), and a face found with this
#: score turned 180° and 0.1 more than as it is shows the photo upside down
_UPRIGHT_PRESENCE = 0.999999
_UPRIGHT_SCORE = 0.8
#: a follow-up is a mirror image of its baseline when, flipped, it matches the baseline better than as it is by
#: more than this correlation (see _check_mirrored: re-captures 0.83-0.98 as they are against 0.34-0.48 flipped;
#: mirrored ones 0.37-0.47 against 0.62-0.88)
_MIRROR_MARGIN = 0.10
#: the match is compared on a 0.4 mm grid, in detail between 0.4 and 2 mm (features and lines, not shading)
_MIRROR_MM = 0.4
_MIRROR_BAND_MM = (0.4, 2.0)
#: mesh vertices that follow the bony upper face: the start of the registration
_STABLE_VERTICES = face_qc._SHAPE_VERTICES
#: pixel size at which the follow-up is registered and its displacement field matched (lift needs a tenth
#: of a millimetre: a sixth of a pixel here, within dense matching's reach, at a ninth of the full grid's
#: cost; no-change lift stays within 0.1 mm on the shipped portraits at 1x, 2x and 4x)
_FLOW_MM_PER_PX = 0.6
#: margin around the face outline's box within which the displacement field is matched (the field is read
#: on the outline only); the normalisation and smoothing before matching see the whole crop
_FLOW_MARGIN_MM = 8.0
#: the displacement field is reduced to the median of each cell of this size before the follow-up is
#: warped onto the baseline: a treatment moves skin smoothly, and a median is not bent by a line that
#: appeared or faded between the visits (dense matching pulls it towards something in the other photo)
_WARP_CELL_MM = 10.0
#: the warp field fades in over this distance below the stable upper face (see _outside_stable)
_STABLE_FEATHER_MM = 6.0
#: skin covered at a follow-up counts where it is wider than this (the visits' skin masks differ by a
#: pixel or two along every boundary: that is not a cover)
_COVERED_MIN_MM = 2.5
#: ... and where the follow-up looks different from the baseline: its brightness (relative to the skin's)
#: changed by more than this (log ratio; exposure is divided out, a fold or a shadow changes it less) or its
#: chromaticity by more than this (a cap, a scarf, hair of another hue)
_COVERED_LOG_LUMINANCE = 0.3
_COVERED_CHROMA = 0.03
#: ... or its fine texture (detail finer than ``_COVERED_TEXTURE_MM``, relative to the brightness) grew by
#: more than this log ratio: hair of the skin's own colour is strands, skin is smooth at that scale
_COVERED_LOG_TEXTURE = 1.0
_COVERED_TEXTURE_MM = 0.3


@dataclass
class PhotoAnalysis:
    """Result of :func:`analyze_photo`.

    Attributes
    ----------
    source : str
        Path of the photo, or ``<array>``.
    qc : QCReport
    regions : pandas.DataFrame
        One row per region: ``region`` and :data:`METRIC_COLUMNS` (NaN where not measurable; lift columns
        NaN without a baseline). ``skin_fraction`` is the fraction of the region's polygon that is
        measurable skin.
    overlays : dict of str to (M, N, 3) uint8 ndarray
        At the analysis resolution: ``wrinkles`` (skin tinted, regions outlined, detected lines in red) and,
        with a baseline, ``displacement`` (flow arrows, magnified) and ``ghost`` (baseline blended with the
        follow-up warped onto it).
    calibration : Calibration or None
    registration : Registration or None
    face : FaceGeometry or None
        The face in original photo coordinates.
    landmark_metrics : dict
        Brow height, jawline angle … from the mesh.
    region_masks : dict of str to (M, N) bool ndarray
        With ``keep_masks=True``: the pixels each region was measured on (analysis grid of the baseline for
        a follow-up, else of the photo); :attr:`grid_matrix` maps that grid's photo's pixels onto it.
    grid_matrix : (2, 3) ndarray or None
        Affine from the pixels of the photo whose grid the masks are on to the analysis grid.
    algorithm_version : str
    """

    source: str
    qc: QCReport
    regions: pd.DataFrame
    overlays: dict[str, np.ndarray] = field(default_factory=dict)
    calibration: Calibration | None = None
    registration: Registration | None = None
    face: FaceGeometry | None = None
    landmark_metrics: dict[str, float] = field(default_factory=dict)
    baseline_source: str | None = None
    region_masks: dict[str, np.ndarray] = field(default_factory=dict)
    grid_matrix: np.ndarray | None = None
    algorithm_version: str = ALGORITHM_VERSION

    def to_frame(self) -> pd.DataFrame:
        """The region table with photo-level columns (source, QC, calibration, registration, version)."""
        df = self.regions.copy()
        df.insert(0, "source", self.source)
        df["baseline_source"] = self.baseline_source
        df["qc_passed"] = self.qc.passed
        df["qc_reasons"] = "; ".join(self.qc.reasons)
        df["qc_flags"] = "; ".join(self.qc.flags)
        df["mm_per_px"] = self.calibration.mm_per_px if self.calibration else float("nan")
        df["calibration_source"] = self.calibration.source if self.calibration else None
        df["registration_residual_mm"] = self.registration.residual_mm if self.registration else float("nan")
        df["algorithm_version"] = self.algorithm_version
        return df


def _empty_regions(names: Sequence[str]) -> pd.DataFrame:
    df = pd.DataFrame({"region": list(names)})
    for col in METRIC_COLUMNS:
        df[col] = float("nan")
    return df


@dataclass
class _Prepared:
    rgb: np.ndarray  # analysis crop, colour-normalised
    gray: np.ndarray  # luminance of rgb, uint8
    face: FaceGeometry  # in crop coordinates (with its mesh)
    face_original: FaceGeometry
    matrix: np.ndarray  # 2×3: original photo pixels -> analysis crop pixels
    mm_per_px: float  # millimetres per analysis px
    source_mm_per_px: float  # millimetres per pixel of the photo itself
    calibration: Calibration
    skin: SkinSegmentation
    clipped: np.ndarray  # clipped_channels() of the crop before colour normalisation
    state: face_qc.FaceState
    spectacles: bool
    polygons: dict[str, np.ndarray]  # every region and reference polygon, crop pixels
    frame_shape: tuple[int, int] = (0, 0)  # (height, width) of the whole photo, upright
    jpeg_quality: int | None = None  # of a JPEG file (IJG-equivalent), None for other files and arrays
    texture_level: float | None = None  # skin_texture_level of its own wrinkle map, once computed
    channel_gains: tuple[float, float, float] | None = None  # of its own wrinkle map, with texture_level
    _masks: dict[str, np.ndarray] | None = None
    _derived: dict[tuple, object] = field(default_factory=dict)

    def polygon_masks(self) -> dict[str, np.ndarray]:
        """Masks of :attr:`polygons` on this crop, made once (a cached baseline serves many follow-ups;
        callers must not change them in place)."""
        if self._masks is None:
            self._masks = polygon_masks(self.gray.shape, self.polygons)
        return self._masks

    def derived(self, key: tuple, make):
        """``make()``, made once per key: masks and counts a cached baseline gives every follow-up alike
        (callers must not change them in place)."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]


def _source_name(image: object) -> str:
    return str(image) if isinstance(image, str | Path) else "<array>"


def _check_face(qc: QCReport, face: FaceGeometry, shape: tuple[int, ...], prefix: str,
                thresholds: QCThresholds, role: str) -> face_qc.FaceState:
    state = face_qc.face_state(face.mesh, shape)
    if role == "photo":
        qc.metrics.update({f"face_{k}": v for k, v in state.as_metrics().items()})
        qc.metrics["yaw_index"] = state.yaw_index
        qc.metrics["roll_deg"] = face.roll_deg
        qc.metrics["inter_ocular_px"] = face.inter_ocular_px
    if state.outside_fraction > thresholds.max_outside_fraction:
        qc.fail(f"{prefix}partial_face", f"{prefix}partial face: {100 * state.outside_fraction:.0f} % of the face "
                "lies outside the photo; the whole face must be in the frame")
    if abs(state.yaw_index) > thresholds.profile_yaw_index:
        qc.fail(f"{prefix}profile_view", f"{prefix}profile view (yaw index {state.yaw_index:+.2f}): a frontal "
                "photo is required")
    elif role == "photo" and abs(state.yaw_index) > thresholds.max_yaw_index:
        qc.fail("not_frontal", f"head turned (yaw index {state.yaw_index:+.2f}, limit ±{thresholds.max_yaw_index})")
    closed = [s for s, v in (("right", state.eye_openness_r), ("left", state.eye_openness_l)) if v < thresholds.min_eye_openness]
    if closed:
        qc.fail(f"{prefix}eyes_closed", f"{prefix}{' and '.join(closed)} eye{'s' if len(closed) > 1 else ''} closed "
                f"(lid opening {min(state.eye_openness_r, state.eye_openness_l):.2f} of the eye's width, limit "
                f"{thresholds.min_eye_openness}); eyes closed change the wrinkles around them")
    if state.mouth_openness > thresholds.max_mouth_openness:
        qc.fail(f"{prefix}mouth_open", f"{prefix}mouth open (gap {state.mouth_openness:.2f} of its width, limit "
                f"{thresholds.max_mouth_openness}); a relaxed, closed mouth is required")
    if role == "photo" and state.smile_index > thresholds.smile_index:
        qc.flag("smile", f"smiling (mouth corners raised {state.smile_index:.2f} of the mouth's width): a smile "
                "deepens crow's feet and nasolabial folds; compare only with photos of the same expression",
                fail_on=thresholds.fail_on_flags)
    return state


def _orientation_problem(rgb: np.ndarray, face: FaceGeometry, blazeface: bool) -> str | None:
    """Why the photo is not upright, or None.

    Sideways: the eye line lies more than ``_MAX_FRAME_ROLL_DEG`` from the frame's horizontal (the detector and
    the mesh follow a face at any roll, so a sideways photo would be measured, with the lift read across the
    face). Upside down: the mesh model is unsure of its crop (presence below ``_UPRIGHT_PRESENCE``; an upright
    face reads 0.999999 or more) and BlazeFace finds the face far more surely with the photo turned 180°.
    """
    (xr, yr), (xl, yl) = face.eye_right, face.eye_left
    roll = math.degrees(math.atan2(yl - yr, xl - xr))
    if abs(roll) > _MAX_FRAME_ROLL_DEG:
        way = "upside down" if abs(roll) > 135 else ("turned a quarter clockwise" if roll > 0 else
                                                       "turned a quarter anticlockwise")
        return f"the photo is {way} (the eye line lies {roll:+.0f}° from the frame's horizontal)"
    if not blazeface or not face.presence < _UPRIGHT_PRESENCE:
        return None
    from toolkit.imaging.facemesh import detect_faces

    k = min(1.0, 512 / max(rgb.shape[:2]))
    small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else rgb
    as_is = max((d.score for d in detect_faces(small)), default=0.0)
    turned = max((d.score for d in detect_faces(cv2.rotate(small, cv2.ROTATE_180))), default=0.0)
    if turned >= _UPRIGHT_SCORE and turned > as_is + 0.1:
        return (f"the photo is upside down (a face is found with score {turned:.2f} when it is turned 180°, "
                f"{as_is:.2f} as it is)")
    return None


def _face_colours(rgb: np.ndarray, box: tuple[float, float, float, float],
                  samples: int = 16384) -> tuple[int, np.ndarray]:
    """Distinct RGB colours in the face's box, on a regular subsample of at most ``samples`` pixels (returned
    too, as an image)."""
    x, y, w, h = (int(round(v)) for v in box)
    sub = rgb[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]
    step = max(1, math.ceil(math.sqrt(sub.shape[0] * sub.shape[1] / samples)))
    sub = sub[::step, ::step]
    px = sub.reshape(-1, 3).astype(np.uint32)
    return int(np.unique((px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]).size), sub


def _crop_matrix(face: FaceGeometry, shape: tuple[int, ...], source_mm: float,
                 analysis_mm: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine (original -> crop) and crop size: the mesh's box plus a margin, at ``analysis_mm`` per pixel."""
    k = source_mm / analysis_mm
    pts = face.mesh[:, :2]
    margin = _CROP_MARGIN_MM / source_mm
    x0 = max(0.0, float(pts[:, 0].min()) - margin)
    y0 = max(0.0, float(pts[:, 1].min()) - margin)
    x1 = min(float(shape[1]), float(pts[:, 0].max()) + margin)
    y1 = min(float(shape[0]), float(pts[:, 1].max()) + margin)
    size = (max(16, int(math.ceil((x1 - x0) * k))), max(16, int(math.ceil((y1 - y0) * k))))
    return np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]]), size


def _resample(rgb: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The analysis crop, and the affine (original -> crop) it was made with.

    Reducing, the crop's source rectangle is area-averaged (INTER_AREA: no aliasing) and the crop taken from
    the reduced image at whole pixels. Placed at ``matrix``'s fraction of a pixel instead, every pixel would be
    interpolated once more, and a linear interpolation half a pixel off halves the contrast of the finest
    lines: by a different amount in each photo, as its face falls on the pixel grid (a follow-up shifted by a
    hundredth of a millimetre read up to 2 % less depth in every region than its baseline, and re-captures of
    one face repeated a third worse). The crop sits within half a pixel of ``matrix``'s placement and its scale
    is that of the reduced size's rounding (a few parts in ten thousand); the returned matrix says exactly where.
    Enlarging, the crop is interpolated (cubic).
    """
    k = float(matrix[0, 0])
    if k >= 1.0:
        return cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT), matrix
    x0, y0 = -matrix[0, 2] / k, -matrix[1, 2] / k
    xa, ya = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    xb = min(rgb.shape[1], int(math.ceil(x0 + size[0] / k)) + 1)
    yb = min(rgb.shape[0], int(math.ceil(y0 + size[1] / k)) + 1)
    sub = rgb[ya:yb, xa:xb]
    small = cv2.resize(sub, (max(1, round(sub.shape[1] * k)), max(1, round(sub.shape[0] * k))),
                       interpolation=cv2.INTER_AREA)
    # reduced pixel u lies at original xa + u / kx; the crop starts at the whole reduced pixel nearest x0
    kx, ky = small.shape[1] / sub.shape[1], small.shape[0] / sub.shape[0]
    off_x, off_y = max(0, round(kx * (x0 - xa))), max(0, round(ky * (y0 - ya)))
    crop = small[off_y:off_y + size[1], off_x:off_x + size[0]]
    short_y, short_x = size[1] - crop.shape[0], size[0] - crop.shape[1]
    if short_y > 0 or short_x > 0:
        # the photo ends before the crop does (a face at the frame's edge): mirrored, as the interpolation did
        crop = cv2.copyMakeBorder(np.ascontiguousarray(crop), 0, max(short_y, 0), 0, max(short_x, 0),
                                  cv2.BORDER_REFLECT)
    return np.ascontiguousarray(crop), np.array([[kx, 0.0, -kx * xa - off_x], [0.0, ky, -ky * ya - off_y]])


def _prepare(
    image: str | Path | np.ndarray,
    qc: QCReport,
    *,
    role: str,
    mm_per_px: float | None,
    backend: LandmarkBackend,
    template: RoiTemplate,
    thresholds: QCThresholds,
    marker_side_mm: float | None,
    marker_dictionary: str,
    analysis_mm_per_px: float,
    skin_params: SkinParams,
) -> _Prepared | None:
    prefix = "" if role == "photo" else "baseline: "
    jpeg_q = None
    try:
        if isinstance(image, str | Path):
            rgb, header = load_photo(image)
            jpeg_q = header.jpeg_quality
        else:
            rgb = as_rgb_array(image)
    except PhotoRejected as exc:
        qc.fail(f"{prefix}{exc.reason}", f"{prefix}{exc.message}")
        return None
    if role == "photo" and jpeg_q is not None:
        qc.metrics["jpeg_quality"] = jpeg_q
        if jpeg_q < thresholds.min_jpeg_quality_measured:
            qc.fail("jpeg_quality", f"JPEG compression too strong to measure lines on (quality {jpeg_q}, limit "
                    f"{thresholds.min_jpeg_quality_measured}): its blocks read as lines or smooth them away; save the "
                    "camera's original file at its highest quality (not a copy sent through a messaging app)")
        elif jpeg_q < thresholds.min_jpeg_quality:
            qc.flag("jpeg_quality", f"strong JPEG compression (quality {jpeg_q}, limit {thresholds.min_jpeg_quality}): "
                    "it smooths fine lines and adds block texture; save photos at the camera's highest quality",
                    fail_on=thresholds.fail_on_flags)
    search = backend.detect(rgb)
    if not search.faces:
        if search.profile_seen:
            qc.fail(f"{prefix}profile_view", f"{prefix}profile view: a frontal photo is required")
        else:
            qc.fail(f"{prefix}no_face", f"{prefix}no face found")
        return None
    if len(search.faces) > 1:
        qc.fail(f"{prefix}multiple_faces", f"{prefix}{len(search.faces)} faces found; exactly one is required")
        return None
    face = search.faces[0]
    if face.mesh is None:
        qc.fail(f"{prefix}no_landmarks", f"{prefix}the face backend {getattr(backend, 'name', backend)!r} gives no "
                "face mesh; regions are placed on mesh vertices (use the default FaceMeshBackend)")
        return None
    if search.ignored_detections:
        qc.notes.append(f"{prefix}{search.ignored_detections} unconfirmed face detection(s) ignored")
    turned = _orientation_problem(rgb, face, isinstance(backend, FaceMeshBackend))
    if turned:
        qc.fail(f"{prefix}orientation", f"{prefix}{turned}: the camera's orientation tag was lost, ignored or applied "
                "twice; save the photo upright (the regions' sides and the lift's direction follow the frame)")
        return None
    state = _check_face(qc, face, rgb.shape, prefix, thresholds, role)
    if any(c.endswith(("partial_face", "profile_view")) for c in qc.codes):
        return None
    colours, face_px = _face_colours(rgb, face.box)
    # a grayscale image has as few colours, and is told so below
    if colours < _MIN_FACE_COLOURS and colour_spread(face_px) >= _MIN_COLOUR_SPREAD:
        qc.fail(f"{prefix}palette", f"{prefix}the face shows only {colours} distinct colours (a photo shows thousands, "
                f"limit {_MIN_FACE_COLOURS}): the image was reduced to a palette (a GIF or PNG-8 export) or toned "
                "from a monochrome one (sepia), and saved in full colour again; the quantisation draws false texture "
                "and colour steps across the skin, which read as wrinkles; use the camera's original colour file")
        return None

    # calibration in original pixels
    if mm_per_px is not None:
        cal = Calibration(float(mm_per_px), "user")
    else:
        marker = detect_scale_marker(rgb, dictionary=marker_dictionary) if marker_side_mm else None
        if marker is not None:
            cal = Calibration(float(marker_side_mm) / marker.side_px, "marker", marker)
        else:
            if role == "photo" and thresholds.require_marker:
                qc.fail("no_marker", "scale marker required but not found")
            cal = Calibration(MEAN_INTER_OCULAR_MM / max(face.inter_ocular_px, 1.0), "inter_ocular_estimate")

    matrix, size = _crop_matrix(face, rgb.shape, cal.mm_per_px, analysis_mm_per_px)
    crop, matrix = _resample(rgb, matrix, size)
    spread = colour_spread(crop)
    if role == "photo":
        qc.metrics["colour_spread"] = spread
    if spread < _MIN_COLOUR_SPREAD:
        qc.fail(f"{prefix}grayscale", f"{prefix}grayscale image stored as colour (its channels differ by "
                f"{spread:.0f} levels or less over 95 % of the face; a colour photo's by tens): a colour photo is required, skin is "
                "told from hair, headwear, lips and background by its colour; take and export photos in colour")
        return None
    face_crop = face.transformed(matrix)
    polygons = region_polygons(face_crop.mesh, template, template.all_names)
    skin = segment_skin(crop, face_crop.mesh[:, :2], analysis_mm_per_px,
                        sample_polygons=[polygons[n] for n in template.skin_sample], params=skin_params)
    if not skin.model_ok:
        qc.notes.append(f"{prefix}skin colour model not fitted (too few cheek or surrounding pixels); the mesh "
                        "alone decided where the skin is")
    if role == "photo":
        fx, fy, fw, fh = (int(round(v)) for v in face.box)
        face_gray = cv2.cvtColor(rgb[max(0, fy):fy + fh, max(0, fx):fx + fw], cv2.COLOR_RGB2GRAY)
        blur = blur_score(face_gray)
        dark, bright = clipping_fraction(crop, skin.skin)
        qc.metrics.update(blur_score=blur, clipped_dark=dark, clipped_bright=bright, mm_per_px=cal.mm_per_px,
                          calibration_source=cal.source, skin_fraction_of_face=skin.skin_fraction_of_oval)
        if blur < thresholds.min_blur_score:
            qc.fail("blur", f"blurred: Laplacian variance {blur:.1f} on the normalised face crop < {thresholds.min_blur_score}")
        if not (dark + bright <= thresholds.max_clipped_fraction):
            qc.fail("exposure", f"exposure clipping on {100 * (dark + bright):.1f} % of skin pixels "
                    f"(limit {100 * thresholds.max_clipped_fraction:.1f} %)")
    cheeks = np.zeros(skin.skin.shape, dtype=bool)
    for poly in polygon_masks(skin.skin.shape, {n: polygons[n] for n in template.skin_sample}).values():
        cheeks |= poly
    wear = face_qc.eyewear(crop, face_crop.mesh, analysis_mm_per_px, cheeks & skin.skin)
    if role == "photo":
        qc.metrics.update(periorbital_brightness=wear.periorbital_brightness,
                          bridge_edge_fraction=wear.bridge_edge_fraction, rim_edge_fraction=wear.rim_edge_fraction,
                          iris_contrast=wear.iris_contrast)
    if (not wear.sunglasses and wear.iris_contrast < thresholds.min_iris_contrast
            and not any(c.endswith("eyes_closed") for c in qc.codes)):
        # a photo out of focus blurs the iris into the eye's white as well (the astronaut at 1x, defocused by
        # 1.5 px: iris contrast below the limit, the blur check still passing); the reason names both
        qc.fail(f"{prefix}eyes_closed", f"{prefix}eyes closed: no iris visible (iris contrast {wear.iris_contrast:.2f}, "
                f"limit {thresholds.min_iris_contrast}); eyes closed change the wrinkles around them (if the eyes "
                "were open, the photo is out of focus: retake it sharp)")
    if wear.sunglasses:
        qc.fail(f"{prefix}sunglasses", f"{prefix}sunglasses (the skin around the eyes is "
                f"{100 * wear.periorbital_brightness:.0f} % as bright as the cheeks): the eye regions cannot be seen")
    elif wear.spectacles:
        if role == "photo":
            qc.flag("spectacles", "spectacles worn: skin behind the lenses and rims (around the eyes) is not "
                    "measured; photograph without them", fail_on=thresholds.fail_on_flags)
        # skin behind a lens is magnified and tinted and the rims draw lines across it: not measured
        skin.exclude_from_measurable(lambda: face_qc.lens_zone(crop.shape, face_crop.mesh, analysis_mm_per_px))
    # which channels the camera clipped, before colour normalisation moves the clipped level off 255
    clipped = clipped_channels(crop)
    normalised = gray_world(crop, skin.skin)
    gray = cv2.cvtColor(normalised, cv2.COLOR_RGB2GRAY)
    return _Prepared(rgb=normalised, gray=gray, face=face_crop, face_original=face, matrix=matrix,
                     mm_per_px=analysis_mm_per_px, source_mm_per_px=cal.mm_per_px, calibration=cal, skin=skin,
                     clipped=clipped, state=state, spectacles=wear.spectacles, polygons=polygons,
                     frame_shape=(int(rgb.shape[0]), int(rgb.shape[1])), jpeg_quality=jpeg_q)


#: prepared baselines of this process, most recent last (a subject's follow-ups share one baseline)
_BASELINE_CACHE: OrderedDict[tuple, tuple[_Prepared | None, tuple[str, ...]]] = OrderedDict()
_BASELINE_CACHE_SIZE = 8


def _template_key(template: RoiTemplate) -> tuple:
    digest = hashlib.sha1()
    for name in template.all_names:
        digest.update(name.encode())
        digest.update(repr(template.polygon(name)).encode())
    return (template.source, tuple(template.lift_reference), tuple(template.skin_sample),
            template.min_skin_fraction, digest.hexdigest())


def _prepare_baseline(baseline: str | Path | np.ndarray, *, default_backend: bool, **common) -> tuple[_Prepared | None, tuple[str, ...]]:
    """:func:`_prepare` of a baseline, cached per process when it is a file analysed with the default
    face backend. The key holds the file's path, size and modification time and every setting that
    changes the result, so an edited file or other settings never reuse a stale preparation."""
    key = None
    if default_backend and isinstance(baseline, str | Path):
        try:
            st = Path(baseline).stat()
            key = (str(Path(baseline).resolve()), st.st_size, st.st_mtime_ns, _template_key(common["template"]),
                   common["thresholds"], common["marker_side_mm"], common["marker_dictionary"],
                   common["analysis_mm_per_px"], common["skin_params"])
        except OSError:
            key = None  # a missing file is reported by _prepare
    if key is not None and key in _BASELINE_CACHE:
        _BASELINE_CACHE.move_to_end(key)
        return _BASELINE_CACHE[key]
    base_qc = QCReport()
    prepared = _prepare(baseline, base_qc, role="baseline", mm_per_px=None, **common)
    out = (prepared, tuple(base_qc.reasons))
    if key is not None:
        _BASELINE_CACHE[key] = out
        while len(_BASELINE_CACHE) > _BASELINE_CACHE_SIZE:
            _BASELINE_CACHE.popitem(last=False)
    return out


def colour_spread(image: np.ndarray) -> float:
    """How much colour an RGB image has: the 95th percentile, over its pixels, of the largest difference
    between two of its channels (8-bit levels). 0 for a grayscale image stored as three channels."""
    a = np.asarray(image)[::3, ::3].astype(np.int16)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    worst = np.maximum(np.maximum(np.abs(r - g), np.abs(g - b)), np.abs(r - b))
    return float(np.percentile(worst, 95))


def _same_framing_resized(photo_shape: tuple[int, int], base_shape: tuple[int, int]) -> float | None:
    """How many times the baseline's pixels the photo has across the same frame, when the two frames differ in
    size but not in shape (aspect ratios within 0.5 %); None when they are the same size or shaped differently
    (a crop, another sensor), where pixels are compared as they are."""
    (hp, wp), (hb, wb) = photo_shape, base_shape
    if min(hp, wp, hb, wb) <= 0 or (hp, wp) == (hb, wb):
        return None
    if abs((wp / hp) / (wb / hb) - 1.0) > 0.005:
        return None
    return math.sqrt((wp * hp) / (wb * hb))


def _band(gray: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Detail between the two scales of _MIRROR_BAND_MM (a difference of Gaussians): features and lines, no shading."""
    g = gray.astype(np.float32)
    fine, coarse = (s / mm_per_px for s in _MIRROR_BAND_MM)
    return cv2.GaussianBlur(g, (0, 0), fine) - cv2.GaussianBlur(g, (0, 0), coarse)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else 0.0


def _check_mirrored(qc: QCReport, photo: _Prepared, base: _Prepared) -> None:
    """Fail a follow-up that is a mirror image of its baseline (left and right swapped).

    A front camera's selfie view or an editor's flip saves a face mirrored. The mesh then names the subject's
    right side on the image's left as usual, so every left and right region, and the side a split-face study
    treated, would be swapped without any other sign: a face is nearly symmetric. Its details are not (moles,
    lines, the hair's parting, the light): the follow-up is aligned on the baseline twice, as it is (each mesh
    vertex onto the same vertex) and flipped (onto the mirror vertex), and its detail compared with the
    baseline's. A baseline that is itself mirrored is found the same way; a whole series saved mirrored is not.
    """
    k = base.mm_per_px / _MIRROR_MM

    def small(gray: np.ndarray) -> np.ndarray:
        return cv2.resize(gray, (max(1, round(gray.shape[1] * k)), max(1, round(gray.shape[0] * k))),
                          interpolation=cv2.INTER_AREA)

    def reference() -> tuple[np.ndarray, np.ndarray]:
        band = _band(small(base.gray), _MIRROR_MM)
        oval = cv2.resize(base.skin.oval.astype(np.uint8), (band.shape[1], band.shape[0]),
                          interpolation=cv2.INTER_NEAREST)
        inner = cv2.erode(oval, np.ones((3, 3), np.uint8), iterations=max(1, round(2.0 / _MIRROR_MM))) > 0
        return band, inner

    base_band, inner = base.derived(("mirror_reference",), reference)
    if inner.sum() < 100:
        return
    # the detail is taken once on the follow-up's own grid and carried by each alignment (a similarity of
    # nearly unit scale moves it without changing its band)
    band = _band(small(photo.gray), _MIRROR_MM)
    mesh_p = photo.face.mesh[:, :2].astype(np.float64) * k
    mesh_b = base.face.mesh[:, :2].astype(np.float64) * k
    flipped = mesh_p.copy()
    flipped[:, 0] = band.shape[1] - 1 - flipped[:, 0]
    size = (base_band.shape[1], base_band.shape[0])
    ref = base_band[inner]
    matches = []
    for image, matrix in ((band, fit_similarity(mesh_b, mesh_p)),
                          (np.ascontiguousarray(band[:, ::-1]), fit_similarity(mesh_b[list(topo.MIRROR)], flipped))):
        aligned = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REFLECT)
        matches.append(_correlation(aligned[inner], ref))
    as_is, mirrored = matches
    qc.metrics.update(baseline_match=as_is, baseline_match_mirrored=mirrored)
    if mirrored > as_is + _MIRROR_MARGIN:
        qc.fail("mirrored", f"the photo is a mirror image of its baseline: flipped left to right it matches the "
                f"baseline (correlation {mirrored:.2f}) better than as it is ({as_is:.2f}). A front camera's selfie "
                "view or an editor saved one of the two mirrored, which would swap every left and right region "
                "(and a split-face study's sides); save both as the camera sees the face")


def _check_against_baseline(qc: QCReport, registration: Registration, photo: _Prepared, base: _Prepared,
                            thresholds: QCThresholds, covered: bool = False,
                            lower_lift_mm: float = float("nan")) -> None:
    """Pose, scale, expression and identity against the baseline (``covered``: some of the baseline's skin
    is hidden at this visit, see :func:`_covered_at_visit`; ``lower_lift_mm``: the median lift of the regions
    outside the stable reference)."""
    droll = registration.rotation_deg
    # the face's size in the follow-up's own pixels over its size in the baseline's: the registration's
    # scale (crop pixels per crop pixel) times the two crops' resampling factors
    dscale = registration.scale * base.matrix[0, 0] / photo.matrix[0, 0] - 1.0
    resized = _same_framing_resized(photo.frame_shape, base.frame_shape)
    if resized is not None:
        # the same frame at another pixel count (the camera's image-size setting, another body of the same
        # kind): what the distance or zoom changed is the face's size relative to the frame
        dscale = (1.0 + dscale) / resized - 1.0
        if abs(resized - 1.0) > _RESOLUTION_CHANGE:
            qc.flag("resolution_change", f"the photo has {resized:.2f}× the baseline's pixels across the same frame "
                    f"({photo.frame_shape[1]}×{photo.frame_shape[0]} against {base.frame_shape[1]}×{base.frame_shape[0]}"
                    "): fine lines are resolved differently and the wrinkle measures shift by several per cent; keep "
                    "the camera's image size between visits", fail_on=thresholds.fail_on_flags)
    qc.metrics.update(roll_change_deg=droll, scale_change=dscale)
    if abs(droll) > thresholds.max_roll_deg:
        qc.fail("pose", f"head roll differs from baseline by {droll:+.1f}° (limit ±{thresholds.max_roll_deg}°)")
    if abs(dscale) > thresholds.max_scale_change:
        qc.fail("scale", f"face size differs from baseline by {100 * dscale:+.1f} % "
                f"(limit ±{100 * thresholds.max_scale_change:.0f} %)")
    if photo.jpeg_quality is not None and base.jpeg_quality is not None:
        dq = photo.jpeg_quality - base.jpeg_quality
        if abs(dq) > thresholds.max_jpeg_quality_change:
            qc.flag("compression_change", f"JPEG compression differs from the baseline's (quality {photo.jpeg_quality} "
                    f"against {base.jpeg_quality}, limit ±{thresholds.max_jpeg_quality_change}): wrinkle measures shift "
                    "with compression; keep the camera's settings between visits", fail_on=thresholds.fail_on_flags)
    mesh_f, mesh_b = photo.face_original.mesh, base.face_original.mesh
    if mesh_f is not None and mesh_b is not None and mesh_f.shape[1] >= 3 and mesh_b.shape[1] >= 3:
        dpitch = face_qc.head_rotation(mesh_b, mesh_f)[0]
        qc.metrics["pitch_change_deg"] = dpitch
        # a nod moves the lower face the way its sign says (down tips it up in the photo); a true lift reads on
        # the mesh as a small nod the other way, so a large responder is not failed for the lift itself
        nod_like = not np.isfinite(lower_lift_mm) or dpitch * lower_lift_mm >= 0
        if abs(dpitch) > thresholds.max_pitch_change_deg and nod_like:
            moved = f" (the lower face moved {lower_lift_mm:+.1f} mm with it)" if np.isfinite(lower_lift_mm) else ""
            qc.fail("pose", f"head tipped {'down' if dpitch > 0 else 'up'} by {abs(dpitch):.1f}° against the baseline "
                    f"(limit ±{thresholds.max_pitch_change_deg}°){moved}: a nod moves the lower face in the photo and "
                    "reads as lift; align the head as at baseline (Frankfort plane level)")
    dyaw = photo.state.yaw_index - base.state.yaw_index
    qc.metrics["yaw_index_change"] = dyaw
    if abs(dyaw) > thresholds.max_yaw_index_change:
        qc.fail("pose", f"head turn differs from baseline (yaw index change {dyaw:+.2f}, "
                f"limit ±{thresholds.max_yaw_index_change})")
    dsmile = photo.state.smile_index - base.state.smile_index
    dmouth = photo.state.mouth_openness - base.state.mouth_openness
    qc.metrics.update(smile_index_change=dsmile, mouth_openness_change=dmouth)
    if max(abs(dsmile), abs(dmouth)) > thresholds.max_expression_change:
        qc.fail("expression", f"expression differs from baseline (smile index {dsmile:+.2f}, mouth opening "
                f"{dmouth:+.2f}; limit ±{thresholds.max_expression_change}): wrinkles change with expression")
    if not (registration.residual_mm <= thresholds.max_registration_residual_mm):
        why = ("; skin bare at baseline is hidden at this visit (hair or headwear over it, or the head turned) and "
               "moves the stable upper face with it: photograph the face uncovered and posed as at baseline"
               if covered else "")
        qc.fail("registration", f"registration to baseline failed: {registration.residual_mm:.2f} mm left on the "
                f"stable regions (limit {thresholds.max_registration_residual_mm} mm){why}")


def _resolve_template(regions: RoiTemplate | str | Path | Sequence[str] | None) -> tuple[RoiTemplate, tuple[str, ...]]:
    if isinstance(regions, RoiTemplate):
        return regions, tuple(regions.regions)
    if isinstance(regions, str | Path) and Path(regions).suffix.lower() in {".yaml", ".yml"}:
        t = load_roi_template(regions)
        return t, tuple(t.regions)
    t = load_roi_template()
    if regions is None:
        return t, REGION_NAMES
    names = (regions,) if isinstance(regions, str) else tuple(regions)
    unknown = [n for n in names if n not in t.regions]
    if unknown:
        from toolkit.errors import ConfigurationError

        raise ConfigurationError(f"unknown region(s) {', '.join(unknown)}; accepted: {', '.join(t.regions)}")
    return t, names


def _register(photo: _Prepared, base: _Prepared, stable: np.ndarray,
              start: np.ndarray) -> tuple[Registration, np.ndarray]:
    """Register the follow-up onto the baseline, matching densely at the flow resolution.

    The similarity is refined on copies at the pixel size the photos actually resolve (see
    :func:`_displacement`), then expressed on the analysis grid, where the follow-up is resampled once.
    """
    flow_mm = max(_FLOW_MM_PER_PX, base.source_mm_per_px, photo.source_mm_per_px)
    k = min(1.0, base.mm_per_px / flow_mm)
    size = (base.gray.shape[1], base.gray.shape[0])
    if k >= 0.99:
        return register_to_baseline(photo.gray, base.gray, photo.face, base.face, stable, start=start)

    def small(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (max(16, round(img.shape[1] * k)), max(16, round(img.shape[0] * k))),
                          interpolation=cv2.INTER_AREA)

    sb, sf = small(base.gray), small(photo.gray)
    kb = np.array([sb.shape[1] / base.gray.shape[1], sb.shape[0] / base.gray.shape[0]])
    kf = np.array([sf.shape[1] / photo.gray.shape[1], sf.shape[0] / photo.gray.shape[0]])
    stable_s = cv2.resize(stable.astype(np.uint8), (sb.shape[1], sb.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    # the start in small coordinates: x_f_small = Kf · M · Kb⁻¹ · x_b_small
    start_s = np.hstack([np.diag(kf) @ start[:, :2] @ np.diag(1 / kb), (kf * start[:, 2])[:, None]])
    reg_s, _ = register_to_baseline(sf, sb, photo.face, base.face, stable_s, start=start_s)
    m = np.hstack([np.diag(1 / kf) @ reg_s.matrix[:, :2] @ np.diag(kb), (reg_s.matrix[:, 2] / kf)[:, None]])
    registered = cv2.warpAffine(photo.gray, m.astype(np.float32), size, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
    a = m[:, :2]
    reg = Registration(matrix=m, method=reg_s.method, ecc_correlation=reg_s.ecc_correlation,
                       scale=math.sqrt(abs(np.linalg.det(a))), rotation_deg=math.degrees(math.atan2(a[1, 0], a[0, 0])))
    return reg, registered


def _displacement(base_gray: np.ndarray, follow_gray: np.ndarray, mm_per_px: float,
                  source_mm_per_px: float, window: tuple[slice, slice] | None = None) -> np.ndarray:
    """Dense displacement baseline → registered follow-up (baseline pixels).

    Matched at ``_FLOW_MM_PER_PX``, or at the photos' own pixel size when that is coarser: an enlarged
    photo has no texture finer than its pixels, and patches matched on smooth, enlarged texture drift.
    With ``window`` (slices of the baseline grid) only that part is matched; the field is zero elsewhere.
    """
    flow_mm = max(_FLOW_MM_PER_PX, source_mm_per_px)
    k = min(1.0, mm_per_px / flow_mm)
    if k >= 0.99:
        return displacement_field(base_gray, follow_gray, finest_level=0, normalise_px=max(3.0, 2.0 / mm_per_px),
                                  window=window)
    size = (max(16, round(base_gray.shape[1] * k)), max(16, round(base_gray.shape[0] * k)))
    b = cv2.resize(base_gray, size, interpolation=cv2.INTER_AREA)
    f = cv2.resize(follow_gray, size, interpolation=cv2.INTER_AREA)
    if window is not None:
        ky, kx = size[1] / base_gray.shape[0], size[0] / base_gray.shape[1]
        window = (slice(int(window[0].start * ky), min(size[1], math.ceil(window[0].stop * ky))),
                  slice(int(window[1].start * kx), min(size[0], math.ceil(window[1].stop * kx))))
    coarse = displacement_field(b, f, finest_level=0, normalise_px=max(3.0, 2.0 / flow_mm), window=window)
    # back to the full grid: positions map by the pixel-centre convention, vectors scale by 1/k
    full = cv2.resize(coarse, (base_gray.shape[1], base_gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    full[..., 0] *= base_gray.shape[1] / size[0]
    full[..., 1] *= base_gray.shape[0] / size[1]
    return full


def _cells(mask: np.ndarray, cell_px: int) -> tuple[np.ndarray, np.ndarray]:
    """For :func:`_robust_smooth`: which cells of ``cell_px`` hold enough of ``mask`` (a quarter), and
    those cells' mask pixels, one row per cell."""
    h, w = mask.shape
    gh, gw = -(-h // cell_px), -(-w // cell_px)
    pad = ((0, gh * cell_px - h), (0, gw * cell_px - w))
    m = np.pad(mask, pad).reshape(gh, cell_px, gw, cell_px).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    enough = m.mean(axis=2) >= 0.25
    return enough, m[enough]


def _robust_smooth(field_: np.ndarray, mask: np.ndarray, cell_px: int,
                   cells: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A smooth version of a (H, W, 2) field: the median of each cell's ``mask`` pixels, interpolated.

    Cells with too few mask pixels take the median of their neighbours; the cell grid is interpolated
    back bicubically (pixel-centre convention). ``cells`` is :func:`_cells` of the mask, when made before.
    """
    h, w = mask.shape
    gh, gw = -(-h // cell_px), -(-w // cell_px)
    pad = ((0, gh * cell_px - h), (0, gw * cell_px - w))
    out = np.empty((gh, gw, 2), dtype=np.float32)
    enough, m_enough = cells if cells is not None else _cells(mask, cell_px)
    for c in range(2):
        v = np.pad(field_[..., c].astype(np.float32), pad).reshape(gh, cell_px, gw, cell_px)
        v = v.transpose(0, 2, 1, 3)[enough].reshape(-1, cell_px * cell_px)
        med = np.full((gh, gw), np.nan, dtype=np.float32)
        med[enough] = _masked_median_rows(v, m_enough)
        # fill cells without enough skin from the cells around them (normalised convolution)
        known = np.isfinite(med)
        if not known.any():
            med = np.zeros_like(med)
        else:
            for _ in range(max(gh, gw)):
                if known.all():
                    break
                vals = cv2.blur(np.where(known, med, 0).astype(np.float32), (3, 3), borderType=cv2.BORDER_REPLICATE)
                wts = cv2.blur(known.astype(np.float32), (3, 3), borderType=cv2.BORDER_REPLICATE)
                grow_ = ~known & (wts > 0)
                med = np.where(grow_, vals / np.maximum(wts, 1e-6), med)
                known = known | grow_
        out[..., c] = cv2.GaussianBlur(med.astype(np.float32), (0, 0), 0.7)
    full = cv2.resize(out, (gw * cell_px, gh * cell_px), interpolation=cv2.INTER_CUBIC)
    return full[:h, :w]


def _outside_stable(stable: np.ndarray, feather_px: float) -> np.ndarray:
    """Weight of the warp field: 0 on the stable reference and at its edge, rising smoothly to 1 at
    ``feather_px`` away from it (float32, (H, W, 2): the same weight for both components of a field, so the
    field is weighed by one plain element-wise product)."""
    near = cv2.GaussianBlur(stable.astype(np.float32), (0, 0), feather_px / 2)
    weight = (1.0 - np.minimum(1.0, 2.0 * near)).astype(np.float32)
    return np.repeat(weight[..., None], 2, axis=2)


def _masked_median_rows(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The median of each row's ``mask`` elements (float32; NaN for a row without any), as ``np.median``
    gives it: the middle element, or the mean of the two middle ones."""
    n = values.shape[1]
    full = mask.all(axis=1) & np.isfinite(values).all(axis=1)
    lo = np.empty(len(values), dtype=np.float32)
    hi = np.empty(len(values), dtype=np.float32)
    count = np.full(len(values), n)
    if full.any():
        # rows whose every element counts: the two middle order statistics by partial sorting
        part = np.partition(values[full], [(n - 1) // 2, n // 2], axis=1)
        lo[full], hi[full] = part[:, (n - 1) // 2], part[:, n // 2]
    rest = ~full
    if rest.any():
        s = np.sort(np.where(mask[rest], values[rest], np.float32(np.nan)), axis=1)  # NaN sorts last
        c = np.isfinite(s).sum(axis=1)
        rows = np.arange(len(s))
        lo[rest] = s[rows, np.maximum(c - 1, 0) // 2]
        hi[rest] = s[rows, np.maximum(c, 1) // 2 - (c == 0)]
        count[rest] = c
    med = np.where(count % 2 == 1, lo, (lo + hi) / np.float32(2))
    return np.where(count > 0, med, np.float32(np.nan)).astype(np.float32)


def _fine_detail(frame: _Prepared, rgb: np.ndarray, exclude: np.ndarray, detail_mm: float) -> float:
    """Relative r.m.s. of the detail finer than ``detail_mm`` of ``rgb`` (on ``frame``'s grid) around the eyes and
    brows: the lashes, lids, iris and brow hairs, which no treatment of the skin changes but focus, camera
    sharpening and compression do. Pixels in ``exclude`` (clipped highlights) are left out. NaN without any."""
    mask = frame.derived(("eye_detail_mask",), lambda: _eye_detail_mask(frame))
    win = mask_window(mask, round(3 * detail_mm / frame.mm_per_px)) if mask.any() else None
    if win is None:
        return float("nan")
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[win]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = gray - cv2.GaussianBlur(gray, (0, 0), detail_mm / frame.mm_per_px)
    use = mask[win] & ~exclude[win]
    if not use.any():
        return float("nan")
    return float(np.sqrt(np.mean(detail[use] ** 2)) / max(float(np.mean(gray[use])), 1.0))


def _eye_detail_mask(frame: _Prepared) -> np.ndarray:
    return grown_loops(frame.gray.shape, frame.face.mesh[:, :2],
                       ((topo.EYE_R, 3.0), (topo.EYE_L, 3.0), (topo.BROW_R, 1.0), (topo.BROW_L, 1.0)),
                       1.0 / frame.mm_per_px)


def _beyond(ratio: float, limit: float) -> bool:
    """A follow-up-to-baseline ratio outside ±``limit``, symmetric in log (1.1 and 1/1.1 alike); NaN never is."""
    return math.isfinite(ratio) and abs(math.log(ratio)) > math.log1p(limit)


def _check_sharpness(qc: QCReport, photo: _Prepared, base: _Prepared, warped_rgb: np.ndarray,
                     warped_clipped: np.ndarray, covered: np.ndarray | None, thresholds: QCThresholds) -> None:
    """Flag a follow-up softer or sharper than its baseline (see ``QCThresholds.max_sharpness_change``), and fail
    it beyond ``max_sharpness_change_measured``; both are read on the baseline's grid, the follow-up warped onto
    it, at the finest detail both photos resolve, without what is covered at the visit (a fringe over the brows
    and its surroundings: hair is detail of its own)."""
    detail_mm = max(_DETAIL_MM, base.source_mm_per_px, photo.source_mm_per_px)
    clipped = (base.clipped > 0) | (warped_clipped > 0)
    if covered is None:
        before = base.derived(("fine_detail", detail_mm),
                              lambda: _fine_detail(base, base.rgb, base.clipped > 0, detail_mm))
    else:
        clipped |= grow(covered, _COVER_REACH_MM / base.mm_per_px)
        before = _fine_detail(base, base.rgb, clipped, detail_mm)
    ratio = _fine_detail(base, warped_rgb, clipped, detail_mm) / before if before > 0 else float("nan")
    qc.metrics["sharpness_ratio"] = ratio
    limit = thresholds.max_sharpness_change
    if not _beyond(ratio, limit):
        return
    what = (f"the follow-up is {100 * abs(ratio - 1):.0f} % {'softer' if ratio < 1 else 'sharper'} than its baseline "
            "(fine detail around the eyes")
    cure = "keep the focus and the camera's sharpening setting between visits"
    worst = thresholds.max_sharpness_change_measured
    # the wrinkle measures moved with the photo by more than a treatment's effect (read on a follow-up aligned
    # with its baseline: one whose registration failed is compared nowhere, and fails for that)
    if _beyond(ratio, worst) and "registration" not in qc.codes:
        qc.fail("sharpness_change", f"{what}, limit ±{100 * worst:.0f} %): its wrinkle measures cannot be compared "
                f"with the baseline's ({'fewer and shallower' if ratio < 1 else 'more and deeper'} lines read); "
                f"retake it, and {cure}{_soft_baseline_hint(ratio)}")
        return
    qc.flag("sharpness_change", f"{what}, limit ±{100 * limit:.0f} %): a softer photo reads as fewer and shallower "
            f"lines, a sharper one as more; {cure}", fail_on=thresholds.fail_on_flags)


def _check_skin_texture(qc: QCReport, level: float, base_level: float, thresholds: QCThresholds) -> None:
    """Flag a follow-up whose skin texture differs from its baseline's (see
    ``QCThresholds.max_skin_texture_change``): on re-captures of an unchanged face the ratio is 0.97-1.06, with
    every fold half as deep and a 2 mm lift 0.95-1.01, over the demo's 93 follow-ups (exposure ±10 % over the
    same sensor noise, treated folds) 0.92-1.10; a camera's skin smoothing gives 0.40-0.89."""
    ratio = level / base_level if base_level > 0 else float("nan")
    qc.metrics["skin_texture_ratio"] = ratio
    limit = thresholds.max_skin_texture_change
    if _beyond(ratio, limit):
        cause = ("a camera's skin-smoothing (beauty) mode, noise reduction or retouching, which reads as fewer and "
                 "shallower lines; switch it off" if ratio < 1 else
                 "sensor noise (high ISO, dim light), sharpening or compression, which reads as more lines; "
                 "keep the light and the camera's settings")
        qc.flag("skin_texture_change", f"the skin's fine texture is {100 * abs(ratio - 1):.0f} % "
                f"{'weaker' if ratio < 1 else 'stronger'} than at baseline (limit ±{100 * limit:.0f} %): {cause} "
                "between visits", fail_on=thresholds.fail_on_flags)
        sharp = qc.metrics.get("sharpness_ratio", math.nan)
        if (_beyond(sharp, thresholds.max_sharpness_change) and (sharp > 1) == (ratio > 1)
                and not {"sharpness_change", "registration"} & set(qc.codes)):
            # the eyes' detail and the skin's texture moved together: the focus or the sharpening changed, and
            # the wrinkle measures with it (Grace Hopper 1x sharpened: +15 % and +18 %, 24 % more wrinkle length)
            qc.fail("sharpness_change", f"the fine detail around the eyes ({100 * (sharp - 1):+.0f} %) and the "
                    f"skin's texture ({100 * (ratio - 1):+.0f} %) both changed from the baseline's: the focus or the "
                    f"sharpening changed, and the wrinkle measures read {'fewer' if ratio < 1 else 'more'} lines "
                    "with it; retake the photo, and keep the focus and the camera's settings between visits"
                    f"{_soft_baseline_hint(sharp)}")


def _soft_baseline_hint(ratio: float) -> str:
    """For a follow-up sharper than its baseline: the baseline may be the soft one (no retake of a follow-up
    mends that)."""
    return "" if ratio < 1 else ("; if every follow-up of this subject reads sharper, the baseline photo itself is "
                                 "out of focus")


def _lips_and_mouth_corners(frame: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    """The lips (analysis grid), and the mouth corners' surroundings (``_MOUTH_CORNER_MM``).

    A ridge running along the lips' outline within ``_LIP_REACH_MM`` of it is their border (the vermilion edge,
    the shadow under the lower lip), which the mesh places up to a millimetre or two inside, depending on how the
    face sits in the frame (see :func:`~toolkit.imaging.wrinkles.suppress_parallel`). Around the corners the
    nasolabial folds end and the marionette lines begin, and a shorter fold is shorter at that end: nothing
    there is taken for the lips' border.
    """
    mesh = frame.face.mesh[:, :2]
    shape = frame.gray.shape
    corners = np.zeros(shape, dtype=np.uint8)
    for v in _MOUTH_CORNERS:
        cv2.circle(corners, (round(mesh[v, 0]), round(mesh[v, 1])), round(_MOUTH_CORNER_MM / frame.mm_per_px), 1, -1)
    return fill_polygon(shape, mesh[list(topo.LIPS_OUTER)]), corners.astype(bool)


def _warp_onto_baseline(photo: _Prepared, matrix: np.ndarray, flow: np.ndarray,
                        size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The follow-up's analysis crop resampled so each baseline pixel x shows follow-up point S(x + flow(x)),
    with its clipped channels and its skin mask carried the same way."""
    h, w = size[1], size[0]
    qx = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    qy = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    m = matrix.astype(np.float32)
    # m00·qx + m01·qy + m02 (and the same for y), operation by operation in place: the same float32 results
    map_x = np.multiply(qx, m[0, 0])
    map_x += np.multiply(qy, m[0, 1])
    map_x += m[0, 2]
    map_y = np.multiply(qx, m[1, 0])
    map_y += np.multiply(qy, m[1, 1])
    map_y += m[1, 2]
    rgb = cv2.remap(photo.rgb, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    # what lies outside the follow-up's crop is not known to be skin
    skin = cv2.remap(photo.skin.skin.view(np.uint8), map_x, map_y, cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0).view(bool)
    if not photo.clipped.any():  # nothing clipped: nothing to carry over
        return rgb, np.zeros((h, w), dtype=photo.clipped.dtype), skin
    clipped = cv2.remap(photo.clipped, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    return rgb, clipped, skin


def _covered_at_visit(base: _Prepared, warped_rgb: np.ndarray, warped_skin: np.ndarray) -> np.ndarray | None:
    """Baseline skin that the follow-up (warped onto it) covers: hair, headwear or a hand over it since the
    baseline. Such skin is no longer skin by the follow-up's own skin model *and* looks different from the
    baseline (brightness, hue or fine texture, beyond what exposure and capture change): where the two visits'
    skin models merely disagree (along the hairline, at the temples) the skin looks the same in both. Only what
    is wider than ``_COVERED_MIN_MM`` counts, and it takes its own edge band with it (a new hairline is an edge,
    not a wrinkle). None when nothing is covered."""
    r = 0.5 * _COVERED_MIN_MM / base.mm_per_px

    def wide(mask: np.ndarray) -> np.ndarray:
        return grow(shrink(mask, r), r) & mask

    lost = base.skin.skin & ~warped_skin
    if not lost.any():
        return None
    lost = wide(lost)  # the two visits' masks differ along every boundary by a pixel or two: not a cover
    if not lost.any():
        return None
    win = mask_window(lost, round(4 * r))
    common = (base.skin.skin & warped_skin)[win]
    fine = max(0.7, _COVERED_TEXTURE_MM / base.mm_per_px)

    def look(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log-luminance relative to the common skin's median, chromaticity (r, g) and the log of the fine
        texture's amplitude relative to the luminance, smoothed."""
        f = rgb[win].astype(np.float32) + 1.0
        total = f.sum(axis=2)
        level = float(np.median(total[common])) if common.any() else float(np.median(total))
        sub = cv2.GaussianBlur(f, (0, 0), r)
        t = sub.sum(axis=2)
        detail = total - cv2.GaussianBlur(total, (0, 0), fine)
        texture = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), r)) / t
        return np.log(t / level), sub[..., :2] / t[..., None], np.log(texture + 1e-4)

    lum_b, chroma_b, tex_b = look(base.rgb)
    lum_f, chroma_f, tex_f = look(warped_rgb)
    changed = ((np.abs(lum_f - lum_b) > _COVERED_LOG_LUMINANCE)
               | (np.linalg.norm(chroma_f - chroma_b, axis=2) > _COVERED_CHROMA)
               | (tex_f - tex_b > _COVERED_LOG_TEXTURE))
    out = np.zeros_like(lost)
    out[win] = wide(lost[win] & changed)
    if not out.any():
        return None
    return grow(out, base.skin.edge_band_px) & base.skin.skin


_CHANNEL_NAMES = ("red", "green", "blue")


def _channel_clipped_change(visit: np.ndarray, baseline: np.ndarray, thresholds: QCThresholds) -> str | None:
    """For one region's pixels (clipped-channel bits at this visit and at baseline, at least one pixel): the
    channel whose clipped share differs most between the visits, described, when that share is large at either
    visit and differs by more than the limit; None otherwise."""
    worst, text = 0.0, None
    for c, name in enumerate(_CHANNEL_NAMES):
        now, then = float(((visit >> c) & 1).mean()), float(((baseline >> c) & 1).mean())
        change = abs(now - then)
        if (max(now, then) > thresholds.region_channel_clipped_fraction
                and change > thresholds.max_region_channel_clipped_change and change > worst):
            worst, text = change, f"{name} clipped on {100 * now:.0f} % of its skin, {100 * then:.0f} % at baseline"
    return text


def _overlay(rgb: np.ndarray, skin: np.ndarray, measurable: np.ndarray, polys: dict[str, np.ndarray],
             skeleton: np.ndarray, spots: Spots | None = None) -> np.ndarray:
    """Measured skin shown as is, non-skin dimmed and tinted blue, skin not measured (edge bands, lenses)
    tinted olive; regions outlined in yellow; wrinkles in red; spots left out of the wrinkles ringed in cyan."""
    out = rgb.copy()
    cv2.copyTo(_OVERLAY_OFF_SKIN(rgb), (~skin).view(np.uint8), out)
    cv2.copyTo(_OVERLAY_EDGE_BAND(rgb), (skin & ~measurable).view(np.uint8), out)
    for poly in polys.values():
        cv2.polylines(out, [np.round(poly * 4).astype(np.int32)], True, (255, 220, 0), 1, cv2.LINE_AA, shift=2)
    out[cv2.dilate(skeleton.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)] = (255, 30, 30)
    if spots is not None:
        for (x, y), r in zip(spots.xy, spots.radius_px, strict=True):
            cv2.circle(out, (int(round(x * 4)), int(round(y * 4))), int(round(max(3.0, 1.5 * r) * 4)), (0, 230, 255),
                       1, cv2.LINE_AA, shift=2)
    return out


def _tint(gain: float, offset_rgb: tuple[int, int, int]):
    """``rgb ↦ uint8(gain · rgb + offset)`` per channel, as a look-up table on every pixel."""
    levels = np.arange(256, dtype=np.float64)[:, None]
    lut = (gain * levels + np.array(offset_rgb)).astype(np.uint8).reshape(1, 256, 3)
    return lambda rgb: cv2.LUT(np.ascontiguousarray(rgb), lut)


_OVERLAY_OFF_SKIN = _tint(0.45, (0, 20, 70))
_OVERLAY_EDGE_BAND = _tint(0.7, (40, 40, 0))


def analyze_photo(
    image: str | Path | np.ndarray,
    *,
    baseline: str | Path | np.ndarray | None = None,
    mm_per_px: float | None = None,
    regions: RoiTemplate | str | Path | Sequence[str] | None = None,
    backend: LandmarkBackend | None = None,
    marker_side_mm: float | None = None,
    marker_dictionary: str = "DICT_4X4_50",
    qc_thresholds: QCThresholds | None = None,
    wrinkle_params: WrinkleParams | None = None,
    skin_params: SkinParams | None = None,
    analysis_mm_per_px: float = 0.2,
    overlays: bool = True,
    keep_masks: bool = False,
) -> PhotoAnalysis:
    """Analyse one frontal facial photo, optionally against the subject's baseline.

    Parameters
    ----------
    image : str, Path or (M, N, 3) uint8 ndarray
        Photo file (JPEG, PNG, TIFF; EXIF orientation honoured) or an RGB array.
    baseline : str, Path or ndarray, optional
        The subject's baseline photo. With it the photo is registered and warped onto the baseline,
        measured in the baseline's regions, its pose, expression and identity are checked against the
        baseline, and lift is measured; without it the lift columns are NaN.
    mm_per_px : float, optional
        Pixel size of ``image`` in millimetres. Default: from an ArUco marker when ``marker_side_mm`` is
        given and the marker is found, else estimated from the inter-ocular distance (63 mm; flagged in
        ``calibration.source``); a follow-up without its own scale takes the baseline's.
    regions : RoiTemplate, path to a template YAML, or sequence of region names, optional
        Which regions to report and how they are placed (default: all, built-in template).
    backend : LandmarkBackend, optional
        Face/landmark model (default :class:`~toolkit.imaging.faces.FaceMeshBackend`).
    marker_side_mm : float, optional
        Side of the ArUco scale marker in millimetres.
    marker_dictionary : str
        ArUco dictionary name.
    qc_thresholds : QCThresholds, optional
    wrinkle_params : WrinkleParams, optional
    skin_params : SkinParams, optional
    analysis_mm_per_px : float
        Pixel size of the analysis grid every photo is resampled to (millimetres).
    overlays : bool
        Build overlay images (skip for speed in large batches).
    keep_masks : bool
        Return the pixels each region was measured on (:attr:`PhotoAnalysis.region_masks`).

    Returns
    -------
    PhotoAnalysis
        Never raises for a bad photo: a file that cannot be read, no face, two faces, a profile view,
        closed eyes, sunglasses, a partial face, a baseline of another person … is a QC failure with its
        reason and NaN metrics (or, for a follow-up, metrics that QC marks as failed).

    Examples
    --------
    >>> from toolkit.imaging import analyze_photo, synthetic
    >>> result = analyze_photo(synthetic.portrait("grace_hopper"))
    >>> result.qc.passed, list(result.regions.columns[:3])
    (True, ['region', 'wrinkle_count', 'wrinkle_length_mm'])
    """
    template, names = _resolve_template(regions)
    thresholds = qc_thresholds or QCThresholds()
    params = wrinkle_params or WrinkleParams()
    default_backend = backend is None
    backend = backend or FaceMeshBackend()
    qc = QCReport()
    src = _source_name(image)
    common = {"backend": backend, "template": template, "thresholds": thresholds, "marker_side_mm": marker_side_mm,
              "marker_dictionary": marker_dictionary, "analysis_mm_per_px": float(analysis_mm_per_px),
              "skin_params": skin_params or SkinParams()}
    photo = _prepare(image, qc, role="photo", mm_per_px=mm_per_px, **common)
    base_src = _source_name(baseline) if baseline is not None else None
    if photo is None:
        return PhotoAnalysis(source=src, qc=qc, regions=_empty_regions(names), baseline_source=base_src)
    base = None
    if baseline is not None:
        base, base_reasons = _prepare_baseline(baseline, default_backend=default_backend, **common)
        for reason in base_reasons:
            qc.fail("baseline_unusable", reason)

    table = _empty_regions(names)
    out_overlays: dict[str, np.ndarray] = {}
    registration = None
    covered = None
    if base is None:
        frame_rgb, frame_clipped, frame, source_mm = photo.rgb, photo.clipped, photo, photo.source_mm_per_px
    else:
        distance = face_qc.shape_distance(photo.face.mesh, base.face.mesh)
        qc.metrics["face_shape_distance"] = distance
        if distance > thresholds.max_shape_distance:
            qc.fail("baseline_mismatch", f"the baseline shows another face (face-shape distance {distance:.3f} "
                    f"inter-ocular distances, limit {thresholds.max_shape_distance}): check the subject and visit")
        _check_mirrored(qc, photo, base)
        size = (base.gray.shape[1], base.gray.shape[0])
        base_masks = base.polygon_masks()
        stable = base.derived(("stable", tuple(template.lift_reference)), lambda: np.logical_or.reduce(
            [base_masks[n] for n in template.lift_reference]) & base.skin.oval)
        start = fit_similarity(base.face.mesh[list(_STABLE_VERTICES), :2], photo.face.mesh[list(_STABLE_VERTICES), :2])
        registration, reg_gray = _register(photo, base, stable, start)
        if photo.calibration.source == "inter_ocular_estimate":
            # Without a marker or a given scale, the follow-up takes the baseline's pixel size through the
            # registration, which is far steadier than its own eye distance: one subject's visits share one
            # scale, and a few pixels of landmark noise cannot rescale a visit.
            # one follow-up crop pixel is base.mm_per_px / scale millimetres; one photo pixel is matrix[0, 0] of them
            photo.source_mm_per_px = base.mm_per_px / registration.scale * photo.matrix[0, 0]
            photo.calibration = Calibration(photo.source_mm_per_px, "baseline_registration")
            qc.metrics.update(mm_per_px=photo.calibration.mm_per_px, calibration_source=photo.calibration.source)
        mm = base.mm_per_px
        # the field is read on the face outline only (lift masks, reference, warp cells): matched on its box
        flow_window = base.derived(("flow_window",), lambda: mask_window(base.skin.oval, round(_FLOW_MARGIN_MM / mm))
                                   if base.skin.oval.any() else None)
        flow = _displacement(base.gray, reg_gray, mm, max(base.source_mm_per_px, photo.source_mm_per_px), flow_window)
        # the follow-up, warped onto the baseline skin by skin: wrinkles are measured in the baseline's regions
        cell_px = max(4, round(_WARP_CELL_MM / mm))
        smooth = _robust_smooth(flow, base.skin.oval, cell_px,
                                base.derived(("cells", cell_px), lambda: _cells(base.skin.oval, cell_px)))
        # the stable upper face is aligned by the registration itself: no field there (dense matching there
        # follows what moved over the skin, a fringe or a cap pulled lower, and would stretch the skin after it)
        smooth *= base.derived(("warp_weight", tuple(template.lift_reference)),
                               lambda: _outside_stable(stable, _STABLE_FEATHER_MM / mm))
        frame_rgb, frame_clipped, warped_skin = _warp_onto_baseline(photo, registration.matrix, smooth, size)
        covered = _covered_at_visit(base, frame_rgb, warped_skin)
        # the masks' pixels, found once for every follow-up of a cached baseline
        lift_pixels = base.derived(("lift_pixels", names), lambda: {n: mask_pixels(base_masks[n] & base.skin.skin)
                                                                     for n in names})
        stable_pixels = base.derived(("stable_pixels", tuple(template.lift_reference)), lambda: mask_pixels(stable))
        if covered is not None:
            # skin covered at this visit does not move with the face: its field follows the cover
            lift_pixels = {n: mask_pixels(base_masks[n] & base.skin.skin & ~covered) for n in names}
            stable_pixels = mask_pixels(stable & ~covered)
        lifts, residual_px = measure_lift(flow, lift_pixels, stable_pixels, mm)
        registration = Registration(**{**registration.__dict__, "residual_px": residual_px,
                                       "residual_mm": residual_px * mm})
        qc.metrics["registration_residual_mm"] = registration.residual_mm
        lower = [lifts[n].lift_mm for n in names if n not in template.lift_reference]
        lower_lift = float(np.nanmedian(lower)) if np.isfinite(lower).any() else float("nan")
        _check_against_baseline(qc, registration, photo, base, thresholds, covered is not None, lower_lift)
        _check_sharpness(qc, photo, base, frame_rgb, frame_clipped, covered, thresholds)
        table["lift_mm"] = [lifts[n].lift_mm for n in names]
        table["displacement_mm"] = [lifts[n].displacement_mm for n in names]
        # the baseline's resolution decides which scales are used, so both visits are filtered alike
        frame, source_mm = base, base.source_mm_per_px
        if overlays:
            out_overlays["displacement"] = flow_overlay(base.rgb, flow, step_px=max(8, round(3.0 / mm)),
                                                        gain=max(2.0, 1.0 / mm / 2))
            out_overlays["ghost"] = cv2.addWeighted(base.rgb, 0.5, frame_rgb, 0.5, 0)

    polys = {n: frame.polygons[n] for n in names}
    poly_masks = frame.polygon_masks()
    measurable = frame.skin.measurable
    if base is not None and photo.spectacles and not base.spectacles:
        measurable = measurable & ~face_qc.lens_zone(measurable.shape, base.face.mesh, base.mm_per_px)
    # what a region is meant to cover: its polygon on the face, less the eyes, brows, lips and nostrils
    intended = frame.derived(("intended",), lambda: frame.skin.oval & ~frame.skin.features)
    covered_share = {}
    if covered is not None:
        # a region measured at baseline that lost more than a few of its pixels at this visit is not
        # comparable with its baseline
        for n in names:
            was = np.count_nonzero(poly_masks[n] & measurable)
            if was and was >= template.min_skin_fraction * np.count_nonzero(poly_masks[n] & intended):
                covered_share[n] = np.count_nonzero(poly_masks[n] & measurable & covered) / was
        measurable = measurable & ~covered
    # the baseline's own texture sets a subject's thresholds at every visit, and its skin the colour
    # channels' contrast gains (a brighter follow-up may clip where the baseline does not)
    if base is not None and base.texture_level is None:
        own = wrinkle_map(base.rgb, base.mm_per_px, params, clipped=base.clipped, source_mm_per_px=source_mm,
                          reference=base.skin.measurable)
        base.texture_level = skin_texture_level(own, base.skin.measurable)
        base.channel_gains = own.channel_gains
    wmap = wrinkle_map(frame_rgb, frame.mm_per_px, params, clipped=frame_clipped, source_mm_per_px=source_mm,
                       reference=frame.skin.measurable, channel_gains=None if base is None else base.channel_gains)
    own_level = skin_texture_level(wmap, measurable)
    level = own_level if base is None else base.texture_level
    if base is not None:
        _check_skin_texture(qc, own_level, level, thresholds)
    # the lips' own border (the vermilion edge, the shadow under the lower lip) is anatomy, not a perioral line
    lips, corners = frame.derived(("lips",), lambda: _lips_and_mouth_corners(frame))
    wmap = suppress_parallel(wmap, lips, _LIP_REACH_MM / frame.mm_per_px, spare=corners)
    # spots (freckles, moles, pimples, a treatment's red dots) ring the ridge filter like short curled lines
    frame_gray = frame.gray if frame_rgb is frame.rgb else cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    # a spot stands out from the skin's own texture at least as much as its typical ridge does (the texture
    # level, percent): on mottled skin the blotches of its pigment are not spots
    spot_contrast = max(SPOT_MIN_CONTRAST, level / 100.0 if np.isfinite(level) else 0.0)
    # the mouth's corners are dark dimples where the folds end: anatomy, not spots
    spots = find_spots(frame_gray, frame.mm_per_px, measurable & ~corners, source_mm_per_px=source_mm,
                       min_contrast=spot_contrast)
    qc.metrics["spots"] = len(spots)
    removed = spots
    if len(spots):
        qc.notes.append(f"{len(spots)} spot(s) on the skin (freckles, moles, pimples, red dots) left out of the wrinkle "
                        "measures: ringed in cyan in the overlay")
    if base is not None:
        at_baseline = base.derived(("spots", spot_contrast), lambda: find_spots(
            base.gray, base.mm_per_px, base.skin.measurable & ~corners, source_mm_per_px=source_mm,
            min_contrast=spot_contrast))
        before = len(at_baseline)
        qc.metrics["spots_at_baseline"] = before
        if len(spots) - before >= max(thresholds.max_new_spots, before):
            qc.flag("new_spots", f"{len(spots)} spots on the skin at this visit, {before} at baseline (limit "
                    f"{thresholds.max_new_spots} more): red dots after a session, a breakout or a rash; the wrinkle "
                    "measures leave them out, but look at the photo and record any adverse event",
                    fail_on=thresholds.fail_on_flags)
        # a spot of the baseline's is left out at every visit, so a spot near the detection limit that one
        # re-capture finds and the next does not still reads alike (in the baseline's frame, which this is)
        removed = spots.joined(at_baseline)
    wmap = without_spots(wmap, removed, level)
    qc.metrics["skin_texture_pct"] = level
    skeleton = np.zeros(frame.gray.shape, dtype=bool)
    rows = []
    kept_masks: dict[str, np.ndarray] = {}
    not_measured = []
    # two or more channels clipped: a single one is made up for by the others (see wrinkles._relative_contrast)
    bits = frame_clipped.astype(np.uint8)
    clipped_two = ((bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1)) >= 2
    # each region's pixels (as a mask and as flat indices) and their share of what it is meant to cover (made
    # once for a cached baseline, unless lenses were taken out of what is measurable for this photo)
    def region_pixels() -> dict[str, tuple[np.ndarray, float, np.ndarray]]:
        out = {}
        for n in names:
            poly_area = np.count_nonzero(poly_masks[n] & intended)
            mask = poly_masks[n] & measurable
            out[n] = (mask, np.count_nonzero(mask) / poly_area if poly_area else 0.0, np.flatnonzero(mask))
        return out

    pixels = (frame.derived(("region_pixels", names), region_pixels) if measurable is frame.skin.measurable
              else region_pixels())
    covered_regions, channel_clipped = [], []
    for n in names:
        mask, frac, index = pixels[n]
        if covered_share.get(n, 0.0) > thresholds.max_region_covered_fraction:
            covered_regions.append(f"{n} ({100 * covered_share[n]:.0f} %)")
            rows.append((np.nan,) * 6 + (frac,))
            continue
        if frac < template.min_skin_fraction or not mask.any():
            not_measured.append(f"{n} ({100 * frac:.0f} % skin)")
            rows.append((np.nan,) * 6 + (frac,))
            continue
        met, skel = measure_wrinkles(wmap, mask, texture_level=level)
        if keep_masks:
            kept_masks[n] = mask.copy()
        skeleton |= skel
        rows.append((met.count, met.length_mm, met.density_mm_per_cm2, met.area_fraction, met.ridge_strength,
                     met.depth_index, frac))
        clip_frac = float(clipped_two.ravel()[index].mean())
        if clip_frac > thresholds.max_region_clipped_fraction:
            qc.flag("region_clipping", f"{n}: {100 * clip_frac:.0f} % of its skin is clipped by the exposure; "
                    "lines there may be lost", fail_on=thresholds.fail_on_flags)
        # faint lines only: a line read from fewer channels at one visit keeps its length when it is well above
        # the detection thresholds
        if base is not None and met.count and met.ridge_strength < thresholds.faint_line_contrast * level:
            changed = _channel_clipped_change(frame_clipped.ravel()[index], base.clipped.ravel()[index], thresholds)
            if changed:
                channel_clipped.append(f"{n} ({changed})")
    if channel_clipped:
        qc.flag("channel_clipped", "one colour channel is clipped on much more (or much less) of these regions' skin "
                "than at baseline, and their lines are faint: " + "; ".join(channel_clipped) + ". Their lines are "
                "read from the other channels at one visit only, and in a JPEG that stores colour at half resolution "
                "(most cameras' default) those lose part of a line's detail: faint forehead lines read 11-27 % "
                "shorter or longer on a pale face; photograph with the baseline's exposure and lights, or compare "
                "these regions with care", fail_on=thresholds.fail_on_flags)
    if covered_regions:
        qc.flag("skin_covered", "skin measured at baseline is covered at this visit (hair, headwear or a hand over "
                "it), so these regions are not measured: " + ", ".join(covered_regions) + f" of their baseline skin "
                f"(limit {100 * thresholds.max_region_covered_fraction:.0f} %)", fail_on=thresholds.fail_on_flags)
    if not_measured:
        qc.notes.append("not measured, too little visible skin (hair, headwear, eyebrows or spectacles cover it): "
                        + ", ".join(not_measured))
    arr = np.array(rows, dtype=float)
    for j, col in enumerate(("wrinkle_count", "wrinkle_length_mm", "wrinkle_density_mm_per_cm2",
                             "wrinkle_area_fraction", "ridge_strength", "wrinkle_depth_index", "skin_fraction")):
        table[col] = arr[:, j]
    if overlays:
        # skin covered at this visit is shown as what it now is: not skin
        shown_skin = frame.skin.skin if covered is None else frame.skin.skin & ~covered
        out_overlays["wrinkles"] = _overlay(frame_rgb, shown_skin, measurable, polys, skeleton, spots)
    return PhotoAnalysis(
        source=src,
        qc=qc,
        regions=table,
        overlays=out_overlays,
        calibration=photo.calibration,
        registration=registration,
        face=photo.face_original,
        landmark_metrics=landmark_geometry(photo.face_original, photo.calibration.mm_per_px),
        baseline_source=base_src,
        region_masks=kept_masks,
        grid_matrix=frame.matrix if keep_masks else None,
    )
