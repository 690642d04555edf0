"""Wrinkle metrics per region from a contrast-normalised ridge map.

The image is first divided by its local mean (a wide Gaussian), so the ridge strength is a contrast in
percent of the surrounding skin brightness. That makes the metrics insensitive to exposure and to slow
shading across the face, and gives the strength a physical meaning (a depth proxy under fixed
lighting). A colour photo is normalised channel by channel and the channels averaged with the luma
weights; a channel the camera clipped is left out where it is clipped (see :func:`_relative_contrast`).

Scales are in millimetres. Scales finer than the photo itself resolves are not used, so sensor noise and
JPEG blocks of an enlarged photo are not mistaken for fine lines; the thresholds are set relative to the
ridge texture of this photo's own skin (:func:`skin_texture_level`), never below fixed minimum contrasts.

A region's wrinkles are the pieces of ridge above the low threshold that reach the high one somewhere
(hysteresis) and whose centre line (non-maximum suppression across the line) is at least
``min_length_mm`` long. Count, length, area and depth all come from these same pieces, so they are zero
together and move together. Each piece is weighed by how clearly it passes the length and strength tests
(a ramp, not a step), and each centre pixel by its strength relative to the line's nearby peak, so a line
near a threshold changes the totals a little from one photo to the next instead of by its whole length.

The depth measure (``depth_index``) integrates the contrast along the wrinkles (percent × millimetres): it
is proportional to the contrast of a line, which under fixed lighting follows its depth, and to its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from toolkit.imaging.ridges import local_mean, ridge_strength
from toolkit.imaging.skin import grow, mask_window

__all__ = [
    "WrinkleParams",
    "WrinkleMetrics",
    "WrinkleMap",
    "wrinkle_map",
    "clipped_channels",
    "measure_wrinkles",
    "skin_texture_level",
]


@dataclass(frozen=True)
class WrinkleParams:
    """Detection settings (physical units, so results do not depend on the photo's resolution).

    Attributes
    ----------
    sigmas_mm : tuple of float
        Ridge filter scales in millimetres (a line of Gaussian width w responds best at √2·w): fine lines
        to folds.
    min_sigma_px : float
        Scales finer than this many pixels of the analysis grid are not used.
    min_sigma_source_px : float
        Scales finer than this many pixels of the photo itself are not used (the photo does not resolve
        them; an enlarged photo's noise lives there).
    high_contrast_pct, low_contrast_pct : float
        Smallest hysteresis thresholds on the contrast-equivalent strength, percent of local brightness.
    high_over_texture, low_over_texture : float
        Thresholds as multiples of the skin's own ridge texture level (:func:`skin_texture_level`); the
        larger of the fixed and the relative threshold is used.
    min_length_mm : float
        Shorter pieces are not wrinkles.
    """

    sigmas_mm: tuple[float, ...] = (0.3, 0.6, 1.2)
    min_sigma_px: float = 1.0
    min_sigma_source_px: float = 0.7
    high_contrast_pct: float = 10.0
    low_contrast_pct: float = 5.0
    high_over_texture: float = 1.5
    low_over_texture: float = 0.75
    min_length_mm: float = 3.0

    def sigmas_px(self, mm_per_px: float, source_mm_per_px: float | None = None) -> tuple[float, ...]:
        """Scales in pixels of a grid of ``mm_per_px``, leaving out those the photo cannot resolve."""
        floor_mm = max(self.min_sigma_px * mm_per_px, self.min_sigma_source_px * (source_mm_per_px or 0.0))
        kept = [s / mm_per_px for s in self.sigmas_mm if s >= floor_mm * 0.999]
        return tuple(kept) if kept else (max(self.sigmas_mm) / mm_per_px,)

    def thresholds(self, texture_level: float | None) -> tuple[float, float]:
        """(low, high) thresholds for a photo whose skin has ``texture_level`` (percent)."""
        t = texture_level if texture_level is not None and np.isfinite(texture_level) else 0.0
        return max(self.low_contrast_pct, self.low_over_texture * t), max(self.high_contrast_pct, self.high_over_texture * t)


@dataclass(frozen=True)
class WrinkleMetrics:
    """Wrinkle metrics of one region (all from the same detected pieces)."""

    count: int
    length_mm: float
    density_mm_per_cm2: float
    area_fraction: float
    ridge_strength: float
    depth_index: float
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
    #: the scales used (pixels)
    sigmas_px: tuple[float, ...] = ()
    #: each colour channel's line contrast relative to the luminance's (see ``_relative_contrast``)
    channel_gains: tuple[float, float, float] | None = None

    @property
    def largest_sigma_px(self) -> float:
        """The largest ridge scale in pixels (from the parameters when the map does not record its scales)."""
        return float((self.sigmas_px or self.params.sigmas_px(self.mm_per_px))[-1])


#: Rec. 601 luma weights of R, G, B
_LUMA = (0.299, 0.587, 0.114)
#: a channel clipped on this fraction of its neighbourhood (or more) gives no contrast there
_CLIPPED_NEIGHBOURHOOD_CUTOFF = 0.25
#: a line ends where its strength falls from 70 % to 30 % of the strongest along it (see ``_centreline``)
_END_LO, _END_HI = 0.3, 0.7
#: a centre pixel is within this fraction of the highest strength along its normal within the reach
_NMS_TOL = 0.05
_NMS_REACH_MM = 0.4
#: rows per strip in which pixel-by-pixel arithmetic on whole maps is done (its temporaries stay in the cache)
_STRIP_ROWS = 64


def clipped_channels(rgb: np.ndarray, *, low: int = 3, high: int = 250) -> np.ndarray:
    """Bit mask (uint8) of the channels at or beyond the ends of the 8-bit range: bit c for channel c."""
    img = np.asarray(rgb)
    out = np.zeros(img.shape[:2], dtype=np.uint8)
    for c in range(3):
        out |= (((img[..., c] >= high) | (img[..., c] <= low)).astype(np.uint8) << c)
    return out


def _relative_contrast(image: np.ndarray, bg_sigma: float, clipped: np.ndarray | None,
                       reference: np.ndarray | None = None, gains: tuple[float, float, float] | None = None,
                       ) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """Brightness in percent of its local mean: of the luminance, or of each channel, luma-weighted.

    With an RGB image, each channel is divided by its own local mean and the three are averaged with the
    luma weights, which on colour-balanced skin equals the relative luminance. A channel's weight falls to
    zero where it is clipped on a quarter of its neighbourhood: bright skin saturates the red channel
    first (at +10 % exposure on a pale face, most of a bright forehead), and the relative luminance would
    then lose that channel's share of every line's contrast.

    The channels do not show a line equally: on skin, red light scatters deeper and a fold's relative
    contrast in red is about three quarters of the luminance's, in blue about 1.2 times. Averaging only
    the unclipped channels would therefore make every line on bright skin about 10 % stronger. Each
    channel's contrast gain relative to the luminance (the least-squares slope of its contrast on the
    luminance's, over ``reference`` pixels where nothing is clipped, unless ``gains`` are given) divides
    the weighted sum, so that where a channel drops out the others stand in for the luminance rather than
    for themselves. Where no channel is clipped the result is the relative luminance exactly (the
    luma-weighted slopes sum to one). Returns the contrast and the gains (None for a grayscale image).
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.asarray(img, dtype=np.float32)
        return 100.0 * img / np.maximum(local_mean(img, bg_sigma), 4.0), None
    # each channel's local mean, and that of its clipped pixels where it has any, over the whole image; the
    # rest is pixel by pixel, worked out in strips of rows (the same arithmetic in a fraction of the memory)
    means = [local_mean(np.asarray(img[..., c], dtype=np.float32), bg_sigma) for c in range(3)]
    clipped_near: list[np.ndarray | None] = [None, None, None]
    for c in range(3):
        bit = ((clipped >> c) & 1) if clipped is not None else None
        if bit is not None and bit.any():
            clipped_near[c] = local_mean(bit.astype(np.float32), bg_sigma)

    def contrast_and_keep(rows: slice) -> tuple[list[np.ndarray], list[np.ndarray | float]]:
        # keep[c]: 1 where channel c is usable, falling to 0 where a quarter of its neighbourhood is clipped
        keep = [1.0 if near is None else np.clip(1.0 - near[rows] / _CLIPPED_NEIGHBOURHOOD_CUTOFF, 0.0, 1.0)
                for near in clipped_near]
        rel = [100.0 * np.asarray(img[rows, :, c], dtype=np.float32) / np.maximum(means[c][rows], 4.0)
               for c in range(3)]
        return rel, keep

    def combined(rel: list[np.ndarray], keep: list[np.ndarray | float]) -> np.ndarray:
        # where every channel is clipped (a white collar, a specular highlight) nothing is usable: fall back
        # to the plain luma weights there, so the weights never all vanish
        floor = 1.0 - np.maximum(np.maximum(keep[0], keep[1]), keep[2])
        num = np.zeros(rel[0].shape, dtype=np.float32)
        den = np.zeros(rel[0].shape, dtype=np.float32)
        if all(isinstance(k, float) for k in keep):
            for c, luma in enumerate(_LUMA):
                weight = luma * np.maximum(keep[c], floor)
                num += weight * rel[c]
                den += weight
            return num / den
        for c, luma in enumerate(_LUMA):
            weight = luma * np.maximum(keep[c], floor)
            num += weight * (rel[c] - 100.0)
            den += weight * np.float32(gains[c])
        return 100.0 + num / den

    if gains is None:
        rel, keep = contrast_and_keep(slice(None))
        gains = _channel_gains(rel, keep, reference, clipped)
        return combined(rel, keep), gains
    out = np.empty(img.shape[:2], dtype=np.float32)
    for r0 in range(0, out.shape[0], _STRIP_ROWS):
        rows = slice(r0, min(out.shape[0], r0 + _STRIP_ROWS))
        out[rows] = combined(*contrast_and_keep(rows))
    return out, gains


def _channel_gains(rel: list[np.ndarray], keep: list[np.ndarray | float],
                   reference: np.ndarray | None, clipped: np.ndarray | None = None) -> tuple[float, float, float]:
    """Each channel's contrast relative to the luminance's: slope of (channel − 100) on (luma − 100).

    Fitted on ``reference`` pixels (every pixel when None) whose three channels are (nearly) fully usable, on a
    sparse grid. Bright skin can have its red channel clipped in specks all over the face, so that no
    neighbourhood is free of clipping; the fit then takes the pixels with no channel clipped at or next to
    them and on less than an eighth of their neighbourhood (without it, the gains fell back to one, and every
    line read without red was about a tenth stronger). (1, 1, 1) when fewer than 500 such pixels are left
    or the fit is degenerate.
    """
    reference = None if reference is None else np.asarray(reference, dtype=bool)

    def pixels(min_keep: float, clear: bool) -> np.ndarray:
        usable = np.ones(rel[0].shape, dtype=bool) if reference is None else reference.copy()
        for k in keep:
            if not isinstance(k, float):
                usable &= k >= min_keep
        if clear and clipped is not None:
            usable &= cv2.dilate((clipped > 0).view(np.uint8), np.ones((5, 5), np.uint8)) == 0
        return usable[::3, ::3]

    usable = pixels(0.95, clear=False)
    if int(usable.sum()) < 500 and clipped is not None and clipped.any():
        usable = pixels(0.5, clear=True)
    if int(usable.sum()) < 500:
        return (1.0, 1.0, 1.0)
    dev = [r[::3, ::3][usable].astype(np.float64) - 100.0 for r in rel]
    lum = sum(luma * d for luma, d in zip(_LUMA, dev, strict=True)) / sum(_LUMA)
    ss = float(np.dot(lum, lum))
    if not ss > 0:
        return (1.0, 1.0, 1.0)
    gains = tuple(float(np.dot(d, lum)) / ss for d in dev)
    if not all(0.2 <= g <= 5.0 for g in gains):
        return (1.0, 1.0, 1.0)
    return gains


def wrinkle_map(image: np.ndarray, mm_per_px: float, params: WrinkleParams | None = None, *,
                clipped: np.ndarray | None = None, source_mm_per_px: float | None = None,
                reference: np.ndarray | None = None,
                channel_gains: tuple[float, float, float] | None = None) -> WrinkleMap:
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
    source_mm_per_px : float, optional
        Pixel size of the photo the image was resampled from; scales it cannot resolve are left out.
    reference : (M, N) bool ndarray, optional
        Where the channels' contrast gains are fitted (the face's skin; the whole image when omitted);
        see :func:`_relative_contrast`.
    channel_gains : (float, float, float), optional
        The gains to use instead of fitting them (a follow-up uses its baseline's: the follow-up's own
        skin may be clipped where the baseline's is not).
    """
    params = params or WrinkleParams()
    sigmas = params.sigmas_px(mm_per_px, source_mm_per_px)
    # local mean over a window much wider than any wrinkle: divides out exposure and shading
    bg_sigma = max(8.0, 6 * sigmas[-1])
    rel, gains = _relative_contrast(image, bg_sigma, clipped, reference, channel_gains)
    strength, normal = ridge_strength(rel, sigmas, return_normal=True)
    # reflected borders create phantom ridges; nothing within two large scales of the edge is trusted
    edge = int(math.ceil(2 * sigmas[-1]))
    if edge > 0:
        strength[:edge] = 0
        strength[-edge:] = 0
        strength[:, :edge] = 0
        strength[:, -edge:] = 0
    return WrinkleMap(strength_pct=strength, mm_per_px=float(mm_per_px), params=params, normal_angle=normal,
                      sigmas_px=sigmas, channel_gains=gains)


def suppress_parallel(wmap: WrinkleMap, feature: np.ndarray, reach_px: float, max_angle_deg: float = 35.0,
                      spare: np.ndarray | None = None) -> WrinkleMap:
    """``wmap`` without the ridges that run along the outline of ``feature`` within ``reach_px`` of it.

    A feature's own border (the lip's vermilion edge and the shadow under the lower lip) is a line parallel to
    the feature's outline, a few millimetres from it where the face mesh places the outline a little inside;
    the lines of the skin around it (perioral lines) run across it. A ridge counts as the border where its
    normal points at the feature within ``max_angle_deg``; nothing in ``spare`` is taken for a border.
    """
    if wmap.normal_angle is None or not feature.any():
        return wmap
    outside = (~feature).astype(np.uint8)
    rows, cols = mask_window(grow(feature, reach_px + 2), 1)
    dist = cv2.distanceTransform(outside[rows, cols], cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near = (dist > 0) & (dist <= reach_px)
    if not near.any():
        return wmap
    # the direction away from the feature: the distance's gradient
    gx = cv2.Sobel(dist, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(dist, cv2.CV_32F, 0, 1, ksize=3)
    normal = wmap.normal_angle[rows, cols]
    along = np.abs(np.cos(normal) * gx + np.sin(normal) * gy) >= math.cos(math.radians(max_angle_deg)) * np.hypot(gx, gy)
    drop = near & along
    if spare is not None:
        drop &= ~spare[rows, cols]
    if not drop.any():
        return wmap
    strength = wmap.strength_pct.copy()
    strength[rows, cols][drop] = 0.0
    return replace(wmap, strength_pct=strength)


def _centreline(wmap: WrinkleMap, box: tuple[int, int, int, int], m: np.ndarray,
                low: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge centre pixels inside the region box, and the length of line each one stands for (pixels).

    A line that runs closer to horizontal than to vertical crosses each pixel column once: its centre
    pixel in a column is where the strength peaks along that column (strictly above the pixel above, at
    least the pixel below, so two equal pixels give one), and it stands for 1 / |cos| of the line's
    angle. Steeper lines are handled the same way along rows. Unlike thinning a thresholded mask, this
    makes no spurs whose number depends on the outline of the mask, so the length changes little when
    noise or resampling change the image a little.

    Which way a line runs is taken from the normal averaged along it (:func:`_smoothed_normal`), and a
    centre pixel must also be (within 5 %) the highest point along that normal within 0.4 mm: near a
    line's rounded end a column's peak can lie beside the axis, and those side peaks, counted, made every
    line 0.5–2.5 mm too long. The 5 % lets through the flat stretch where the response of one filter
    scale hands over to the next.
    """
    r0, r1, c0, c1 = box
    H, W = wmap.strength_pct.shape
    S = wmap.strength_pct
    s_in = S[r0:r1, c0:c1]

    def shifted(dr: int, dc: int) -> np.ndarray:
        # S[r + dr, c + dc] over the box, edge values repeated outside the image
        if r0 + dr >= 0 and r1 + dr <= H and c0 + dc >= 0 and c1 + dc <= W:
            return S[r0 + dr:r1 + dr, c0 + dc:c1 + dc]  # all inside: a view
        rr = np.clip(np.arange(r0, r1) + dr, 0, H - 1)
        cc = np.clip(np.arange(c0, c1) + dc, 0, W - 1)
        return S[np.ix_(rr, cc)]

    peak_v = (s_in > shifted(-1, 0)) & (s_in >= shifted(1, 0))
    peak_h = (s_in > shifted(0, -1)) & (s_in >= shifted(0, 1))
    centre = np.zeros(s_in.shape, dtype=bool)
    step = np.zeros(s_in.shape, dtype=np.float64)
    # only the few pixels that peak along a row or a column can be centre pixels: the rest of the work is
    # done at those alone
    rr, cc = np.nonzero(m & (s_in >= low) & (peak_v | peak_h))
    if rr.size == 0:
        return centre, step
    th = _smoothed_normal(wmap, box, rr, cc)
    nx, ny = np.abs(np.cos(th)), np.abs(np.sin(th))
    across_rows = ny >= nx  # normal mostly vertical: compare with the pixels above and below
    keep = np.where(across_rows, peak_v[rr, cc], peak_h[rr, cc])
    rr, cc, th, nx, ny = rr[keep], cc[keep], th[keep], nx[keep], ny[keep]
    if rr.size == 0:
        return centre, step
    nxs, nys = np.cos(th).astype(np.float32), np.sin(th).astype(np.float32)
    ys, xs = (rr + r0).astype(np.float32), (cc + c0).astype(np.float32)
    S32 = np.asarray(S, dtype=np.float32)
    s32 = s_in[rr, cc].astype(np.float32)

    def sample(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return _sample_at(S32, xs + dx, ys + dy)

    # and the highest along the line's normal nearby: beside a line's end a column's peak lies off the
    # axis, where a point nearer the axis is higher
    reach_n = max(1, int(round(_NMS_REACH_MM / wmap.mm_per_px)))
    ok = np.ones(rr.size, dtype=bool)
    for k in [float(j) for j in range(-reach_n, reach_n + 1) if j]:
        ok &= s32 >= sample(k * nxs, k * nys) * (1.0 - _NMS_TOL)
    rr, cc, nx, ny, nxs, nys, xs, ys, s32 = (a[ok] for a in (rr, cc, nx, ny, nxs, nys, xs, ys, s32))
    # A line's response fades over a few sigma past its end and is half its plateau at the true end:
    # weigh each centre pixel by its strength relative to the strongest response along the line within
    # that reach (none below 30 %, full above 70 %), which ends the line where it really ends, smoothly.
    # Only points along the line's own direction are compared, so a stronger fold beside it does not
    # shorten it.
    reach = 2.0 * wmap.largest_sigma_px
    tx, ty = -nys, nxs  # along the line
    along_peak = s32.copy()
    for k in (-1.0, -0.5, 0.5, 1.0):
        np.maximum(along_peak, sample(k * reach * tx, k * reach * ty), out=along_peak)
    w_end = np.clip((s32 / np.maximum(along_peak, 1e-6) - _END_LO) / (_END_HI - _END_LO), 0.0, 1.0)
    centre[rr, cc] = True
    step[rr, cc] = (1.0 / np.maximum(nx, ny)) * w_end
    return centre, step


def _sample_at(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` read by bilinear interpolation at the points ``(x, y)`` (edges repeated outside)."""
    n = x.size
    width = 4096  # OpenCV's remap takes maps of at most 32767 columns: lay the points out in rows
    rows = max(1, -(-n // width))
    mx = np.zeros(rows * width, dtype=np.float32)
    my = np.zeros(rows * width, dtype=np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(image, mx.reshape(rows, width), my.reshape(rows, width), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    out = out.reshape(rows * width, -1)[:n]
    return out[:, 0] if out.shape[1] == 1 else out


def _smoothed_normal(wmap: WrinkleMap, box: tuple[int, int, int, int], rr: np.ndarray,
                     cc: np.ndarray) -> np.ndarray:
    """The ridge normal at box pixels ``(rr, cc)``, averaged along the line over about one large filter scale.

    The Hessian's normal turns round a line's rounded end, where the response becomes a blob; taken
    pixel by pixel it would make an arc of "centre" pixels around each end, measured as extra length.
    Averaging the doubled angle, weighted by strength, keeps the normal of the line's body up to its end,
    while a fold's gentle curve (radius of centimetres) is followed. The average is smooth, so it is
    worked out on a grid a few times coarser and read back where needed.
    """
    r0, r1, c0, c1 = box
    H, W = wmap.strength_pct.shape
    sig = wmap.largest_sigma_px
    pad = int(math.ceil(3 * sig))
    R0, R1, C0, C1 = max(0, r0 - pad), min(H, r1 + pad), max(0, c0 - pad), min(W, c1 + pad)
    S = np.asarray(wmap.strength_pct[R0:R1, C0:C1], dtype=np.float32)
    th = np.asarray(wmap.normal_angle[R0:R1, C0:C1], dtype=np.float32)
    f = max(1, int(sig // 2))
    vec = cv2.merge([S * np.cos(2 * th), S * np.sin(2 * th)])
    if f > 1:
        vec = cv2.resize(vec, ((C1 - C0 + f - 1) // f, (R1 - R0 + f - 1) // f), interpolation=cv2.INTER_AREA)
    vec = cv2.GaussianBlur(vec, (0, 0), sig / f)
    # pixel centres of the coarse grid lie at (i + 0.5)·(size / coarse size) − 0.5 in the fine grid
    fy = (R1 - R0) / vec.shape[0]
    fx = (C1 - C0) / vec.shape[1]
    mx = ((cc + c0 - C0 + 0.5) / fx - 0.5).astype(np.float32)
    my = ((rr + r0 - R0 + 0.5) / fy - 0.5).astype(np.float32)
    v = _sample_at(vec, mx, my)
    return 0.5 * np.arctan2(v[:, 1], v[:, 0])


def skin_texture_level(wmap: WrinkleMap, skin: np.ndarray) -> float:
    """The ridge texture of a face's own skin: the 75th percentile of the strength on ``skin`` (percent).

    Most skin pixels are not on a wrinkle, so this follows the photo's texture (pores, sensor noise, JPEG
    blocks, crêpe-like skin) more than its wrinkles. A subject's follow-ups use their baseline's level, so
    a treatment that smooths the skin cannot move the thresholds it is measured with. NaN without skin.
    """
    vals = wmap.strength_pct[np.asarray(skin, dtype=bool)]
    return float(np.percentile(vals, 75)) if vals.size else float("nan")


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def measure_wrinkles(
    wmap: WrinkleMap,
    mask: np.ndarray,
    *,
    texture_level: float | None = None,
    scale_to_mm: float | None = None,
) -> tuple[WrinkleMetrics, np.ndarray]:
    """Wrinkle metrics inside one region mask.

    Parameters
    ----------
    wmap : WrinkleMap
        Ridge maps from :func:`wrinkle_map`.
    mask : (M, N) bool ndarray
        Region mask at the same resolution (skin only).
    texture_level : float, optional
        The skin's ridge texture (:func:`skin_texture_level`); raises the thresholds above it.
    scale_to_mm : float, optional
        Millimetres per map pixel for reporting (default ``wmap.mm_per_px``).

    Returns
    -------
    metrics : WrinkleMetrics
    centre_lines : (M, N) bool ndarray
        The centre lines of the counted wrinkles (for overlays).
    """
    mm = float(scale_to_mm or wmap.mm_per_px)
    p = wmap.params
    if wmap.normal_angle is None:
        raise ValueError("this WrinkleMap has no normal_angle; build it with wrinkle_map()")
    low, high = p.thresholds(texture_level)
    mask = np.asarray(mask, dtype=bool)
    area_px = int(np.count_nonzero(mask))
    lines_full = np.zeros(mask.shape, dtype=bool)
    if area_px == 0:
        return WrinkleMetrics(0, 0.0, 0.0, 0.0, float("nan"), 0.0, 0.0), lines_full
    area_mm2 = area_px * mm * mm
    rows, cols = mask_window(mask, 0)
    r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
    m = mask[r0:r1, c0:c1]
    s = np.where(m, wmap.strength_pct[r0:r1, c0:c1], 0.0)
    above = s >= low
    n, labels = cv2.connectedComponents(above.astype(np.uint8), connectivity=8)
    if n <= 1:
        return WrinkleMetrics(0, 0.0, 0.0, 0.0, float("nan"), 0.0, area_mm2), lines_full
    # each piece: its peak strength and the length of its centre line, ends graded (see _centreline)
    centre, step = _centreline(wmap, (r0, r1, c0, c1), m, low)
    peak = np.zeros(n)
    np.maximum.at(peak, labels[above], s[above])
    length_px = np.bincount(labels.ravel(), weights=step.ravel(), minlength=n)
    min_len_px = p.min_length_mm / wmap.mm_per_px
    # a piece weighs 0 below the minimum length or the high threshold, 1 from 1.5× the length and
    # 1.25× the threshold up, and in between in proportion
    weight = _ramp(length_px, 0.5 * min_len_px, min_len_px) * _ramp(peak, 0.5 * (low + high), high)
    weight[0] = 0.0
    counted = weight > 0
    # and each pixel by where its own strength lies between the thresholds: faint texture hanging on a
    # strong line adds little, and nothing jumps when the line fades past a threshold
    w_px = weight[labels] * _ramp(s, low, high)
    length = float(np.sum(step * w_px)) * mm
    depth = float(np.sum(step * w_px * s)) * mm
    on_line = centre & (w_px > 0)
    strength = float(np.average(s[on_line], weights=(step * w_px)[on_line])) if on_line.any() else float("nan")
    area_frac = float(np.sum(above * w_px)) / area_px
    lines_full[r0:r1, c0:c1] = on_line
    return (
        WrinkleMetrics(
            count=int(counted.sum()),
            length_mm=length,
            density_mm_per_cm2=length / (area_mm2 / 100.0),
            area_fraction=area_frac,
            ridge_strength=strength,
            depth_index=depth,
            region_area_mm2=area_mm2,
        ),
        lines_full,
    )
