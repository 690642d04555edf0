"""What a photographer checks on a face before a photo is measured: pose, framing, eyes, mouth, expression,
eyewear, and that a follow-up shows the same person as its baseline.

Everything here is read off the face mesh (proportions, so independent of resolution), except eyewear,
which is read off the pixels around the eyes:

- **Sunglasses**: the lids and the skin just around the eyes are far darker than the cheeks.
- **Spectacles**: a frame draws straight, continuous lines across the nasal bridge between the eyes and along
  the lower rims below them; skin there is smooth. The test asks for edges spanning most of the bridge's
  width *and* most of both lower rims.

Expression changes wrinkles (a smile deepens crow's feet and nasolabial folds), so a smile is reported, and a
follow-up whose expression differs from its baseline's fails QC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.imaging import mesh_topology as topo
from toolkit.imaging.skin import fill_polygon, grow, grow_by_each, mask_pixels, mask_window

__all__ = ["FaceState", "Eyewear", "face_state", "eyewear", "lens_zone", "shape_distance"]

#: vertices whose layout is one person's face shape and barely changes with expression: nose, eye corners,
#: the upper face outline and the nasal root
_SHAPE_VERTICES = (1, 4, 5, 6, 168, 197, 195, 2, 98, 327, 129, 358, 33, 133, 263, 362, 10, 338, 297, 332, 284,
                   251, 389, 356, 454, 109, 67, 103, 54, 21, 162, 127, 234, 151, 9, 8)


@dataclass(frozen=True)
class FaceState:
    """Proportions of one face, from its mesh.

    Attributes
    ----------
    eye_openness_r, eye_openness_l : float
        Lid opening (upper to lower lid at mid-eye) over the eye's width; ≈ 0.25–0.4 open, < 0.12 closed.
    mouth_openness : float
        Inner lip gap over the mouth's width; ≈ 0 closed.
    smile_index : float
        Height of the mouth corners above the middle of the mouth, over the mouth's width; ≈ 0 neutral,
        positive when the corners rise.
    yaw_index : float
        Nose tip offset from the middle of the face, in face widths (≈ 0 frontal).
    outside_fraction : float
        Fraction of mesh vertices outside the image (a partial face).
    """

    eye_openness_r: float
    eye_openness_l: float
    mouth_openness: float
    smile_index: float
    yaw_index: float
    outside_fraction: float

    def as_metrics(self) -> dict[str, float]:
        """Plain dict for the QC report."""
        return {k: float(v) for k, v in self.__dict__.items()}


def _frame(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the eye line (towards the subject's left) and down the face."""
    ex = mesh[topo.NAMED["outer_canthus_l"], :2] - mesh[topo.NAMED["outer_canthus_r"], :2]
    ex = ex / max(float(np.linalg.norm(ex)), 1e-9)
    return ex, np.array([-ex[1], ex[0]])


def face_state(mesh: np.ndarray, image_shape: tuple[int, ...]) -> FaceState:
    """Eye and mouth opening, smile, yaw and framing of a face from its (468, 2|3) mesh."""
    m = np.asarray(mesh, dtype=float)[:, :2]
    n = topo.NAMED
    ex, ey = _frame(m)

    def eye(side: str) -> float:
        width = abs(float((m[n[f"outer_canthus_{side}"]] - m[n[f"medial_canthus_{side}"]]) @ ex))
        gap = float((m[n[f"lower_lid_{side}"]] - m[n[f"upper_lid_{side}"]]) @ ey)
        return max(gap, 0.0) / max(width, 1e-9)

    mouth_w = abs(float((m[n["oral_commissure_l"]] - m[n["oral_commissure_r"]]) @ ex))
    gap = float((m[n["lower_lip_inner"]] - m[n["upper_lip_inner"]]) @ ey)
    centre = (m[n["upper_lip_inner"]] + m[n["lower_lip_inner"]]) / 2
    corners = (m[n["oral_commissure_l"]] + m[n["oral_commissure_r"]]) / 2
    smile = float((centre - corners) @ ey) / max(mouth_w, 1e-9)
    r, l_, tip = m[n["cheek_r"]], m[n["cheek_l"]], m[n["nose_tip"]]
    yaw = float((tip - (r + l_) / 2) @ ex) / max(float((l_ - r) @ ex), 1e-9)
    h, w = image_shape[:2]
    outside = float(np.mean((m[:, 0] < 0) | (m[:, 1] < 0) | (m[:, 0] > w - 1) | (m[:, 1] > h - 1)))
    return FaceState(eye_openness_r=eye("r"), eye_openness_l=eye("l"), mouth_openness=max(gap, 0.0) / max(mouth_w, 1e-9),
                     smile_index=smile, yaw_index=yaw, outside_fraction=outside)


