"""Where the skin is: the face mesh's outline and features, and a colour/texture model of the photo's own skin.

Wrinkle and lift metrics are only meaningful on skin. Two sources decide what is skin:

1. **The mesh** (always): inside the face outline, outside the eyes, eyebrows, lips and the lower nose
   (alae and nostrils), each grown by a margin in millimetres.
2. **A skin model fitted on this photo**: a Gaussian of chromaticity (log R/G, log B/G) and fine texture learned on
   the cheeks and the nose bridge, against a mixture of Gaussians learned on what surrounds the face outline
   (hair, headwear, background, clothing) and on the eyebrows. A pixel is skin when the skin model explains
   it at least as well. Hair, a cap, a fringe or spectacle frames differ from the cheeks in colour or in
   texture; a deep fold is only darker, and darkness alone is not used.

Only non-skin that reaches the face outline is removed (hair falling over the forehead, a cap, the temples
of spectacles, a beard). A dark fold, a deep wrinkle or a shadow in the middle of the face differs from the
cheeks in texture or brightness, not in what it is: it is a hole in the model's mask, never a hole in the
skin. (Spectacle lenses are removed separately, see :func:`toolkit.imaging.face_qc.lens_zone`.)

The second output is the **anatomical edge band**: a strip along every boundary of the skin (face outline,
hairline, lip border, lid margins, brow edges, nostrils, spectacle rims), where a ridge filter responds to
the edge itself. Wrinkles are never measured there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from toolkit.imaging import mesh_topology as topo

__all__ = ["SkinParams", "SkinSegmentation", "segment_skin", "fill_polygon", "disk", "grow", "grow_by_each", "grown_loops",
           "mask_pixels", "mask_window", "shrink"]


@dataclass(frozen=True)
class SkinParams:
    """Settings of the skin segmentation (millimetres, so results do not depend on the resolution).

    Attributes
    ----------
    work_mm_per_px : float
        Pixel size at which the colour model runs (the mask is smooth at this scale).
    eye_margin_mm, brow_margin_mm, lip_margin_mm, nose_margin_mm : float
        How far the mesh's eye, brow, lip and lower-nose outlines are grown before they are cut out.
    edge_band_mm : float
        Width of the anatomical edge band on the skin side of every skin boundary.
    ring_inner_mm, ring_outer_mm : float
        The band outside the face outline whose pixels teach the model what is not skin.
    min_log_likelihood_ratio : float
        A pixel is skin-like when log p(skin) − log p(not skin) exceeds this.
    darkness_limit : float
        Natural-log luminance below the skin's median by more than this is not skin (a black frame); a
        fold's shadow is far brighter.
    """

    work_mm_per_px: float = 0.6
    eye_margin_mm: float = 2.0
    brow_margin_mm: float = 1.5
    lip_margin_mm: float = 1.0
    nose_margin_mm: float = 1.0
    edge_band_mm: float = 2.0
    ring_inner_mm: float = 3.0
    ring_outer_mm: float = 15.0
    min_log_likelihood_ratio: float = -1.0
    darkness_limit: float = 1.2


@dataclass
class SkinSegmentation:
    """Skin of one face on the analysis grid.

    Attributes
    ----------
    skin : (M, N) bool ndarray
        Skin pixels (inside the face outline, outside the facial features, not hair/headwear/frames …).
    measurable : (M, N) bool ndarray
        Skin outside the anatomical edge band: where wrinkles are measured. Made from ``skin`` when first
        read (a follow-up measured in its baseline's frame never reads its own), unless given.
    features : (M, N) bool ndarray
        Eyes, eyebrows, lips and lower nose, as cut out (with their margins).
    oval : (M, N) bool ndarray
        Inside the mesh's face outline.
    model_ok : bool
        The colour model could be fitted (enough cheek and surrounding pixels); without it only the mesh
        decides.
    edge_band_px : float
        Width of the anatomical edge band in pixels (what ``measurable`` leaves out along the skin's edge).
    """

    skin: np.ndarray
    features: np.ndarray
    oval: np.ndarray
    model_ok: bool = True
    edge_band_px: float = 0.0
    _measurable: np.ndarray | None = field(default=None, repr=False)
    _exclusions: list[Callable[[], np.ndarray]] = field(default_factory=list, repr=False)

    @property
    def measurable(self) -> np.ndarray:
        if self._measurable is None:
            measurable = shrink(self.skin, self.edge_band_px)
            for make in self._exclusions:
                measurable &= ~make()
            self._measurable, self._exclusions = measurable, []
        return self._measurable

    @measurable.setter
    def measurable(self, value: np.ndarray) -> None:
        self._measurable, self._exclusions = value, []

    def exclude_from_measurable(self, make: Callable[[], np.ndarray]) -> None:
        """Take the pixels of the mask ``make()`` out of :attr:`measurable`: at once when it has been made,
        else when it is first read (``make`` is then never called for a segmentation whose measurable skin
        is never read)."""
        if self._measurable is None:
            self._exclusions.append(make)
        else:
            self._measurable &= ~make()

    @property
    def skin_fraction_of_oval(self) -> float:
        """Fraction of the face outline that is skin."""
        n = int(self.oval.sum())
        return float(self.skin.sum()) / n if n else 0.0


def disk(radius_px: float) -> np.ndarray:
    """Elliptical structuring element of the given radius (at least 1 pixel)."""
    r = max(1, int(round(radius_px)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def fill_polygon(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """Boolean mask of a (K, 2) pixel polygon (sub-pixel vertices), clipped to ``shape``."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) >= 3 and np.all(np.isfinite(pts)):
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.view(bool)  # 0 or 1 only: the same bytes are a valid bool array


def mask_window(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The bounding box of ``mask``'s pixels grown by ``pad`` on every side, clipped to the image."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (slice(max(0, rows[0] - pad), min(mask.shape[0], rows[-1] + pad + 1)),
            slice(max(0, cols[0] - pad), min(mask.shape[1], cols[-1] + pad + 1)))


def mask_pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(mask)`` (row and column numbers, in row-major order), searched only within the mask's
    bounding box (what :func:`~toolkit.imaging.lift.measure_lift` takes in place of a mask that serves
    many fields)."""
    if not mask.any():
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    win = mask_window(mask, 0)
    ys, xs = np.nonzero(mask[win])
    return ys + win[0].start, xs + win[1].start


def grow(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """``mask`` grown by a disk of ``radius_px`` (exact Euclidean distance, computed around the mask only)."""
    mask = np.asarray(mask, dtype=bool)
    if radius_px < 0.5 or not mask.any():
        return mask.copy()
    # every pixel within the radius lies in the mask's box grown by the radius, and every mask pixel is in
    # that box: the distance transform of the box is exact there
    win = mask_window(mask, int(math.ceil(radius_px)) + 1)
    dist = cv2.distanceTransform((~mask[win]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out = np.zeros_like(mask)
    out[win] = dist <= radius_px
    return out


def grow_by_each(mask: np.ndarray, radii_px: tuple[float, ...]) -> list[np.ndarray]:
    """``[grow(mask, r) for r in radii_px]``, from one distance transform (the same masks)."""
    mask = np.asarray(mask, dtype=bool)
    big = [r for r in radii_px if r >= 0.5]
    if not big or not mask.any():
        return [mask.copy() for _ in radii_px]
    # the box grown by the largest radius holds every pixel within any of the radii and every mask pixel:
    # its exact distances are those of each radius's own box
    win = mask_window(mask, int(math.ceil(max(big))) + 1)
    dist = cv2.distanceTransform((~mask[win]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out = []
    for r in radii_px:
        if r < 0.5:
            out.append(mask.copy())
            continue
        grown = np.zeros_like(mask)
        grown[win] = dist <= r
        out.append(grown)
    return out


def shrink(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """``mask`` shrunk by a disk of ``radius_px`` (pixels nearer than that to the outside are dropped)."""
    mask = np.asarray(mask, dtype=bool)
    if radius_px < 0.5 or not mask.any():
        return mask.copy()
    # a one-pixel frame of outside pixels around the mask's box holds a nearest outside pixel of every mask
    # pixel (or the image edge does, as for the whole image)
    win = mask_window(mask, 1)
    dist = cv2.distanceTransform(mask[win].astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out = np.zeros_like(mask)
    out[win] = dist > radius_px
    return out


def grown_loops(shape: tuple[int, int], mesh_xy: np.ndarray, loops_mm, px_per_mm: float) -> np.ndarray:
    """Union of mesh contours (``(loop, margin_mm)`` pairs of vertex indices), each filled and grown by its
    margin."""
    out = np.zeros(shape, dtype=bool)
    for loop, margin in loops_mm:
        out |= grow(fill_polygon(shape, mesh_xy[list(loop)]), margin * px_per_mm)
    return out


def _feature_mask(shape: tuple[int, int], mesh_xy: np.ndarray, px_per_mm: float, p: SkinParams) -> np.ndarray:
    return grown_loops(shape, mesh_xy, ((topo.EYE_R, p.eye_margin_mm), (topo.EYE_L, p.eye_margin_mm),
                                        (topo.BROW_R, p.brow_margin_mm), (topo.BROW_L, p.brow_margin_mm),
                                        (topo.LIPS_OUTER, p.lip_margin_mm), (topo.NOSE_LOWER, p.nose_margin_mm)),
                       px_per_mm)


def _features(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (log R/G, log B/G, log texture) and natural-log luminance of an RGB uint8 image.

    The chromaticity is a ratio of channels, so shading does not move it: a fold's shadow has the
    chromaticity of the skin around it, while hair, a cap or a frame does not.
    """
    f = rgb.astype(np.float32) + 4.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    log_g = np.log(g)
    chroma_r = 10.0 * (np.log(r) - log_g)
    chroma_b = 10.0 * (np.log(b) - log_g)
    log_l = np.log(0.299 * r + 0.587 * g + 0.114 * b)
    # texture: RMS of the luminance's fine detail (one working pixel) over a few pixels
    detail = log_l - cv2.GaussianBlur(log_l, (0, 0), 1.0)
    texture = np.log(np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), 2.0)) + 1e-3)
    return np.dstack([chroma_r, chroma_b, texture]).reshape(-1, 3), log_l


