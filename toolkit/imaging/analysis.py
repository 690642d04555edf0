"""One photo in, numbers out: QC, calibration, regions, registration, wrinkle and lift metrics.

:func:`analyze_photo` is pure (it reads its inputs and returns a result; nothing is written) and its
result pickles, so a loop, a process pool or a Dask cluster can run it. Work happens on a crop around the
face resampled to a fixed inter-ocular distance (``analysis_iod_px``); lengths and areas are reported in
millimetres of the original photo's scale.
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

from toolkit.imaging.calibration import MEAN_INTER_OCULAR_MM, Calibration, detect_scale_marker, gray_world
from toolkit.imaging.faces import FaceGeometry, HaarCascadeBackend, LandmarkBackend
from toolkit.imaging.lift import displacement_field, flow_overlay, landmark_geometry, measure_lift
from toolkit.imaging.photo_io import PhotoRejected, as_rgb_array, load_photo
from toolkit.imaging.qc import QCReport, QCThresholds, blur_score, clipping_fraction
from toolkit.imaging.regions import (
    REGION_NAMES,
    RoiTemplate,
    load_roi_template,
    polygon_masks,
    region_masks,
    region_polygons,
)
from toolkit.imaging.registration import Registration, register_to_baseline
from toolkit.imaging.wrinkles import WrinkleParams, clipped_channels, measure_wrinkles, wrinkle_map

__all__ = ["ALGORITHM_VERSION", "METRIC_COLUMNS", "PhotoAnalysis", "analyze_photo"]

#: recorded with every number this module produces; bump on any change that alters results
ALGORITHM_VERSION = "epmc-imaging 1.4.0"

#: the per-region columns of :attr:`PhotoAnalysis.regions`
METRIC_COLUMNS = (
    "wrinkle_count",
    "wrinkle_length_mm",
    "wrinkle_density_mm_per_cm2",
    "wrinkle_area_fraction",
    "ridge_strength",
    "lift_mm",
    "displacement_mm",
)

_SKIN_REGIONS = ("forehead", "cheek_l", "cheek_r")
#: pixel size (mm) above which the lift flow is matched down to the finest pyramid level
_FINE_FLOW_MM_PER_PX = 0.3


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
        NaN without a baseline).
    overlays : dict of str to (M, N, 3) uint8 ndarray
        ``wrinkles`` (detected lines and region outlines) and, with a baseline, ``displacement`` (flow
        arrows, magnified) and ``ghost`` (baseline blended with the registered follow-up).
    calibration : Calibration or None
    registration : Registration or None
    face : FaceGeometry or None
        The face in original photo coordinates.
    landmark_metrics : dict
        Brow height, brow elevation ratio, jawline angle … when the backend gives landmarks.
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
    algorithm_version: str = ALGORITHM_VERSION

    def to_frame(self) -> pd.DataFrame:
        """The region table with photo-level columns (source, QC, calibration, registration, version)."""
        df = self.regions.copy()
        df.insert(0, "source", self.source)
        df["baseline_source"] = self.baseline_source
        df["qc_passed"] = self.qc.passed
        df["qc_reasons"] = "; ".join(self.qc.reasons)
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
    face: FaceGeometry  # in crop coordinates
    face_original: FaceGeometry
    scale: float  # analysis px per original px
    mm_per_px: float  # millimetres per analysis px
    calibration: Calibration
    clipped: np.ndarray | None = None  # clipped_channels() of the crop before colour normalisation


def _source_name(image: object) -> str:
    return str(image) if isinstance(image, str | Path) else "<array>"


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
    analysis_iod_px: float,
) -> _Prepared | None:
    prefix = "" if role == "photo" else "baseline: "
    try:
        rgb = load_photo(image)[0] if isinstance(image, str | Path) else as_rgb_array(image)
    except PhotoRejected as exc:
        qc.fail(f"{prefix}{exc.reason}", f"{prefix}{exc.message}")
        return None
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
    if search.ignored_detections:
        qc.notes.append(f"{prefix}{search.ignored_detections} unconfirmed extra face detection(s) ignored "
                        "(small, weak, overlapping or without eyes)")
    if face.eyes_estimated:
        qc.notes.append(f"{prefix}eyes not detected; placed from the face box proportions")
    if role == "photo":
        qc.metrics["yaw_index"] = face.yaw_index
        qc.metrics["roll_deg"] = face.roll_deg
        qc.metrics["inter_ocular_px"] = face.inter_ocular_px
        if abs(face.yaw_index) > thresholds.max_yaw_index:
            qc.fail("not_frontal", f"head turned (yaw index {face.yaw_index:+.2f}, limit ±{thresholds.max_yaw_index})")

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

    # crop around every region (+ margin), then resample to the analysis inter-ocular distance
    iod = max(face.inter_ocular_px, 1.0)
    polys = region_polygons(face, template, (*template.regions, *template.reference_regions))
    pts = np.vstack(list(polys.values()))
    margin = 0.15 * iod
    h, w = rgb.shape[:2]
    x0 = int(max(0, math.floor(pts[:, 0].min() - margin)))
    y0 = int(max(0, math.floor(pts[:, 1].min() - margin)))
    x1 = int(min(w, math.ceil(pts[:, 0].max() + margin)))
    y1 = int(min(h, math.ceil(pts[:, 1].max() + margin)))
    scale = min(1.0, analysis_iod_px / iod)
    crop = rgb[y0:y1, x0:x1]
    if scale < 1.0:
        crop = cv2.resize(crop, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                          interpolation=cv2.INTER_AREA)
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
    face_crop = face.transformed(m)

    skin = np.zeros(crop.shape[:2], dtype=bool)
    for mk in region_masks(crop.shape, face_crop, template, _SKIN_REGIONS).values():
        skin |= mk
    if role == "photo":
        fx, fy, fw, fh = (int(round(v)) for v in face.box)
        face_gray = cv2.cvtColor(rgb[max(0, fy):fy + fh, max(0, fx):fx + fw], cv2.COLOR_RGB2GRAY)
        blur = blur_score(face_gray)
        dark, bright = clipping_fraction(crop, skin)
        qc.metrics.update(blur_score=blur, clipped_dark=dark, clipped_bright=bright, mm_per_px=cal.mm_per_px,
                          calibration_source=cal.source)
        if blur < thresholds.min_blur_score:
            qc.fail("blur", f"blurred: Laplacian variance {blur:.1f} on the normalised face crop < {thresholds.min_blur_score}")
        if not (dark + bright <= thresholds.max_clipped_fraction):
            qc.fail("exposure", f"exposure clipping on {100 * (dark + bright):.1f} % of skin pixels "
                    f"(limit {100 * thresholds.max_clipped_fraction:.1f} %)")
    # which channels the camera clipped, before colour normalisation moves the clipped level off 255
    clipped = clipped_channels(crop)
    normalised = gray_world(crop, skin)
    gray = cv2.cvtColor(normalised, cv2.COLOR_RGB2GRAY)
    return _Prepared(rgb=normalised, gray=gray, face=face_crop, face_original=face, scale=scale,
                     mm_per_px=cal.mm_per_px / scale, calibration=cal, clipped=clipped)


#: prepared baselines of this process, most recent last (a subject's follow-ups share one baseline)
_BASELINE_CACHE: OrderedDict[tuple, tuple[_Prepared | None, tuple[str, ...]]] = OrderedDict()
_BASELINE_CACHE_SIZE = 8


def _template_key(template: RoiTemplate) -> tuple:
    polys = (*sorted(template.regions.items()), *sorted(template.reference_regions.items()))
    digest = hashlib.sha1()
    for name, poly in polys:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(poly, dtype=np.float64).tobytes())
    return (template.source, tuple(template.lift_reference), digest.hexdigest())


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
                   common["analysis_iod_px"])
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


def _check_registration(qc: QCReport, registration: Registration, photo: _Prepared, base: _Prepared,
                        thresholds: QCThresholds) -> None:
    """Pose and scale against the baseline, from the registration (dense, far steadier than Haar eyes)."""
    droll = registration.rotation_deg
    dscale = registration.scale * base.scale / photo.scale - 1.0
    qc.metrics.update(roll_change_deg=droll, scale_change=dscale)
    if abs(droll) > thresholds.max_roll_deg:
        qc.fail("pose", f"head roll differs from baseline by {droll:+.1f}° (limit ±{thresholds.max_roll_deg}°)")
    if abs(dscale) > thresholds.max_scale_change:
        qc.fail("scale", f"face size differs from baseline by {100 * dscale:+.1f} % "
                f"(limit ±{100 * thresholds.max_scale_change:.0f} %)")
    pf, bf = photo.face_original, base.face_original
    if not (pf.eyes_estimated or bf.eyes_estimated):
        dyaw = pf.yaw_index - bf.yaw_index
        qc.metrics["yaw_index_change"] = dyaw
        if abs(dyaw) > thresholds.max_yaw_index_change:
            qc.fail("pose", f"head turn differs from baseline (yaw index change {dyaw:+.2f}, "
                    f"limit ±{thresholds.max_yaw_index_change})")
    if not (registration.residual_mm <= thresholds.max_registration_residual_mm):
        qc.fail("registration", f"registration to baseline failed: {registration.residual_mm:.2f} mm left on the "
                f"stable regions (limit {thresholds.max_registration_residual_mm} mm)")


def _follow_skin(base_polys: dict[str, np.ndarray], base_masks: dict[str, np.ndarray],
                flow: np.ndarray) -> dict[str, np.ndarray]:
    """Baseline region polygons shifted by each region's median displacement (baseline → follow-up)."""
    out = {}
    for name, poly in base_polys.items():
        m = base_masks[name]
        # every third pixel: a median of tens of thousands of flow vectors does not need them all
        shift = np.median(flow[m][::3], axis=0) if m.any() else np.zeros(2)
        out[name] = np.asarray(poly, dtype=float) + shift
    return out


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