def _bony_similarity(mesh_a: np.ndarray, mesh_b: np.ndarray,
                     dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The least-squares similarity (Umeyama 1991, doi:10.1109/34.88573) carrying the bony face's vertices of
    ``mesh_a`` onto those of ``mesh_b`` in their first ``dims`` coordinates: both vertex sets centred, the
    rotation (no reflection) and the scale, with ``b0 ≈ scale · a0 @ rotation.T``."""
    a = np.asarray(mesh_a, dtype=float)[list(_SHAPE_VERTICES), :dims]
    b = np.asarray(mesh_b, dtype=float)[list(_SHAPE_VERTICES), :dims]
    a0, b0 = a - a.mean(axis=0), b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(b0.T @ a0)
    d = np.ones(dims)
    d[-1] = 1.0 if np.linalg.det(u @ vt) > 0 else -1.0
    scale = float((s * d).sum() / max((a0**2).sum(), 1e-12))
    return a0, b0, (u * d) @ vt, scale


def shape_distance(mesh_a: np.ndarray, mesh_b: np.ndarray) -> float:
    """RMS distance between two faces' shapes after the best similarity fit, in inter-ocular distances.

    Uses vertices that follow the bony face (nose, eye corners, upper outline), so a change of expression
    moves it little and another person's face moves it a lot.
    """
    a0, b0, rot, k = _bony_similarity(mesh_a, mesh_b, 2)
    fitted = k * a0 @ rot.T
    iod = float(np.linalg.norm(b0[12] - b0[14]))  # outer canthi in _SHAPE_VERTICES order: 33 and 263
    return float(np.sqrt(((fitted - b0) ** 2).sum(axis=1).mean())) / max(iod, 1e-9)


def head_rotation(mesh_from: np.ndarray, mesh_to: np.ndarray) -> tuple[float, float, float]:
    """How the head turned between two photos, from their 3-D meshes: (pitch, yaw, roll) in degrees.

    The rotation is the least-squares similarity (Umeyama 1991, doi:10.1109/34.88573) that carries the bony
    face's vertices of ``mesh_from`` onto those of ``mesh_to`` (x right, y down, z away from the camera, all
    in pixels), taken apart as R = Rz(roll) · Ry(yaw) · Rx(pitch). Pitch is a nod about the horizontal axis,
    ``y' = y cos θ - z sin θ``: positive when the face tips down (the forehead comes towards the camera, the
    nose tip drops). A change of pitch moves the lower face up or down against the eyes in the photo (its
    parts lie in front of and behind the eyes), which reads as lift.
    """
    if np.shape(mesh_from)[1] < 3 or np.shape(mesh_to)[1] < 3:
        raise ValueError("head_rotation needs meshes with depth (468, 3)")
    r = _bony_similarity(mesh_from, mesh_to, 3)[2]
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return pitch, yaw, roll


@dataclass(frozen=True)
class Eyewear:
    """What the pixels around the eyes say about eyewear.

    Attributes
    ----------
    periorbital_brightness : float
        Median luminance of the lids and the skin just around the eyes over the cheeks' (≈ 0.7–1 without
        eyewear; sunglasses make it far lower).
    bridge_edge_fraction, rim_edge_fraction : float
        Fraction of the nasal bridge's width and of the lower-rim arcs crossed by a straight, continuous edge
        (a frame); skin gives little.
    sunglasses, spectacles : bool
    iris_contrast : float
        The smaller, over the two eyes, of the iris's contrast against the sclera beside it (see
        :func:`_iris_contrast`): an open eye shows it, a closed lid does not.
    """

    periorbital_brightness: float
    bridge_edge_fraction: float
    rim_edge_fraction: float
    sunglasses: bool
    spectacles: bool
    iris_contrast: float = float("nan")


def _bridge(m: np.ndarray) -> np.ndarray:
    """The nasal bridge between the medial canthi, down a third of the way from the nasal root to the tip."""
    n = topo.NAMED
    down = 0.35 * (m[n["nose_tip"]] - m[n["nasion"]])
    return np.array([m[n["medial_canthus_r"]], m[n["medial_canthus_l"]], m[n["medial_canthus_l"]] + down,
                     m[n["medial_canthus_r"]] + down])


def _box(mask: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """The bounding box of ``mask``'s pixels (empty for an empty mask) and its row and column numbers,
    shaped to broadcast: a half-plane test need only run there."""
    if not mask.any():
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 1), dtype=np.int64), np.zeros((1, 0), dtype=np.int64)
    rows, cols = mask_window(mask, 0)
    return (rows, cols), np.arange(rows.start, rows.stop)[:, None], np.arange(cols.start, cols.stop)[None, :]


def _edge_columns(rel: np.ndarray, mask: np.ndarray, axis_angle: float, threshold: float) -> float:
    """Fraction of the mask's extent along ``axis_angle`` where a strong edge crosses it across the axis."""
    ys, xs = mask_pixels(mask)
    if len(xs) < 10:
        return float("nan")
    # the gradient on the mask's box and one pixel around it: the same differences as on the whole image
    rows, cols = mask_window(mask, 1)
    y0, x0 = rows.start, cols.start
    win = rel[rows, cols]
    if min(win.shape) < 2:
        win, y0, x0 = rel, 0, 0
    gy, gx = np.gradient(win)
    # the component of the gradient across the axis: a frame line running along the axis
    across = np.abs(-math.sin(axis_angle) * gx + math.cos(axis_angle) * gy)
    t = xs * math.cos(axis_angle) + ys * math.sin(axis_angle)
    bins = np.floor(t - t.min()).astype(int)
    strongest = np.zeros(bins.max() + 1)
    np.maximum.at(strongest, bins, across[ys - y0, xs - x0])
    return float(np.mean(strongest > threshold))