#: smallest spread of each feature (10·log R/G, 10·log B/G, log texture): a camera's quantised chroma on
#: smooth skin can have almost none, and a model that narrow would call every other pixel of the same face
#: not skin
_FEATURE_FLOOR = np.diag([0.3, 0.3, 0.25]) ** 2


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(cov)
    d = x - mean
    # the quadratic form as a matrix product and a row-wise dot product (a three-operand einsum runs
    # as a slow generic loop)
    return -0.5 * np.einsum("ni,ni->n", d @ inv, d) - 0.5 * math.log(np.linalg.det(cov))


def _log_likelihood_ratio(features: np.ndarray, skin_px: np.ndarray, other_px: np.ndarray,
                          *, clusters: int = 6) -> np.ndarray | None:
    """log p(x | skin) − log p(x | not skin) for every row of ``features``; None without enough samples."""
    if len(skin_px) < 50 or len(other_px) < 50:
        return None
    mean = np.median(skin_px, axis=0)
    cov = np.cov(skin_px.T) + _FEATURE_FLOOR
    # trim the 10 % of cheek pixels least like the rest (a mole, a strand of hair, a shadow)
    d2 = np.einsum("ni,ij,nj->n", skin_px - mean, np.linalg.inv(cov), skin_px - mean)
    core = skin_px[d2 <= np.percentile(d2, 90)]
    mean = core.mean(axis=0)
    cov = 1.3 * np.cov(core.T) + _FEATURE_FLOOR
    log_skin = _log_gauss(features, mean, cov)
    scale = np.sqrt(np.diag(cov)).astype(np.float32)
    k = int(min(clusters, max(1, len(other_px) // 50)))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.1)
    cv2.setRNGSeed(12345)  # k-means++ seeding: the same photo always gives the same mask
    _, labels, _ = cv2.kmeans((other_px / scale).astype(np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    labels = labels.ravel()
    parts = []
    for j in range(k):
        xj = other_px[labels == j]
        if len(xj) < 10:
            continue
        parts.append(_log_gauss(features, xj.mean(axis=0), np.cov(xj.T) + _FEATURE_FLOOR) + math.log(len(xj) / len(other_px)))
    if not parts:
        return None
    return log_skin - np.logaddexp.reduce(np.array(parts), axis=0)


def segment_skin(
    rgb: np.ndarray,
    mesh_xy: np.ndarray,
    mm_per_px: float,
    *,
    sample_polygons: list[np.ndarray],
    params: SkinParams | None = None,
) -> SkinSegmentation:
    """Skin of the face in ``rgb`` (the analysis crop) from its mesh and a model of its own skin.

    Parameters
    ----------
    rgb : (M, N, 3) uint8 ndarray
        The analysis crop.
    mesh_xy : (468, 2) ndarray
        Mesh vertices in ``rgb`` pixels.
    mm_per_px : float
        Pixel size of ``rgb``.
    sample_polygons : list of (K, 2) ndarrays
        Where the skin model learns what skin looks like (the cheeks and the nose bridge).
    params : SkinParams, optional
    """
    p = params or SkinParams()
    shape = rgb.shape[:2]
    px_per_mm = 1.0 / mm_per_px
    oval = fill_polygon(shape, mesh_xy[list(topo.FACE_OVAL)])
    features = _feature_mask(shape, mesh_xy, px_per_mm, p)

    # the colour model runs on a copy at the working pixel size
    k = min(1.0, mm_per_px / p.work_mm_per_px)
    small = cv2.resize(rgb, (max(8, round(shape[1] * k)), max(8, round(shape[0] * k))), interpolation=cv2.INTER_AREA)
    ks = (small.shape[1] / shape[1], small.shape[0] / shape[0])
    sm_shape = small.shape[:2]
    mesh_small = mesh_xy * np.array(ks)
    work_px_per_mm = px_per_mm * ks[0]
    oval_s = fill_polygon(sm_shape, mesh_small[list(topo.FACE_OVAL)])
    feats_s = _feature_mask(sm_shape, mesh_small, work_px_per_mm, p)
    samples = np.zeros(sm_shape, dtype=bool)
    for poly in sample_polygons:
        samples |= fill_polygon(sm_shape, np.asarray(poly) * np.array(ks))
    samples &= oval_s & ~feats_s
    ring = grow(oval_s, p.ring_outer_mm * work_px_per_mm) & ~grow(oval_s, p.ring_inner_mm * work_px_per_mm)
    brows = fill_polygon(sm_shape, mesh_small[list(topo.BROW_R)]) | fill_polygon(sm_shape, mesh_small[list(topo.BROW_L)])
    feat_px, log_l = _features(small)
    # the model is only read inside the face outline: evaluate it on the outline's box, with a margin wider
    # than the blur below reaches (radius 4 px), so the outline's pixels get the same values as everywhere
    win = mask_window(oval_s, 6) if oval_s.any() else (slice(0, sm_shape[0]), slice(0, sm_shape[1]))
    llr_win = _log_likelihood_ratio(feat_px.reshape(*sm_shape, 3)[win].reshape(-1, 3), feat_px[samples.ravel()],
                                    feat_px[(ring | brows).ravel()])
    model_ok = llr_win is not None
    if model_ok:
        win_shape = (win[0].stop - win[0].start, win[1].stop - win[1].start)
        llr = np.zeros(sm_shape, dtype=np.float32)  # outside the box: never read
        llr[win] = cv2.GaussianBlur(llr_win.reshape(win_shape).astype(np.float32), (0, 0), 1.0)
        dark = log_l < np.median(log_l[samples]) - p.darkness_limit
        like = (llr > p.min_log_likelihood_ratio) & ~dark
        # non-skin counts only where it reaches the face outline (hair, a cap, spectacle temples, a beard)
        # or where it is very unlike skin anywhere (a spectacle bridge); a fold's shadow inside the face is
        # a hole in the model's mask, not in the skin
        unlike = (oval_s & ~like).astype(np.uint8)
        n, labels = cv2.connectedComponents(unlike, connectivity=8)
        rim = oval_s & ~(cv2.erode(oval_s.astype(np.uint8), disk(1)) > 0)
        outer = np.zeros(n, dtype=bool)
        outer[np.unique(labels[rim & (unlike > 0)])] = True
        outer[0] = False
        excluded_s = outer[labels]
        excluded = cv2.resize(excluded_s.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) > 0.5
    else:
        excluded = np.zeros(shape, dtype=bool)
    skin = oval & ~features & ~excluded
    # skin islands cut off from the face by hair or frames are not measured (all skin lies in the outline's box)
    box = mask_window(oval, 1) if oval.any() else (slice(0, shape[0]), slice(0, shape[1]))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(skin[box].view(np.uint8), connectivity=8)
    if n > 2:
        keep = stats[:, cv2.CC_STAT_AREA] >= 0.02 * stats[1:, cv2.CC_STAT_AREA].max()
        keep[0] = False
        skin = np.zeros(shape, dtype=bool)
        skin[box] = keep[labels]
    return SkinSegmentation(skin=skin, features=features, oval=oval, model_ok=model_ok,
                            edge_band_px=p.edge_band_mm * px_per_mm)
