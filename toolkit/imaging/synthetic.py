"""Synthetic and sample photos with known truth, for validation, the demo and the notebooks.

- :func:`portrait` returns real portraits that ship inside installed packages (no download):
  scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain) and matplotlib's ``grace_hopper.jpg``.
- :func:`render_phantom` draws wrinkle-like lines of known length, width and contrast on a skin-like
  texture beside an ArUco marker of known size, and returns the image with its truth.
- :func:`simulate_visit` makes a follow-up photo from a baseline: a known smooth upward warp of the lower
  face (lift), synthetic folds in named regions that become shorter *and* shallower (lighter) with a
  treatment, and re-capture perturbations (brightness, rotation, scale, shift, sensor noise, JPEG
  re-encoding). The folds lie on the skin of their region (:func:`fold_layout`), so what is drawn is what a
  correct measurement must find there.
- :func:`draw_line` draws one line of known length, width and contrast anywhere (on skin, on hair, on a
  cap, on the background), for tests of where lines are counted.

All images are RGB ``uint8`` arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.errors import ConfigurationError
from toolkit.imaging.faces import FaceGeometry, FaceMeshBackend
from toolkit.imaging.regions import load_roi_template, polygon_masks, region_polygons
from toolkit.imaging.skin import segment_skin, shrink
from toolkit.imaging.wrinkles import measure_wrinkles, wrinkle_map

__all__ = ["PORTRAITS", "portrait", "PhantomLine", "render_phantom", "simulate_visit", "fold_layout", "FoldLayout",
           "draw_line", "draw_spots", "points_on_skin", "tilt_head", "DEFAULT_WRINKLE_REGIONS"]

#: names accepted by :func:`portrait`
PORTRAITS = ("astronaut", "grace_hopper")
#: regions where :func:`simulate_visit` draws its synthetic wrinkles by default
DEFAULT_WRINKLE_REGIONS = ("nasolabial_l", "nasolabial_r", "crows_feet_l", "crows_feet_r")


def portrait(name: str = "astronaut", *, long_side_px: int | None = None) -> np.ndarray:
    """A real frontal portrait shipped with an installed package.

    Parameters
    ----------
    name : {'astronaut', 'grace_hopper'}
    long_side_px : int, optional
        Resize (Lanczos) so the long side has this many pixels.

    Returns
    -------
    (M, N, 3) uint8 ndarray (RGB)
    """
    if name == "astronaut":
        from skimage import data

        img = np.ascontiguousarray(data.astronaut())
    elif name == "grace_hopper":
        from matplotlib import cbook

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    else:
        raise ConfigurationError(f"unknown portrait {name!r}; accepted: {', '.join(PORTRAITS)}")
    if long_side_px:
        k = long_side_px / max(img.shape[:2])
        img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_LANCZOS4 if k > 1 else cv2.INTER_AREA)
    return img


@dataclass(frozen=True)
class PhantomLine:
    """One rendered line: end points in pixels, and its true length, width (FWHM) and contrast."""

    start_px: tuple[float, float]
    end_px: tuple[float, float]
    length_mm: float
    width_mm: float
    contrast: float


def _skin_texture(shape: tuple[int, int], rng: np.random.Generator, *, pore_density: float = 0.002) -> np.ndarray:
    h, w = shape
    base = np.array([214.0, 165.0, 140.0], dtype=np.float32)
    # slow shading plus fine mottling, like diffusely lit skin
    shade = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), max(h, w) / 8)
    shade = 1.0 + 0.06 * shade / (np.abs(shade).max() + 1e-6)
    mottle = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 3.0)
    mottle = 1.0 + 0.012 * mottle / (mottle.std() + 1e-6)
    img = base[None, None, :] * (shade * mottle)[..., None]
    pores = (rng.random((h, w)) < pore_density).astype(np.float32)
    pores = cv2.GaussianBlur(pores, (0, 0), 0.8)
    img *= (1.0 - 0.2 * pores / max(pores.max(), 1e-6))[..., None]
    return img


def _draw_line(img: np.ndarray, p0: np.ndarray, p1: np.ndarray, sigma_px: float, contrast: float) -> None:
    """Darken ``img`` (float, in place) by a Gaussian-profile segment with rounded ends."""
    r = int(math.ceil(4 * sigma_px)) + 1
    x0, y0 = np.floor(np.minimum(p0, p1)).astype(int) - r
    x1, y1 = np.ceil(np.maximum(p0, p1)).astype(int) + r
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.shape[1] - 1), min(y1, img.shape[0] - 1)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32)
    d = p1 - p0
    seg2 = float(d @ d) or 1.0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / seg2, 0.0, 1.0)
    dist2 = (xx - (p0[0] + t * d[0])) ** 2 + (yy - (p0[1] + t * d[1])) ** 2
    factor = 1.0 - contrast * np.exp(-dist2 / (2 * sigma_px**2))
    img[y0 : y1 + 1, x0 : x1 + 1] *= factor[..., None]


def draw_line(image: np.ndarray, start_px: Sequence[float], end_px: Sequence[float], *, width_px: float,
              contrast: float) -> np.ndarray:
    """A copy of an RGB ``uint8`` image with one dark line drawn on it.

    The line has a Gaussian profile of full width at half maximum ``width_px`` and darkens the image by the
    fraction ``contrast`` at its centre (0.3 = 30 % darker), with rounded ends: it is full depth from end
    point to end point and fades to half depth half a width beyond each, so its length at half depth is the
    distance between its end points plus one width.
    """
    img = np.asarray(image, dtype=np.float32).copy()
    _draw_line(img, np.asarray(start_px, dtype=float), np.asarray(end_px, dtype=float),
               float(width_px) / (2 * math.sqrt(2 * math.log(2))), float(contrast))
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_spots(image: np.ndarray, centres_px: Sequence[Sequence[float]], diameters_px: Sequence[float], *,
               contrast: float, red: bool = False) -> np.ndarray:
    """A copy of an RGB ``uint8`` image with round spots on it (freckles, moles, pimples).

    Each spot has a Gaussian profile of full width at half maximum ``diameters_px`` and darkens the image by
    the fraction ``contrast`` at its centre. A ``red`` spot (erythema, the dots a treatment can leave) takes
    ``contrast`` off green and blue and a fifth of it off red.
    """
    img = np.asarray(image, dtype=np.float32).copy()
    gains = np.array([0.2, 1.0, 1.0] if red else [1.0, 1.0, 1.0], dtype=np.float32) * float(contrast)
    for (x, y), d in zip(np.asarray(centres_px, dtype=float), np.asarray(diameters_px, dtype=float), strict=True):
        sigma = d / (2 * math.sqrt(2 * math.log(2)))
        r = int(math.ceil(4 * sigma)) + 1
        x0, x1 = max(0, int(x) - r), min(img.shape[1], int(x) + r + 1)
        y0, y1 = max(0, int(y) - r), min(img.shape[0], int(y) + r + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma * sigma))
        img[y0:y1, x0:x1] *= 1.0 - g[..., None] * gains
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def points_on_skin(image: np.ndarray, regions: Sequence[str], per_region: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Random points on the measured skin of ``regions`` of a portrait, to draw on: ``per_region`` of each
    (fewer where a region has fewer pixels; none where the analysis does not measure it), as (x, y) pixels of
    ``image``, and the photo's pixel size in millimetres."""
    from toolkit.imaging.analysis import analyze_photo

    ref = analyze_photo(image, overlays=False, keep_masks=True)
    to_photo = np.linalg.inv(np.vstack([ref.grid_matrix, [0.0, 0.0, 1.0]]))
    points = []
    for region in regions:
        if region not in ref.region_masks:
            continue
        ys, xs = np.nonzero(ref.region_masks[region])
        k = rng.choice(len(xs), min(per_region, len(xs)), replace=False)
        points.append((to_photo @ np.stack([xs[k], ys[k], np.ones(len(k))]))[:2].T)
    return (np.concatenate(points) if points else np.zeros((0, 2))), float(ref.calibration.mm_per_px)


