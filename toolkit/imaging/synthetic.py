"""Synthetic and sample photos with known truth, for validation, the demo and the notebooks.

- :func:`portrait` returns real portraits that ship inside installed packages (no download):
  scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain) and matplotlib's ``grace_hopper.jpg``.
- :func:`render_phantom` draws wrinkle-like lines of known length, width and contrast on a skin-like
  texture beside an ArUco marker of known size, and returns the image with its truth.
- :func:`simulate_visit` makes a follow-up photo from a baseline: a known smooth upward warp of the lower
  face (lift), a known change of synthetic wrinkle lines in named regions, and re-capture perturbations
  (brightness, rotation, scale, shift, sensor noise, JPEG re-encoding). It is fast enough to generate a
  whole demo study (≈0.1 s per 1000 px photo).

All images are RGB ``uint8`` arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.errors import ConfigurationError
from toolkit.imaging.faces import FaceGeometry, HaarCascadeBackend
from toolkit.imaging.regions import load_roi_template, region_masks
from toolkit.imaging.wrinkles import WrinkleParams

__all__ = ["PORTRAITS", "portrait", "PhantomLine", "render_phantom", "simulate_visit", "DEFAULT_WRINKLE_REGIONS"]

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
        ``mm_per_px``, ``lines`` (list of :class:`PhantomLine`), ``total_length_mm``, ``count``,
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
        "total_length_mm": float(lengths.sum()),
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


#: half length of a synthetic line at severity 1, as a fraction of its chord through the (shrunken) region:
#: at severity 1.5 a line still spans only 90 % of the chord, so it never leaves the region's mask
_LINE_HALF_FRACTION = 0.30
#: offset of the two lines from the region's axis, as a fraction of the region's width: off the centre of
#: the band, where a subject's own fold usually runs (a drawn line on top of it hides it, and the fold
#: reappears when the line shortens, so the measured change would not follow the drawn one)
_LINE_OFFSET_FRACTION = 0.28
#: margin kept between synthetic lines and the region outline (inter-ocular units), for the blurred line
#: ends and the few-pixel jitter of the detected eyes that place the region
_LINE_MARGIN_IOD = 0.015


def _line_layout(poly: np.ndarray, region: str) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Two parallel lines along a region's long axis, each as (centre, unit direction, chord length).

    In template units (inter-ocular distances). The long axis is the principal axis of the region's area
    (a slanted nasolabial band gets slanted lines); each line's chord is the part of it inside the region
    shrunk by :data:`_LINE_MARGIN_IOD`, so lines drawn on it are measured in full after registration. The
    placement is fixed per region (seeded by its name) so visits are comparable.
    """
    res = 400.0  # raster pixels per inter-ocular distance
    lo = poly.min(axis=0) - 0.05
    size = np.ceil((poly.max(axis=0) + 0.05 - lo) * res).astype(int) + 1
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - lo) * res).astype(np.int32)], 1)
    ys, xs = np.nonzero(mask)
    pts = np.column_stack([xs, ys]) / res + lo
    centroid = pts.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov((pts - centroid).T))
    along = evecs[:, int(np.argmax(evals))]
    across = np.array([-along[1], along[0]])
    r = max(1, int(round(_LINE_MARGIN_IOD * res)))
    inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    width = float(np.ptp((pts - centroid) @ across))
    jitter = np.random.default_rng(sum(map(ord, region))).uniform(-0.02, 0.02, 2)
    t = np.arange(-2.0, 2.0, 1.0 / res)
    out = []
    for k in (-1, 1):
        c = centroid + across * k * _LINE_OFFSET_FRACTION * width + jitter
        q = np.round((c + t[:, None] * along - lo) * res).astype(int)
        ok = (q[:, 0] >= 0) & (q[:, 0] < size[0]) & (q[:, 1] >= 0) & (q[:, 1] < size[1])
        inside = np.zeros(len(t), dtype=bool)
        inside[ok] = inner[q[ok, 1], q[ok, 0]] > 0
        if not inside.any():
            continue
        # the run of inside samples nearest to the line's nominal centre
        idx = np.flatnonzero(inside)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        run = min(runs, key=lambda rr: np.abs(t[rr]).min())
        t0, t1 = float(t[run[0]]), float(t[run[-1]])
        out.append((c + along * (t0 + t1) / 2, along, t1 - t0))
    return out


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
) -> tuple[np.ndarray, dict]:
    """Make a follow-up photo with a known lift, a known wrinkle change and re-capture perturbations.

    Parameters
    ----------
    base_image : (M, N, 3) uint8 ndarray
        Frontal RGB portrait (e.g. from :func:`portrait`).
    lift_mm : float
        Upward displacement of the lower face (full below the nose, fading smoothly to zero at the eyes).
    wrinkle_change : mapping of region name to float, optional
        Relative change of the synthetic wrinkles in ``wrinkle_regions`` (−0.3 = 30 % shorter and lighter);
        regions not named keep severity 1. Pass an empty mapping for the unchanged reference lines, or
        ``wrinkle_regions=()`` for no synthetic lines at all.
    mm_per_px : float, optional
        Pixel size; default from the inter-ocular distance (63 mm).
    seed : int
        Seeds the perturbations (line placement is fixed per region so visits are comparable).
    perturb : bool
        Apply re-capture perturbations: brightness ±10 %, rotation ≤ 1°, scale ±3 %, shift ≤ 1 px,
        sensor noise (σ = 2 grey levels), JPEG quality 80.
    wrinkle_regions : sequence of str
    face : FaceGeometry, optional
        Face of ``base_image`` (detected with the Haar backend when omitted).
    change_contrast : bool
        The wrinkle change also scales the lines' contrast (shorter *and* lighter, the default). ``False``
        changes only their length, so a length metric can be checked against the drawn length alone
        (lighter lines fall partly below any detection threshold and exaggerate a length change).

    Returns
    -------
    image : (M, N, 3) uint8 ndarray
    truth : dict
        ``lift_mm``, ``region_lift_mm`` (expected lift per region relative to the stable reference),
        ``wrinkle_length_mm`` and ``wrinkle_contrast`` per synthetic region, ``mm_per_px`` and the
        perturbation values (``brightness_gain``, ``rotation_deg``, ``scale``, ``shift_px``,
        ``noise_sd``, ``jpeg_quality``).
    """
    if face is None:
        search = HaarCascadeBackend().detect(base_image)
        if len(search.faces) != 1:
            raise ConfigurationError(f"simulate_visit: need exactly one face in the base image, found {len(search.faces)}")
        face = search.faces[0]
    rng = np.random.default_rng(seed)
    h, w = base_image.shape[:2]
    iod = face.inter_ocular_px
    mm = float(mm_per_px) if mm_per_px else 63.0 / iod
    img = base_image.astype(np.float32)

    template = load_roi_template()
    changes = dict(wrinkle_change or {})
    unknown = [r for r in changes if r not in wrinkle_regions]
    if unknown:
        raise ConfigurationError(f"wrinkle_change names regions without synthetic lines: {unknown}; "
                                 f"lines are drawn in {list(wrinkle_regions)}")
    mid = np.array(face.eye_midpoint)
    ex = (np.array(face.eye_left) - np.array(face.eye_right)) / iod
    ey = np.array([-ex[1], ex[0]])
    w_len, w_con = {}, {}
    # width matched to the finest analysis scale (a Gaussian line responds best at σ_filter = √2·σ_line),
    # and at least 1 mm FWHM, so the drawn line is what the wrinkle filter is tuned to find
    sigma_px = max(WrinkleParams().min_sigma_px / math.sqrt(2.0), 1.0 / mm / (2 * math.sqrt(2 * math.log(2))))
    for region in wrinkle_regions:
        sev = max(0.0, 1.0 + changes.get(region, 0.0))
        total = 0.0
        for centre_t, along_t, chord in _line_layout(template.polygon(region), region):
            half_len = _LINE_HALF_FRACTION * chord * sev
            if half_len <= 0:
                continue
            a, b = centre_t - along_t * half_len, centre_t + along_t * half_len
            pa = mid + iod * (a[0] * ex + a[1] * ey)
            pb = mid + iod * (b[0] * ex + b[1] * ey)
            _draw_line(img, pa, pb, sigma_px=sigma_px, contrast=0.35 * (sev if change_contrast else 1.0))
            total += float(np.linalg.norm(pb - pa)) * mm
        w_len[region] = total
        w_con[region] = 0.35 * (sev if change_contrast else 1.0)

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
    # amount that depends on the sub-pixel phase (a one-pixel line loses half its contrast half-way
    # between pixels), varying across the face with the rotation and scale: noise no camera makes.
    out = cv2.remap(img, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    if perturb:
        out = out * gain + rng.normal(0, noise_sd, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if quality is not None:
        ok, enc = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    # expected lift per region relative to the stable reference, in the base frame (coarse grid suffices)
    cy, cx = np.mgrid[0:h:step, 0:w:step].astype(np.float32)
    small = FaceGeometry(box=tuple(v / step for v in face.box),
                         eye_right=(face.eye_right[0] / step, face.eye_right[1] / step),
                         eye_left=(face.eye_left[0] / step, face.eye_left[1] / step))
    masks = region_masks(cx.shape, small, template, (*template.regions, *template.reference_regions))
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
        "mm_per_px": mm,
        "brightness_gain": gain,
        "rotation_deg": rot,
        "scale": scale,
        "shift_px": tuple(float(s) for s in shift),
        "noise_sd": noise_sd,
        "jpeg_quality": quality,
    }
    return out, truth