def eyewear(rgb: np.ndarray, mesh: np.ndarray, mm_per_px: float, cheek_mask: np.ndarray) -> Eyewear:
    """Look for sunglasses and spectacle frames around the eyes of a face (analysis-grid image and mesh)."""
    m = np.asarray(mesh, dtype=float)[:, :2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    shape = gray.shape
    px_mm = 1.0 / mm_per_px
    cheek = float(np.median(gray[cheek_mask])) if cheek_mask.any() else float(np.median(gray))
    # each eye filled and its distance map made once: the ring, the lower-rim band and the bridge's margin
    # are the eye grown by 5, 14, 4 and 1.5 mm
    eyes = [fill_polygon(shape, m[list(loop)]) for loop in (topo.EYE_R, topo.EYE_L)]
    grown = [grow_by_each(eye, (5.0 * px_mm, 14.0 * px_mm, 4.0 * px_mm, 1.5 * px_mm)) for eye in eyes]
    ring = grown[0][0] | grown[1][0]
    bright = float(np.median(gray[ring])) / max(cheek, 1.0) if ring.any() else float("nan")
    # edges in relative luminance (a frame is a step of several percent), lightly smoothed
    smooth = cv2.GaussianBlur(gray, (0, 0), max(0.5, 0.3 * px_mm))
    rel = smooth / max(cheek, 1.0)
    ex, _ = _frame(m)
    angle = math.atan2(ex[1], ex[0])
    bridge = fill_polygon(shape, _bridge(m))
    bridge &= ~(grown[0][3] | grown[1][3])
    threshold = 0.04 / max(0.3 * px_mm, 1.0)  # 4 % step per pixel at the smoothing scale
    bridge_frac = _edge_columns(rel, bridge, angle, threshold)
    # lower rims: the band 4–14 mm below each eye's lower lid
    rims = []
    for loop, (_, low, near, _) in zip((topo.EYE_R, topo.EYE_L), grown, strict=True):
        centre = m[list(loop)].mean(axis=0)
        band = low & ~near
        box, yy, xx = _box(band)
        band[box] &= ((xx - centre[0]) * -ex[1] + (yy - centre[1]) * ex[0]) > 0  # below the eye
        rims.append(_edge_columns(rel, band, angle, threshold))
    rim_frac = float(np.nanmin(rims)) if not all(np.isnan(rims)) else float("nan")
    sunglasses = bool(bright < 0.45)
    spectacles = bool(not sunglasses and bridge_frac >= 0.8 and rim_frac >= 0.6)
    return Eyewear(periorbital_brightness=bright, bridge_edge_fraction=bridge_frac, rim_edge_fraction=rim_frac,
                   sunglasses=sunglasses, spectacles=spectacles,
                   iris_contrast=_iris_contrast(rgb, m))


def _iris_contrast(rgb: np.ndarray, m: np.ndarray) -> float:
    """The smaller, over the two eyes, of the contrast of the iris against the sclera beside it.

    Along the eye's axis (outer to inner corner, at mid-opening) an open eye shows bright sclera, the dark
    iris and bright sclera again; a closed lid is even along it. Returns 1 − (darkest of the middle half) /
    (brighter of the two outer quarters), ≈ 0.4–0.8 open and ≈ 0–0.2 closed.
    """
    h, w = rgb.shape[:2]
    samples = []
    for (outer, inner), (up, low) in (((33, 133), (159, 145)), ((263, 362), (386, 374))):
        a, b = m[outer], m[inner]
        mid_shift = (m[up] + m[low]) / 2 - (a + b) / 2
        t = np.linspace(0.1, 0.9, 41)
        pts = a[None, :] + t[:, None] * (b - a)[None, :] + mid_shift[None, :] * np.sin(np.pi * t)[:, None]
        samples.append((np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1),
                        np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)))
    # the luminance is only read along the two eyes: blur their box with a margin beyond the blur's reach
    # (radius 4 px), which gives those pixels the values a blur of the whole image gives
    all_y = np.concatenate([ys for ys, _ in samples])
    all_x = np.concatenate([xs for _, xs in samples])
    y0, x0 = max(0, int(all_y.min()) - 6), max(0, int(all_x.min()) - 6)
    y1, x1 = min(h, int(all_y.max()) + 7), min(w, int(all_x.max()) + 7)
    lum = cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32),
                           (0, 0), 1.0)
    out = []
    for ys, xs in samples:
        prof = lum[ys - y0, xs - x0]
        sides = max(float(np.max(prof[:10])), float(np.max(prof[-10:])))
        middle = float(np.min(prof[10:31]))
        out.append(1.0 - middle / max(sides, 1.0))
    return float(min(out))




#: how far a spectacle lens may reach beyond the lid margins (millimetres): large frames reach 30 mm
_LENS_REACH_MM = 32.0


def lens_zone(shape: tuple[int, ...], mesh: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Where spectacles may cover the face: each eye grown by a large lens's reach, and the nasal bridge.

    Skin seen through a lens is magnified and tinted, and the rims draw lines across it: none of it is
    measured. Rims are too faint and varied to trace reliably, so the zone is as large as large frames,
    below the brows' upper margin (where frames rest).
    """
    m = np.asarray(mesh, dtype=float)[:, :2]
    px = _LENS_REACH_MM / mm_per_px
    out = grow(fill_polygon(shape, m[list(topo.EYE_R)]) | fill_polygon(shape, m[list(topo.EYE_L)]), px)
    # frames sit on the brows: nothing above the brows' upper margin is behind a lens
    ex, ey = _frame(m)
    brow_top = np.vstack([m[list(topo.BROW_R[:5])], m[list(topo.BROW_L[:5])]])
    level = float(np.min(brow_top @ ey))
    box, yy, xx = _box(out)
    out[box] &= (xx * ey[0] + yy * ey[1]) >= level
    return out | grow(fill_polygon(shape, _bridge(m)), 3.0 / mm_per_px)
