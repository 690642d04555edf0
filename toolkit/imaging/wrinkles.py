"""Wrinkle metrics per region from a contrast-normalised ridge map.

The image is first divided by its local mean (a wide Gaussian), so the ridge strength is a contrast in
percent of the surrounding skin brightness. That makes the metrics insensitive to exposure and to slow
shading across the face, and gives the strength a physical meaning (a depth proxy under fixed
lighting). A colour photo is normalised channel by channel and the channels averaged with the luma
weights; a channel the camera clipped is left out where it is clipped (see :func:`_relative_contrast`).

- Count, area fraction and mean strength: hysteresis threshold, each candidate trimmed at half its own
  plateau, Zhang–Suen thinning; a wrinkle is a skeleton piece at least ``min_length_mm`` long that
  reaches the high threshold.
- Length (and density): the ridge centre line found by non-maximum suppression across the line, every
  centre pixel graded by its strength between the thresholds and by its strength relative to the line's
  nearby peak, so the total moves smoothly when a photo of the same face is taken again instead of
  jumping by whole segments (see :func:`measure_wrinkles`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.imaging.ridges import local_mean, ridge_strength

__all__ = [
    "WrinkleParams",
    "WrinkleMetrics",
    "WrinkleMap",
    "wrinkle_map",
    "clipped_channels",
    "measure_wrinkles",
    "region_wrinkles",
    "skeleton_length",
    "thin",
]


@dataclass(frozen=True)
class WrinkleParams:
    """Detection settings (physical units, so results do not depend on the photo's resolution).

    Attributes
    ----------
    sigmas_mm : tuple of float
        Ridge filter scales in millimetres (a line of Gaussian width w responds best at √2·w).
    min_sigma_px : float
        Smallest scale in pixels (finer scales only follow noise and JPEG blocks).
    high_contrast_pct, low_contrast_pct : float
        Hysteresis thresholds on the contrast-equivalent strength, percent of local brightness.
    min_length_mm : float
        Shorter skeleton segments are not counted as wrinkles.
    min_length_px : float
        Lower bound of the minimum length in pixels at the analysis resolution.
    """

    sigmas_mm: tuple[float, ...] = (0.25, 0.5, 1.0)
    min_sigma_px: float = 2.0
    high_contrast_pct: float = 8.0
    low_contrast_pct: float = 4.0
    min_length_mm: float = 3.0
    min_length_px: float = 8.0

    def sigmas_px(self, mm_per_px: float) -> tuple[float, ...]:
        """Scales in pixels for a given pixel size (duplicates at the floor removed)."""
        out: list[float] = []
        for s in self.sigmas_mm:
            px = max(self.min_sigma_px, s / mm_per_px)
            if not out or px > out[-1] * 1.2:
                out.append(px)
        return tuple(out)


@dataclass(frozen=True)
class WrinkleMetrics:
    """Wrinkle metrics of one region."""

    count: int
    length_mm: float
    density_mm_per_cm2: float
    area_fraction: float
    ridge_strength: float
    region_area_mm2: float


@dataclass
class WrinkleMap:
    """Ridge maps of one image at the analysis resolution."""

    #: contrast-equivalent strength, percent of local brightness
    strength_pct: np.ndarray
    #: pixel size of the maps in millimetres
    mm_per_px: float
    params: WrinkleParams
    #: direction of the ridge normal (radians, image axes), where the strength is non-zero
    normal_angle: np.ndarray | None = None


#: Rec. 601 luma weights of R, G, B
_LUMA = (0.299, 0.587, 0.114)
#: a channel clipped on this fraction of its neighbourhood (or more) gives no contrast there
_CLIPPED_NEIGHBOURHOOD_CUTOFF = 0.25


def clipped_channels(rgb: np.ndarray, *, low: int = 3, high: int = 250) -> np.ndarray:
    """Bit mask (uint8) of the channels at or beyond the ends of the 8-bit range: bit c for channel c."""
    img = np.asarray(rgb)
    out = np.zeros(img.shape[:2], dtype=np.uint8)
    for c in range(3):
        out |= (((img[..., c] >= high) | (img[..., c] <= low)).astype(np.uint8) << c)
    return out


def _relative_contrast(image: np.ndarray, bg_sigma: float, clipped: np.ndarray | None) -> np.ndarray:
    """Brightness in percent of its local mean: of the luminance, or of each channel, luma-weighted.

    With an RGB image, each channel is divided by its own local mean and the three are averaged with the
    luma weights, which on colour-balanced skin equals the relative luminance. A channel's weight falls to
    zero where it is clipped on a quarter of its neighbourhood: bright skin saturates the red channel
    first (at +10 % exposure on a pale face, most of a bright forehead), and the relative luminance would
    then lose that channel's share of every line's contrast, about a third.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        return 100.0 * img / np.maximum(local_mean(img, bg_sigma), 4.0)
    # keep[c]: 1 where channel c is usable, falling to 0 where a quarter of its neighbourhood is clipped
    keep: list[np.ndarray | float] = []
    for c in range(3):
        bit = ((clipped >> c) & 1) if clipped is not None else None
        if bit is None or not bit.any():
            keep.append(1.0)
        else:
            frac = local_mean(bit.astype(np.float32), bg_sigma)
            keep.append(np.clip(1.0 - frac / _CLIPPED_NEIGHBOURHOOD_CUTOFF, 0.0, 1.0))
    # where every channel is clipped (a white collar, a specular highlight) nothing is usable: fall back
    # to the plain luma weights there, so the weights never all vanish
    floor = 1.0 - np.maximum(np.maximum(keep[0], keep[1]), keep[2])
    num = np.zeros(img.shape[:2], dtype=np.float32)
    den = np.zeros(img.shape[:2], dtype=np.float32)
    for c, luma in enumerate(_LUMA):
        ch = np.ascontiguousarray(img[..., c])
        weight = luma * np.maximum(keep[c], floor)
        num += weight * (100.0 * ch / np.maximum(local_mean(ch, bg_sigma), 4.0))
        den += weight
    return num / den


def wrinkle_map(image: np.ndarray, mm_per_px: float, params: WrinkleParams | None = None, *,
                clipped: np.ndarray | None = None) -> WrinkleMap:
    """Compute the contrast-normalised ridge strength of an RGB or grayscale image.

    Parameters
    ----------
    image : (M, N, 3) or (M, N) ndarray
        Photo (RGB) or luminance.
    mm_per_px : float
        Pixel size of ``image`` in millimetres.
    params : WrinkleParams, optional
    clipped : (M, N) uint8 ndarray, optional
        For an RGB ``image``: bit c set where channel c was clipped in the camera's file (see
        :func:`clipped_channels`). A clipped channel carries no texture, so where much of it is clipped
        the contrast comes from the other channels.
    """
    params = params or WrinkleParams()
    sigmas = params.sigmas_px(mm_per_px)
    # local mean over a window much wider than any wrinkle: divides out exposure and shading
    bg_sigma = max(8.0, 6 * sigmas[-1])
    rel = _relative_contrast(image, bg_sigma, clipped)
    strength, normal = ridge_strength(rel, sigmas, return_normal=True)
    # reflected borders create phantom ridges; nothing within two large scales of the edge is trusted
    edge = int(math.ceil(2 * sigmas[-1]))
    if edge > 0:
        strength[:edge] = 0
        strength[-edge:] = 0
        strength[:, :edge] = 0
        strength[:, -edge:] = 0
    return WrinkleMap(strength_pct=strength, mm_per_px=float(mm_per_px), params=params, normal_angle=normal)


# Kulpa's unbiased weights for 8-connected chains (Kulpa 1977, doi:10.1016/0146-664X(77)90097-7):
# plain 1 / √2 steps overestimate oblique lines by up to 8 %
_ORTH = 0.948
_DIAG = 1.343


def _link_lengths(skel: np.ndarray) -> np.ndarray:
    """Per-pixel length of the links to forward neighbours (8-connected, corners not double-counted)."""
    # _ORTH and _DIAG weigh orthogonal and diagonal links
    s = skel.astype(bool)
    p = np.pad(s, 1)
    c = p[1:-1, 1:-1]
    right = p[1:-1, 2:]
    down = p[2:, 1:-1]
    left = p[1:-1, :-2]
    dr = p[2:, 2:]
    dl = p[2:, :-2]
    length = _ORTH * ((c & right).astype(np.float32) + (c & down))
    # a diagonal step is a link only when no orthogonal pixel already joins the two (an L corner)
    length += _DIAG * (c & dr & ~right & ~down)
    length += _DIAG * (c & dl & ~left & ~down)
    return length


def skeleton_length(skel: np.ndarray) -> float:
    """Length in pixels of a one-pixel-wide skeleton (Kulpa's weights: orthogonal 0.948, diagonal 1.343)."""
    return float(_link_lengths(skel).sum())


def _zhang_suen_tables() -> tuple[np.ndarray, np.ndarray]:
    """Removal decision of both Zhang–Suen sub-iterations for each of the 256 neighbourhoods.

    Bit k of the code is neighbour P(k+2) in the order P2 (north), P3 (north-east) … P9 (north-west).
    """
    tables = []
    for step in (0, 1):
        table = np.zeros(256, dtype=bool)
        for code in range(256):
            p = [(code >> k) & 1 for k in range(8)]  # p[0] = P2 … p[7] = P9
            b = sum(p)
            a = sum(1 for k in range(8) if p[k] == 0 and p[(k + 1) % 8] == 1)
            p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
            if step == 0:
                ok = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
            else:
                ok = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
            table[code] = 2 <= b <= 6 and a == 1 and ok
        tables.append(table)
    return tables[0], tables[1]


_ZS_TABLES = _zhang_suen_tables()
#: (row, column) offsets of the neighbours P2..P9, clockwise from north: bit k of a lookup code is P(k + 2)
_ZS_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def thin(binary: np.ndarray, *, max_iterations: int = 100) -> np.ndarray:
    """One-pixel-wide skeleton of a binary image (Zhang–Suen thinning with lookup tables).

    Written here because ``cv2.ximgproc`` is not in the headless OpenCV wheel and importing
    ``skimage.morphology`` costs seconds in every fresh worker process.

    Parameters
    ----------
    binary : (M, N) bool ndarray

    Returns
    -------
    (M, N) bool ndarray
    """
    img = np.pad(np.asarray(binary, dtype=bool), 1).astype(np.uint8)
    flat = img.ravel()
    width = img.shape[1]
    # only foreground pixels can be removed: look up their neighbourhoods alone (flat indices; the
    # padding keeps every neighbour inside the image), and drop removed pixels from the list
    idx = np.flatnonzero(flat)
    offsets = [dy * width + dx for dy, dx in _ZS_NEIGHBOURS]
    for _ in range(max_iterations):
        changed = False
        for table in _ZS_TABLES:
            code = flat[idx + offsets[0]].copy()
            for bit in range(1, 8):
                code |= flat[idx + offsets[bit]] << bit
            remove = table[code]
            if remove.any():
                flat[idx[remove]] = 0
                idx = idx[~remove]
                changed = True
        if not changed:
            break
    return img[1:-1, 1:-1].astype(bool)


def _thin_components(binary: np.ndarray) -> np.ndarray:
    """:func:`thin`, per connected component inside its bounding box when the mask is large and sparse."""
    if binary.size <= 250_000:
        return thin(binary)
    out = np.zeros(binary.shape, dtype=bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    for lab in range(1, n):
        x, y, w, h = stats[lab, :4]
        sub = labels[y : y + h, x : x + w] == lab
        out[y : y + h, x : x + w] |= thin(sub)
    return out


def _hysteresis(strength: np.ndarray, low: float, high: float) -> np.ndarray:
    weak = (strength >= low).astype(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    if n <= 1:
        return np.zeros(strength.shape, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[strength >= high])] = True
    keep[0] = False
    return keep[labels]


def _centreline(wmap: WrinkleMap, box: tuple[int, int, int, int], m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge centre pixels inside the region box, and the length of line each one stands for (pixels).

    A line that runs closer to horizontal than to vertical crosses each pixel column once: its centre
    pixel in a column is where the strength peaks along that column (strictly above the pixel above, at
    least the pixel below, so two equal pixels give one), and it stands for 1 / |cos| of the line's
    angle. Steeper lines are handled the same way along rows. Unlike thinning a thresholded mask, this
    makes no spurs whose number depends on the outline of the mask, so the length changes little when
    noise or resampling change the image a little.
    """
    r0, r1, c0, c1 = box
    H, W = wmap.strength_pct.shape
    S = wmap.strength_pct
    s_in = S[r0:r1, c0:c1]

    def shifted(dr: int, dc: int) -> np.ndarray:
        # S[r + dr, c + dc] over the box, edge values repeated outside the image
        rr = np.clip(np.arange(r0, r1) + dr, 0, H - 1)
        cc = np.clip(np.arange(c0, c1) + dc, 0, W - 1)
        return S[np.ix_(rr, cc)]

    th = wmap.normal_angle[r0:r1, c0:c1]
    nx, ny = np.abs(np.cos(th)), np.abs(np.sin(th))
    across_rows = ny >= nx  # normal mostly vertical: compare with the pixels above and below
    peak_v = (s_in > shifted(-1, 0)) & (s_in >= shifted(1, 0))
    peak_h = (s_in > shifted(0, -1)) & (s_in >= shifted(0, 1))
    centre = m & (s_in >= wmap.params.low_contrast_pct) & np.where(across_rows, peak_v, peak_h)
    step = 1.0 / np.maximum(nx, ny)
    # A line's response fades over a few sigma past its end and is half its plateau at the true end:
    # weigh each centre pixel by its strength relative to the strongest response within that reach
    # (none below 30 %, full above 70 %), which ends the line where it really ends, smoothly.
    reach = int(math.ceil(2.0 * wmap.params.sigmas_px(wmap.mm_per_px)[-1]))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    pad = reach + 1
    R0, R1, C0, C1 = max(0, r0 - pad), min(H, r1 + pad), max(0, c0 - pad), min(W, c1 + pad)
    local_peak = cv2.dilate(S[R0:R1, C0:C1], disk)[r0 - R0 : r1 - R0, c0 - C0 : c1 - C0]
    rel = s_in / np.maximum(local_peak, 1e-6)
    w_end = np.clip((rel - 0.3) / 0.4, 0.0, 1.0)
    return centre, np.where(centre, step * w_end, 0.0)


def measure_wrinkles(
    wmap: WrinkleMap,
    mask: np.ndarray,
    *,
    scale_to_mm: float | None = None,
) -> tuple[WrinkleMetrics, np.ndarray]:
    """Wrinkle metrics inside one region mask.

    Parameters
    ----------
    wmap : WrinkleMap
        Ridge maps from :func:`wrinkle_map`.
    mask : (M, N) bool ndarray
        Region mask at the same resolution.
    scale_to_mm : float, optional
        Millimetres per map pixel for reporting (default ``wmap.mm_per_px``).

    Returns
    -------
    metrics : WrinkleMetrics
    skeleton : (M, N) bool ndarray
        The counted wrinkle centre lines (for overlays).
    """
    mm = float(scale_to_mm or wmap.mm_per_px)
    p = wmap.params
    mask = np.asarray(mask, dtype=bool)
    area_px = int(mask.sum())
    skeleton_full = np.zeros(mask.shape, dtype=bool)
    if area_px == 0:
        return WrinkleMetrics(0, 0.0, 0.0, 0.0, float("nan"), 0.0), skeleton_full
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    m = mask[r0:r1, c0:c1]
    s = np.where(m, wmap.strength_pct[r0:r1, c0:c1], 0.0)
    binary = s >= p.low_contrast_pct
    # Counted wrinkles (count, area fraction, mean strength) come from thinned candidates. A candidate
    # that never reaches the high threshold cannot be counted: drop it before the costly thinning.
    nb, blab = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    if nb > 1:
        peak = np.zeros(nb)
        np.maximum.at(peak, blab[binary], s[binary])
        binary &= peak[blab] >= p.high_contrast_pct
    # Trim each candidate at half its own plateau strength: the response of a line fades over a few
    # sigma past its true end and is exactly half the plateau at the end, so its outline is the line's.
    skel = _thin_components(binary)
    nb, blab = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    if nb > 1:
        on = skel & binary
        labels_on = blab[on]
        vals = s[on]
        # median strength of each component's skeleton: sort by (label, value), take the middle of each run
        order = np.lexsort((vals, labels_on))
        labels_on, vals = labels_on[order], vals[order]
        bounds = np.searchsorted(labels_on, np.arange(nb + 1))
        counts = np.diff(bounds)
        has = counts > 0
        lo_i = bounds[:-1] + np.maximum(counts - 1, 0) // 2
        hi_i = bounds[:-1] + counts // 2
        plateau = np.zeros(nb)
        plateau[has] = 0.5 * (vals[lo_i[has]] + vals[np.minimum(hi_i[has], len(vals) - 1)])
        cut = np.maximum(p.low_contrast_pct, 0.5 * plateau)
        binary = binary & (s >= cut[blab])
        skel = _thin_components(binary)
    n, labels = cv2.connectedComponents(skel.astype(np.uint8), connectivity=8)
    links = _link_lengths(skel)
    comp_len = np.bincount(labels.ravel(), weights=links.ravel(), minlength=n)
    comp_peak = np.zeros(n)
    np.maximum.at(comp_peak, labels[skel], s[skel])
    min_len_px = max(p.min_length_px, p.min_length_mm / wmap.mm_per_px)
    # Counted wrinkles: long enough and reaching the high threshold somewhere (hysteresis).
    keep = (comp_len >= min_len_px) & (comp_peak >= p.high_contrast_pct)
    keep[0] = False
    # Length: the ridge centre line (see _centreline), each pixel weighed by where its strength sits
    # between the low and high thresholds and each connected piece by its centre-line length relative
    # to the minimum. Faint or short pieces that flicker in and out between two photos of the same face then
    # change the total a little, instead of by their whole length.
    if wmap.normal_angle is None:
        raise ValueError("this WrinkleMap has no normal_angle; build it with wrinkle_map()")
    centre, step = _centreline(wmap, (r0, r1, c0, c1), m)
    # a piece is everything above the low threshold that hangs together: wider than the centre line,
    # so a one-pixel gap in the centre line does not split a wrinkle into two short pieces
    nc, clab = cv2.connectedComponents((s >= p.low_contrast_pct).astype(np.uint8), connectivity=8)
    piece_len = np.bincount(clab.ravel(), weights=step.ravel(), minlength=nc)
    w_piece = np.clip((piece_len - 0.5 * min_len_px) / (0.5 * min_len_px), 0.0, 1.0)
    w_piece[0] = 0.0
    # and a speck of centre line (a pore or a bump of texture beside a wrinkle) does not count as line:
    # centre-line fragments shorter than 15 % of the minimum length weigh nothing, from 30 % fully
    nf, flab = cv2.connectedComponents(centre.astype(np.uint8), connectivity=8)
    frag_len = np.bincount(flab.ravel(), weights=step.ravel(), minlength=nf)
    w_frag = np.clip((frag_len - 0.15 * min_len_px) / (0.15 * min_len_px), 0.0, 1.0)
    w_frag[0] = 0.0
    w_strength = np.clip((s - p.low_contrast_pct) / (p.high_contrast_pct - p.low_contrast_pct), 0.0, 1.0)
    length_px = float(np.sum(step * w_strength * w_piece[clab] * w_frag[flab]))
    kept_skel = keep[labels]
    # the thresholded area that belongs to a counted wrinkle
    nb, blab = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    blob_keep = np.zeros(nb, dtype=bool)
    blob_keep[np.unique(blab[kept_skel])] = True
    blob_keep[0] = False
    area_frac = float(blob_keep[blab].sum()) / area_px
    count = int(keep.sum())
    area_mm2 = area_px * mm * mm
    length_mm = length_px * mm
    strength = float(s[kept_skel].mean()) if count else float("nan")
    skeleton_full[r0:r1, c0:c1] = kept_skel
    metrics = WrinkleMetrics(
        count=count,
        length_mm=length_mm,
        density_mm_per_cm2=length_mm / (area_mm2 / 100.0),
        area_fraction=area_frac,
        ridge_strength=strength,
        region_area_mm2=area_mm2,
    )
    return metrics, skeleton_full


def region_wrinkles(
    wmap: WrinkleMap, masks: dict[str, np.ndarray], names: Sequence[str], *, scale_to_mm: float | None = None
) -> tuple[dict[str, WrinkleMetrics], np.ndarray]:
    """:func:`measure_wrinkles` for several regions; returns the metrics and the union of skeletons."""
    out: dict[str, WrinkleMetrics] = {}
    union = np.zeros(wmap.strength_pct.shape, dtype=bool)
    for name in names:
        metrics, skel = measure_wrinkles(wmap, masks[name], scale_to_mm=scale_to_mm)
        out[name] = metrics
        union |= skel
    return out, union