def _outline(img: np.ndarray, polys: dict[str, np.ndarray]) -> None:
    for poly in polys.values():
        cv2.polylines(img, [np.round(poly).astype(np.int32)], True, (255, 220, 0), 1, cv2.LINE_AA)


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
    analysis_iod_px: float = 300.0,
    overlays: bool = True,
) -> PhotoAnalysis:
    """Analyse one frontal facial photo, optionally against the subject's baseline.

    Parameters
    ----------
    image : str, Path or (M, N, 3) uint8 ndarray
        Photo file (JPEG, PNG, TIFF; EXIF orientation honoured) or an RGB array.
    baseline : str, Path or ndarray, optional
        The subject's baseline photo. With it the photo is registered to the baseline, regions follow the
        baseline's face, pose/scale deviation is checked, and lift is measured; without it the lift
        columns are NaN.
    mm_per_px : float, optional
        Pixel size of ``image`` in millimetres. Default: from an ArUco marker when ``marker_side_mm`` is
        given and the marker is found, else estimated from the inter-ocular distance (63 mm; flagged in
        ``calibration.source``).
    regions : RoiTemplate, path to a template YAML, or sequence of region names, optional
        Which regions to report and how they are placed (default: all, built-in template).
    backend : LandmarkBackend, optional
        Face/landmark model (default :class:`~toolkit.imaging.faces.HaarCascadeBackend`).
    marker_side_mm : float, optional
        Side of the ArUco scale marker in millimetres.
    marker_dictionary : str
        ArUco dictionary name.
    qc_thresholds : QCThresholds, optional
    wrinkle_params : WrinkleParams, optional
    analysis_iod_px : float
        Inter-ocular distance of the internal analysis resolution (photos are never upsampled).
    overlays : bool
        Build overlay images (skip for speed in large batches).

    Returns
    -------
    PhotoAnalysis
        Never raises for a bad photo: a file that cannot be read, no face, two faces, a profile view … is a
        QC failure with its reason and NaN metrics.

    Examples
    --------
    >>> from toolkit.imaging import analyze_photo, synthetic
    >>> result = analyze_photo(synthetic.portrait("astronaut"))
    >>> result.qc.passed, list(result.regions.columns[:3])
    (True, ['region', 'wrinkle_count', 'wrinkle_length_mm'])
    """
    template, names = _resolve_template(regions)
    thresholds = qc_thresholds or QCThresholds()
    params = wrinkle_params or WrinkleParams()
    default_backend = backend is None
    backend = backend or HaarCascadeBackend()
    qc = QCReport()
    src = _source_name(image)
    common = {"backend": backend, "template": template, "thresholds": thresholds, "marker_side_mm": marker_side_mm,
                  "marker_dictionary": marker_dictionary, "analysis_iod_px": analysis_iod_px}
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
    if base is None:
        frame_rgb, frame_gray, mm_frame = photo.rgb, photo.gray, photo.mm_per_px
        frame_clipped = photo.clipped
        polys = region_polygons(photo.face, template, names)
    else:
        # every region and reference of the baseline, rasterised once
        base_masks = region_masks(base.gray.shape, base.face, template,
                                  (*template.regions, *template.reference_regions))
        stable = np.logical_or.reduce([base_masks[n] for n in template.lift_reference])
        face_mask = np.logical_or.reduce(list(base_masks.values()))
        registration, reg_gray = register_to_baseline(photo.gray, base.gray, photo.face, base.face, stable,
                                                      face_mask=face_mask)
        size = (base.gray.shape[1], base.gray.shape[0])
        matrix = registration.matrix.astype(np.float32)
        reg_rgb = cv2.warpAffine(photo.rgb, matrix, size, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REFLECT)
        reg_clipped = cv2.warpAffine(photo.clipped, matrix, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT)
        # one baseline-crop pixel spans `scale` follow-up analysis pixels
        mm_frame = photo.mm_per_px * registration.scale
        if photo.calibration.source == "inter_ocular_estimate":
            # Without a marker or a given scale, the follow-up takes the baseline's pixel size through
            # the registration, which is far steadier than its own Haar eye distance: one subject's
            # visits then share one scale, and an eye found a few pixels off cannot rescale a visit.
            mm_frame = base.mm_per_px
            photo.calibration = Calibration(mm_frame / registration.scale * photo.scale, "baseline_registration")
            photo.mm_per_px = mm_frame / registration.scale
            qc.metrics.update(mm_per_px=photo.calibration.mm_per_px, calibration_source=photo.calibration.source)
        frame_rgb, frame_gray, frame_clipped = reg_rgb, reg_gray, reg_clipped
        # full-resolution matching where a pixel is coarse against the 0.1 mm a lift must resolve
        flow = displacement_field(base.gray, reg_gray, finest_level=0 if mm_frame > _FINE_FLOW_MM_PER_PX else 1,
                                  normalise_px=max(3.0, 0.1 * base.face.inter_ocular_px))
        masks_all = {n: base_masks[n] for n in names}
        lifts, residual_px = measure_lift(flow, masks_all, stable, mm_frame)
        registration = Registration(**{**registration.__dict__, "residual_px": residual_px,
                                       "residual_mm": residual_px * mm_frame})
        qc.metrics["registration_residual_mm"] = registration.residual_mm
        _check_registration(qc, registration, photo, base, thresholds)
        table["lift_mm"] = [lifts[n].lift_mm for n in names]
        table["displacement_mm"] = [lifts[n].displacement_mm for n in names]
        # Wrinkles are measured on the registered photo (every follow-up goes through the same kind of
        # resampling, which keeps repeat photos comparable) in the baseline's regions, each moved by its
        # own displacement so that a region follows its skin when the face has lifted.
        polys = _follow_skin(region_polygons(base.face, template, names), masks_all, flow)
        if overlays:
            out_overlays["displacement"] = flow_overlay(base.rgb, flow)
            out_overlays["ghost"] = cv2.addWeighted(base.rgb, 0.5, reg_rgb, 0.5, 0)

    # colour, so that a channel the camera clipped can be left out where it carries no texture
    wmap = wrinkle_map(frame_rgb, mm_frame, params, clipped=frame_clipped)
    masks = polygon_masks(frame_gray.shape, polys)
    skeleton = np.zeros(frame_gray.shape, dtype=bool)
    rows = []
    for n in names:
        met, skel = measure_wrinkles(wmap, masks[n])
        skeleton |= skel
        rows.append((met.count, met.length_mm, met.density_mm_per_cm2, met.area_fraction, met.ridge_strength))
    arr = np.array(rows, dtype=float)
    table["wrinkle_count"] = arr[:, 0].astype(int)
    table["wrinkle_length_mm"] = arr[:, 1]
    table["wrinkle_density_mm_per_cm2"] = arr[:, 2]
    table["wrinkle_area_fraction"] = arr[:, 3]
    table["ridge_strength"] = arr[:, 4]
    if overlays:
        ov = frame_rgb.copy()
        _outline(ov, polys)
        ov[cv2.dilate(skeleton.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)] = (255, 30, 30)
        out_overlays["wrinkles"] = ov
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
    )