def render_phantom(
    *,
    shape_px: tuple[int, int] = (1200, 1600),
    mm_per_px: float = 0.1,
    n_lines: int = 6,
    length_mm: float | Sequence[float] = 20.0,
    width_mm: float = 0.6,
    contrast: float = 0.25,
    marker_side_mm: float = 20.0,
    marker_id: int = 7,
    dictionary: str = "DICT_4X4_50",
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Render well-separated wrinkle lines of known geometry on skin-like texture with an ArUco marker.

    Parameters
    ----------
    shape_px : (rows, cols)
    mm_per_px : float
        Pixel size of the rendering (the marker is drawn at exactly ``marker_side_mm / mm_per_px`` px).
    n_lines : int
        Lines, each in its own horizontal band (so they never touch).
    length_mm : float or sequence of float
        True length of each line.
    width_mm : float
        Full width at half maximum of the line's Gaussian profile.
    contrast : float
        Relative darkening at the line centre (0.25 = 25 % darker than the skin).
    marker_side_mm : float
    marker_id, dictionary :
        ArUco marker drawn in the top-left corner, with a white quiet zone.
    seed : int

    Returns
    -------
    image : (rows, cols, 3) uint8 ndarray
    truth : dict
        ``mm_per_px``, ``lines`` (list of :class:`PhantomLine`), ``total_length_mm`` (at half depth: the
        lines' lengths plus one width each, as their rounded ends fade), ``count``,
        ``skin_mask`` (where the lines may be), ``marker_side_mm``, ``marker_corners_px``.
    """
    rng = np.random.default_rng(seed)
    h, w = shape_px
    img = _skin_texture((h, w), rng)
    side_px = marker_side_mm / mm_per_px
    quiet = int(round(side_px * 0.25))
    panel = int(round(side_px)) + 2 * quiet
    lengths = np.broadcast_to(np.asarray(length_mm, dtype=float), (n_lines,))
    skin = np.ones((h, w), dtype=bool)
    skin[: panel + 4 * quiet, : panel + 4 * quiet] = False  # the white card and its halo
    top = panel + 5 * quiet  # below the card and its excluded halo
    band = (h - top - quiet) / n_lines
    sigma = width_mm / mm_per_px / (2 * math.sqrt(2 * math.log(2)))
    lines = []
    for i in range(n_lines):
        L = lengths[i] / mm_per_px
        if 0.76 * w < L:
            raise ConfigurationError(
                f"render_phantom: line {i} ({lengths[i]} mm = {L:.0f} px) is longer than 76 % of the image width"
            )
        max_half_dy = band / 2 - 4 * sigma - 2
        if max_half_dy <= 0:
            raise ConfigurationError(f"render_phantom: {n_lines} lines of width {width_mm} mm do not fit; use fewer lines")
        # tilt as much as the line's band allows (up to 25°), so neighbouring lines never touch
        max_ang = math.degrees(math.asin(min(1.0, max_half_dy / (L / 2))))
        ang = math.radians(rng.uniform(-1, 1) * min(25.0, max_ang))
        room = max(0.0, 0.38 * w - L / 2 * math.cos(ang))  # keep 12 % of the width clear at both sides
        cx = rng.uniform(0.5 * w - room, 0.5 * w + room)
        cy = top + band * (i + 0.5)
        half = np.array([math.cos(ang), math.sin(ang)]) * L / 2
        p0, p1 = np.array([cx, cy]) - half, np.array([cx, cy]) + half
        _draw_line(img, p0, p1, sigma, contrast)
        lines.append(PhantomLine(tuple(p0), tuple(p1), float(lengths[i]), float(width_mm), float(contrast)))
    img = np.clip(img + rng.normal(0, 1.5, img.shape).astype(np.float32), 0, 255).astype(np.uint8)
    # the marker on a white card in the plane of the "skin"
    img[quiet : quiet + panel, quiet : quiet + panel] = 255
    marker_px = int(round(side_px))
    aruco_dict = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    marker = cv2.aruco.generateImageMarker(aruco_dict, marker_id, marker_px)
    m0 = quiet + quiet
    img[m0 : m0 + marker_px, m0 : m0 + marker_px] = marker[..., None]
    corners = np.array([[m0, m0], [m0 + marker_px, m0], [m0 + marker_px, m0 + marker_px], [m0, m0 + marker_px]], float)
    truth = {
        "mm_per_px": float(marker_side_mm / marker_px),
        "lines": lines,
        "count": n_lines,
        # the length at half depth: each rounded end fades to half depth half a width past its end point
        "total_length_mm": float(lengths.sum() + n_lines * width_mm),
        "skin_mask": skin,
        "marker_side_mm": float(marker_side_mm),
        "marker_corners_px": corners,
    }
    return img, truth


def _lift_weight(face: FaceGeometry, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Smooth 0..1 weight: 1 over the lower face, 0 at and above the eyes and away from the face."""
    mid = np.array(face.eye_midpoint)
    ex = (np.array(face.eye_left) - np.array(face.eye_right)) / face.inter_ocular_px
    ey = np.array([-ex[1], ex[0]])
    iod = face.inter_ocular_px
    u = ((xx - mid[0]) * ex[0] + (yy - mid[1]) * ex[1]) / iod
    v = ((xx - mid[0]) * ey[0] + (yy - mid[1]) * ey[1]) / iod
    # smoothstep from v = 0.3 (below the eyes) to v = 0.8 (below the nose), fading out under the chin
    t = np.clip((v - 0.3) / 0.5, 0, 1)
    vert = t * t * (3 - 2 * t)
    t2 = np.clip((v - 1.9) / 0.4, 0, 1)
    vert *= 1 - t2 * t2 * (3 - 2 * t2)
    horiz = np.exp(-0.5 * (np.maximum(np.abs(u) - 0.8, 0) / 0.25) ** 2)
    return (vert * horiz).astype(np.float32)


#: half length of a synthetic fold at severity 1, as a fraction of its chord through the region's skin:
#: at severity 1.5 a fold still spans only 90 % of the chord, so it never leaves the measured skin
_LINE_HALF_FRACTION = 0.30
#: margin kept between a fold and the edge of its region's measurable skin (millimetres, beyond its width)
_LINE_MARGIN_MM = 1.5
#: two lines closer than this (millimetres, edge to edge) merge in the coarsest ridge filter (σ 1.2 mm)
_MERGE_REACH_MM = 2.0
#: shortest chord a fold is drawn on: at severity 1 the fold is then 60 % of it, about 8 mm long
_MIN_CHORD_MM = 13.0


@dataclass(frozen=True)
class FoldLayout:
    """Where :func:`simulate_visit` draws its folds on one face (base image pixels).

    Attributes
    ----------
    lines : dict of str to list of (centre, unit direction, chord length)
        Per region, two parallel folds along the long axis of the region's measurable skin, where the
        subject's own lines are fewest.
    mm_per_px : float
        Pixel size the layout assumes.
    face : FaceGeometry
    """

    lines: dict[str, list[tuple[np.ndarray, np.ndarray, float]]]
    mm_per_px: float
    face: FaceGeometry


def _chord(mask: np.ndarray, c: np.ndarray, along: np.ndarray) -> tuple[float, float] | None:
    """Extent (t0, t1) along ``along`` of the run of ``mask`` through the point nearest ``c``."""
    t = np.arange(-2.0 * max(mask.shape), 2.0 * max(mask.shape), 0.5)
    q = np.round(c + t[:, None] * along).astype(int)
    ok = (q[:, 0] >= 0) & (q[:, 0] < mask.shape[1]) & (q[:, 1] >= 0) & (q[:, 1] < mask.shape[0])
    inside = np.zeros(len(t), dtype=bool)
    inside[ok] = mask[q[ok, 1], q[ok, 0]]
    if not inside.any():
        return None
    idx = np.flatnonzero(inside)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    run = min(runs, key=lambda rr: np.abs(t[rr]).min())
    return float(t[run[0]]), float(t[run[-1]])


def _chords(mask: np.ndarray, busy: np.ndarray, min_gap_px: float,
            min_chord_px: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Up to two parallel chords along the principal axis of a region's mask, on skin free of lines.

    Candidate chords run parallel to the region's long axis at offsets across it. A fold at the largest
    severity covers 90 % of its chord; a chord is usable only where no existing line comes within reach of
    that stretch (``busy``: the subject's own folds and lines, widened by the distance at which the ridge
    filter merges two lines), because a fold drawn there would merge with a line of the subject and its
    change would not be its own. Chords shorter than ``min_chord_px`` are not used where longer ones exist
    (a fold a few millimetres long is a dot whose ends decide its length). Among the usable ones the two
    longest at least ``min_gap_px`` apart are kept; on skin where every chord meets a line, the two least
    crowded.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 20:
        return []
    pts = np.column_stack([xs, ys]).astype(float)
    centroid = pts.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov((pts - centroid).T))
    along = evecs[:, int(np.argmax(evals))]
    across = np.array([-along[1], along[0]])
    width = float(np.ptp((pts - centroid) @ across))
    candidates = []
    for off in np.linspace(-0.45, 0.45, 31) * width:
        c = centroid + across * off
        ext = _chord(mask, c, along)
        if ext is None or ext[1] - ext[0] <= 4:
            continue
        t0, t1 = ext
        mid = c + along * (t0 + t1) / 2
        ts = np.linspace(-0.45, 0.45, 60) * (t1 - t0)
        q = np.round(mid + ts[:, None] * along).astype(int)
        q[:, 0] = np.clip(q[:, 0], 0, busy.shape[1] - 1)
        q[:, 1] = np.clip(q[:, 1], 0, busy.shape[0] - 1)
        candidates.append((float(busy[q[:, 1], q[:, 0]].mean()), off, mid, t1 - t0))
    if any(c[3] >= min_chord_px for c in candidates):
        candidates = [c for c in candidates if c[3] >= min_chord_px]
    # free chords first, longest first; where every chord meets a line (skin crowded with lines), the
    # least crowded ones
    candidates.sort(key=lambda x: (x[0] > 0, x[0], -x[3]))
    chosen: list[tuple[float, float, np.ndarray, float]] = []
    for cand in candidates:
        if chosen and (cand[0] > 0) != (chosen[0][0] > 0):
            break  # never a crowded chord beside a free one
        if all(abs(cand[1] - c[1]) >= min_gap_px for c in chosen):
            chosen.append(cand)
        if len(chosen) == 2:
            break
    return [(mid, along, length) for _, _, mid, length in sorted(chosen, key=lambda x: x[1])]


def _existing_lines(image: np.ndarray, mm: float, reach_mm: float) -> np.ndarray:
    """Where the subject's own lines are, widened by ``reach_mm``, as the measurement sees them.

    The image is filtered on the analysis grid of :func:`~toolkit.imaging.analyze_photo` (0.2 mm, with the
    scales the photo resolves) and a line is what the wrinkle measurement counts there.
    """
    grid_mm = min(mm, 0.25)
    k = mm / grid_mm
    fine = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC) if k > 1 else image
    wm = wrinkle_map(fine, grid_mm, source_mm_per_px=mm)
    _, centre = measure_wrinkles(wm, np.ones(wm.strength_pct.shape, dtype=bool))
    lines = centre.astype(np.uint8)
    r = max(1, round(reach_mm / grid_mm))
    lines = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    if k > 1:
        # back to the image's pixels, keeping a pixel busy if any part of it is
        lines = cv2.dilate(lines, np.ones((int(np.ceil(k)), int(np.ceil(k))), np.uint8))
        lines = cv2.resize(lines, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    return lines.astype(bool)


def fold_layout(base_image: np.ndarray, regions: Sequence[str] = DEFAULT_WRINKLE_REGIONS, *,
                face: FaceGeometry | None = None, mm_per_px: float | None = None,
                fold_width_mm: float = 1.5) -> FoldLayout:
    """Where the synthetic folds of ``regions`` go on ``base_image``: on the region's measurable skin.

    The region polygons come from the face mesh and the built-in template, the skin from
    :func:`~toolkit.imaging.skin.segment_skin` on the image itself, shrunk by the fold's half width and a
    margin, so a fold is drawn where a correct measurement of that region looks.
    """
    if face is None:
        search = FaceMeshBackend().detect(base_image)
        if len(search.faces) != 1:
            raise ConfigurationError(f"simulate_visit: need exactly one face in the base image, found {len(search.faces)}")
        face = search.faces[0]
    if face.mesh is None:
        raise ConfigurationError("simulate_visit: the face has no mesh; detect it with FaceMeshBackend")
    mm = float(mm_per_px) if mm_per_px else 63.0 / face.inter_ocular_px
    template = load_roi_template()
    polys = region_polygons(face.mesh, template, template.all_names)
    skin = segment_skin(base_image, face.mesh[:, :2], mm, sample_polygons=[polys[n] for n in template.skin_sample])
    margin_px = (fold_width_mm + _LINE_MARGIN_MM) / mm
    inner = shrink(skin.measurable, margin_px)
    masks = polygon_masks(base_image.shape, {r: polys[r] for r in regions})
    # the subject's own lines, widened by the distance within which the ridge filter merges two lines
    busy = _existing_lines(base_image, mm, _MERGE_REACH_MM + fold_width_mm / 2)
    lines = {}
    for r in regions:
        # inside the region's measurable skin and inside its polygon, away from both outlines
        region_inner = masks[r] & inner & shrink(masks[r], margin_px)
        # far enough apart that the coarsest ridge filter sees two lines, not one wide band
        lines[r] = _chords(region_inner, busy, max(7.0 / mm, 4 * fold_width_mm / mm), _MIN_CHORD_MM / mm)
    return FoldLayout(lines=lines, mm_per_px=mm, face=face)


def simulate_visit(
    base_image: np.ndarray,
    *,
    lift_mm: float = 0.0,
    wrinkle_change: Mapping[str, float] | None = None,
    mm_per_px: float | None = None,
    seed: int = 0,
    perturb: bool = True,
    wrinkle_regions: Sequence[str] = DEFAULT_WRINKLE_REGIONS,
    face: FaceGeometry | None = None,
    change_contrast: bool = True,
    change_length: bool = True,
    layout: FoldLayout | None = None,
    fold_width_mm: float = 1.5,
    fold_contrast: float = 0.35,
) -> tuple[np.ndarray, dict]:
    """Make a follow-up photo with a known lift, a known change of folds and re-capture perturbations.

    Parameters
    ----------
    base_image : (M, N, 3) uint8 ndarray
        Frontal RGB portrait (e.g. from :func:`portrait`).
    lift_mm : float
        Upward displacement of the lower face (full below the nose, fading smoothly to zero at the eyes).
        The folds are drawn before the lift, so they move with the skin they lie on.
    wrinkle_change : mapping of region name to float, optional
        Relative change of the synthetic folds in ``wrinkle_regions`` (−0.3 = 30 % shorter and 30 % lighter,
        which is what a treatment does to a fold); regions not named keep severity 1. Pass an empty mapping
        for the unchanged reference folds, or ``wrinkle_regions=()`` for no synthetic folds at all.
    mm_per_px : float, optional
        Pixel size; default from the inter-ocular distance (63 mm).
    seed : int
        Seeds the perturbations (fold placement is fixed per region so visits are comparable).
    perturb : bool
        Apply re-capture perturbations: brightness ±10 %, rotation ≤ 1°, scale ±3 %, shift ≤ 1 px,
        sensor noise (σ = 2 grey levels), JPEG quality 80.
    wrinkle_regions : sequence of str
    face : FaceGeometry, optional
        Face of ``base_image`` with its mesh (found with :class:`FaceMeshBackend` when omitted).
    change_contrast, change_length : bool
        The change scales the folds' contrast and their length (shorter *and* lighter, the default);
        switch one off to change only the other (lightening alone, or shortening alone).
    layout : FoldLayout, optional
        Where the folds go (:func:`fold_layout`); computed when omitted (pass it to make many visits of
        one face quickly).
    fold_width_mm, fold_contrast : float
        Full width at half maximum of a fold and its darkening at severity 1 (at least two photo pixels
        wide, so that the photo can show it).

    Returns
    -------
    image : (M, N, 3) uint8 ndarray
    truth : dict
        ``lift_mm``, ``region_lift_mm`` (expected lift per region relative to the stable reference, on
        skin), per synthetic region ``wrinkle_length_mm`` (each fold's length at half depth: from end
        point to end point plus one width, as its rounded ends fade), ``wrinkle_contrast`` and ``wrinkle_depth_index``
        (Σ length × contrast in percent, the quantity :func:`~toolkit.imaging.wrinkles.measure_wrinkles`
        reports as ``depth_index``), ``mm_per_px`` and the perturbation values (``brightness_gain``,
        ``rotation_deg``, ``scale``, ``shift_px``, ``noise_sd``, ``jpeg_quality``).
    """
    changes = dict(wrinkle_change or {})
    unknown = [r for r in changes if r not in wrinkle_regions]
    if unknown:
        raise ConfigurationError(f"wrinkle_change names regions without synthetic folds: {unknown}; "
                                 f"folds are drawn in {list(wrinkle_regions)}")
    if layout is None or any(r not in layout.lines for r in wrinkle_regions):
        layout = fold_layout(base_image, tuple(wrinkle_regions), face=face, mm_per_px=mm_per_px,
                             fold_width_mm=fold_width_mm)
    face = layout.face
    mm = layout.mm_per_px
    rng = np.random.default_rng(seed)
    h, w = base_image.shape[:2]
    img = base_image.astype(np.float32)
    w_len, w_con, w_depth = {}, {}, {}
    width_mm = max(fold_width_mm, 2.0 * mm)  # at least two photo pixels wide
    sigma_px = width_mm / mm / (2 * math.sqrt(2 * math.log(2)))
    for region in wrinkle_regions:
        sev = max(0.0, 1.0 + changes.get(region, 0.0))
        contrast = fold_contrast * (sev if change_contrast else 1.0)
        total = 0.0
        for centre, along, chord in layout.lines.get(region, []):
            half_len = _LINE_HALF_FRACTION * chord * (sev if change_length else 1.0)
            if half_len <= 0 or contrast <= 0:
                continue
            pa, pb = centre - along * half_len, centre + along * half_len
            _draw_line(img, pa, pb, sigma_px=sigma_px, contrast=contrast)
            # the length at half depth: a rounded end darkens half as much half a width past its end point
            total += float(np.linalg.norm(pb - pa)) * mm + width_mm
        w_len[region] = total
        w_con[region] = contrast
        w_depth[region] = total * 100.0 * contrast

    # one remap: output pixel -> (inverse perturbation) -> (inverse lift) -> base pixel
    if perturb:
        gain = float(rng.uniform(0.9, 1.1))
        rot = float(rng.uniform(-1.0, 1.0))
        scale = float(rng.uniform(0.97, 1.03))
        shift = rng.uniform(-1.0, 1.0, 2)
        noise_sd, quality = 2.0, 80
    else:
        gain, rot, scale, shift, noise_sd, quality = 1.0, 0.0, 1.0, np.zeros(2), 0.0, None
    centre = np.array(face.eye_midpoint)
    fwd = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), rot, scale)
    fwd[:, 2] += shift
    inv = cv2.invertAffineTransform(fwd)
    # The warp is smooth: build it on a grid 4× coarser and interpolate (keeps a 1000 px visit < 0.2 s).
    # Coarse samples sit at the centres of step×step cells, the convention cv2.resize interpolates with.
    step = 4
    gh, gw = -(-h // step), -(-w // step)
    gy, gx = (np.mgrid[0:gh, 0:gw].astype(np.float32) + 0.5) * step - 0.5
    qx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    qy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    lift_px = lift_mm / mm
    if lift_px:
        # content moves up: the lifted photo at q shows the base at q + lift·weight (fixed point, 3 steps)
        src_y = qy.copy()
        for _ in range(3):
            src_y = qy + lift_px * _lift_weight(face, qx, src_y)
        qy = src_y
    full = (gw * step, gh * step)
    map_x = cv2.resize(qx.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    map_y = cv2.resize(qy.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    # Cubic, not linear: a camera samples the band-limited image its lens forms, and a re-capture is as
    # sharp as the first photo wherever its pixels fall. Linear interpolation would blur fine detail by an
    # amount that depends on the sub-pixel phase, varying across the face with the rotation and scale:
    # noise no camera makes.
    out = cv2.remap(img, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    if perturb:
        out = out * gain + rng.normal(0, noise_sd, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if quality is not None:
        ok, enc = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    # expected lift per region relative to the stable reference, in the base frame (coarse grid suffices)
    template = load_roi_template()
    cy, cx = np.mgrid[0:h:step, 0:w:step].astype(np.float32)
    masks = polygon_masks(cx.shape, {n: p / step for n, p in
                                     region_polygons(face.mesh, template, template.all_names).items()})
    wgt = _lift_weight(face, cx, cy)
    ref = np.zeros(cx.shape, dtype=bool)
    for n in template.lift_reference:
        ref |= masks[n]
    ref_w = float(np.median(wgt[ref])) if ref.any() else 0.0
    region_lift = {n: float((np.median(wgt[m]) - ref_w) * lift_mm) if m.any() else float("nan")
                   for n, m in masks.items() if n in template.regions}
    truth = {
        "lift_mm": float(lift_mm),
        "region_lift_mm": region_lift,
        "wrinkle_length_mm": w_len,
        "wrinkle_contrast": w_con,
        "wrinkle_depth_index": w_depth,
        "mm_per_px": mm,
        "brightness_gain": gain,
        "rotation_deg": rot,
        "scale": scale,
        "shift_px": tuple(float(v) for v in shift),
        "noise_sd": noise_sd,
        "jpeg_quality": quality,
    }
    return out, truth


def tilt_head(image: np.ndarray, *, pitch_deg: float = 0.0, yaw_deg: float = 0.0,
              face: FaceGeometry | None = None) -> np.ndarray:
    """The photo with the head turned in depth: its own 3-D face mesh rotated and the skin carried with it.

    Each triangle of the mesh (Delaunay, on the photo's vertices) is moved by the affine map that takes its
    corners to where the rotation R = Ry(yaw) · Rx(pitch) about the mesh's centre puts them (orthographic
    view; nearer triangles drawn last, so the nose hides what it should). Outside the face outline the photo is
    unchanged. The sign convention is that of :func:`~toolkit.imaging.face_qc.head_rotation`: a positive
    pitch tips the face down. What a nod does to lift can be measured with it: analyse the tilted photo
    against the untilted one.

    Parameters
    ----------
    image : (M, N, 3) uint8 ndarray
    pitch_deg, yaw_deg : float
    face : FaceGeometry, optional
        The face with its 3-D mesh (found with :class:`FaceMeshBackend` when omitted).
    """
    from scipy.spatial import Delaunay

    if face is None:
        found = FaceMeshBackend().detect(image).faces
        if len(found) != 1 or found[0].mesh is None:
            raise ValueError(f"tilt_head needs exactly one face with a mesh; found {len(found)}")
        face = found[0]
    p = np.asarray(face.mesh, dtype=np.float64)[:, :3]
    c = p.mean(axis=0)
    a, b = math.radians(pitch_deg), math.radians(yaw_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    q = (p - c) @ (ry @ rx).T + c
    triangles = Delaunay(p[:, :2]).simplices
    out = image.copy()
    h_img, w_img = image.shape[:2]
    for t in triangles[np.argsort(-q[triangles, 2].mean(axis=1))]:  # farthest first
        dst = q[t, :2].astype(np.float32)
        x, y, w, h = cv2.boundingRect(dst)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, w_img), min(y + h, h_img)
        if x1 <= x0 or y1 <= y0:
            continue
        m = cv2.getAffineTransform(p[t, :2].astype(np.float32), dst - np.float32([x0, y0]))
        patch = cv2.warpAffine(image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(inside, np.round((dst - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
        sub = inside.astype(bool)
        out[y0:y1, x0:x1][sub] = patch[sub]
    return out
