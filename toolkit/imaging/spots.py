"""Spots on the skin (freckles, moles, pimples, the red dots a treatment can leave) and their removal from the
wrinkle map.

A ridge filter answers a dark spot with a ring: around a round spot of Gaussian radius *s* the brightness
curves strongly along the circle and hardly across it between about *s* and *2s*, which is what a line looks
like to a Hessian (its normal runs along the circle). Left in, each spot of 1-3 mm reads as 2-4 mm of
"wrinkle": 20 spots drawn on the cheeks of the astronaut enlarged 2x added 80 mm of length.

**Finding a spot.** A spot is darker than *all* of its surroundings; no piece of line is. At each of a few
scales (the image smoothed by a Gaussian of that width; coarse scales on a reduced copy), a local minimum of
the brightness is a spot when the ring around it (radius :data:`RING` times the scale), once an even slope
across it (shading) is taken out,

- is brighter than the centre by ``min_contrast`` of its median brightness (the analysis asks at least the
  skin's own ridge texture level, so the blotches of mottled skin are not spots), and
- is even: its spread (brightest minus darkest point) is at most ``1 - min_evenness`` of that depth. A line
  through the point puts two dark points on the ring, a line's end one, two crossing lines four: on drawn
  lines their evenness is 0.2-0.4 or less, on drawn spots 0.6-0.9.

**Its size.** Along eight rays from the centre, the radius at which the brightness is halfway back from the
centre to the brightest the rays reach within 4 mm (the median of the rays, so a neighbour on one side does not
count), the smoothing taken out, gives the spot's own Gaussian radius *s*.

**What is removed.** A spot's ring lies within ``max(2s, s + 1 mm)`` of its centre (measured on drawn spots of
1-5 mm; the largest ridge scale reaches about a millimetre beyond the spot). Every piece of ridge above the low
threshold (formed as :func:`~toolkit.imaging.wrinkles.measure_wrinkles` forms them) that lies wholly within
the spots' reach goes. In a piece that leaves it (a ring joined to a line or to texture), the pixels within
reach whose normal runs along the circle round the spot (within :data:`MAX_ANGLE_DEG`) are cut, unless the
ridge goes on in the same direction past the reach (2 px and 2 mm beyond it): a line that runs into or through
a spot keeps its pixels, and one that passes beside it has its normal pointing at the spot where it comes
nearest, so it keeps them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from toolkit.imaging.skin import mask_window

if TYPE_CHECKING:
    from toolkit.imaging.wrinkles import WrinkleMap

__all__ = ["Spots", "find_spots", "remove_spots", "without_spots", "SCALES_MM", "MIN_CONTRAST"]

#: Gaussian scales (mm) at which spots are looked for: spots of about 1 to 5 mm across
SCALES_MM = (0.4, 0.6, 0.9, 1.35, 2.0)
#: the ring's radius, in scales (for a Gaussian spot found at its own scale, the ring lies where the smoothed
#: spot has faded to a fifth of its depth)
RING = 2.5
#: how far beyond a spot's own radius its ring of ridge response reaches (mm; the largest ridge scale)
REACH_MM = 1.0
#: points on the ring
_RING_POINTS = 24
#: rays along which a spot's size is read
_RAYS = 8
#: near a spot, a ridge pixel whose normal runs this close to the circle round the spot is its ring (degrees)
MAX_ANGLE_DEG = 35.0
#: the least contrast of a spot (fraction of its surroundings' brightness, at the scale it is found at)
MIN_CONTRAST = 0.05
#: the least evenness of a spot's ring: one minus its spread over the spot's depth (see the module docstring)
MIN_EVENNESS = 0.45
#: coarse scales are looked at on a reduced image, in which they are at least this many pixels wide
_REDUCED_SIGMA_PX = 1.5
#: a line running into a spot is seen to go on this far past the spot's reach (mm)
_BEYOND_MM = 2.0
#: how far from a spot's centre its size is read (mm)
_PROFILE_MM = 4.0
#: scales finer than this many pixels of the photo itself are not looked at (it does not resolve them)
_MIN_SOURCE_PX = 0.7
#: a Gaussian's radius at half its depth, in sigmas (sqrt(2 ln 2))
_HALF_DEPTH = math.sqrt(2 * math.log(2))


@dataclass(frozen=True)
class Spots:
    """Spots found in an image: centres (x, y, pixels), radius (the Gaussian radius of the spot itself,
    pixels) and contrast (fraction of the surrounding brightness, at the finest scale it was found at)."""

    xy: np.ndarray
    radius_px: np.ndarray
    contrast: np.ndarray

    def __len__(self) -> int:
        return len(self.radius_px)

    def joined(self, other: Spots) -> Spots:
        """These spots and ``other``'s (found on the same grid)."""
        if not len(other):
            return self
        return Spots(np.concatenate([self.xy, other.xy]), np.concatenate([self.radius_px, other.radius_px]),
                     np.concatenate([self.contrast, other.contrast]))


_EMPTY = Spots(np.zeros((0, 2)), np.zeros(0), np.zeros(0))


def _ring(radius: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return a, np.round(radius * np.sin(a)).astype(np.intp), np.round(radius * np.cos(a)).astype(np.intp)


def _evenness(smooth: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ring contrast (the ring's median brightness above the centre's, as a fraction of the median)
    and the ring's evenness (one minus its spread over that depth), once an even slope across the ring (shading,
    its first harmonic) is taken out."""
    a, dy, dx = _ring(radius, _RING_POINTS)
    ring = smooth[ys[:, None] + dy, xs[:, None] + dx]
    c, s = np.cos(a), np.sin(a)
    ring = ring - (2.0 / len(a)) * ((ring @ c)[:, None] * c + (ring @ s)[:, None] * s)
    centre = smooth[ys, xs]
    # the median is the surroundings: the few points where lines cross the ring do not move it
    level = np.median(ring, axis=1)
    depth = level - centre
    contrast = depth / np.maximum(level, 1.0)
    # how even the ring is: one minus its spread over the spot's depth (a line crossing the ring, or the arms
    # of two crossing lines, make it uneven)
    evenness = 1.0 - (ring.max(axis=1) - ring.min(axis=1)) / np.maximum(depth, 1e-6)
    return contrast, evenness


def _radius(smooth: np.ndarray, ys: np.ndarray, xs: np.ndarray, out_px: float, sigma: float) -> np.ndarray:
    """Each spot's own Gaussian radius (pixels), from the half-depth radius along rays of ``smooth``
    (smoothed by ``sigma`` pixels) reaching ``out_px``: halfway from the centre's brightness to the brightest
    the rays reach (their median), the smoothing taken out."""
    a = np.linspace(0.0, 2 * math.pi, _RAYS, endpoint=False)
    steps = np.arange(1, int(math.ceil(out_px)) + 1, dtype=float)
    ry = np.round(np.sin(a)[:, None] * steps).astype(np.intp)
    rx = np.round(np.cos(a)[:, None] * steps).astype(np.intp)
    prof = smooth[ys[:, None, None] + ry, xs[:, None, None] + rx]  # (spots, rays, steps)
    centre = smooth[ys, xs][:, None, None]
    far = np.median(prof.max(axis=2), axis=1)[:, None, None]
    back = prof >= centre + 0.5 * (far - centre)
    # the first step at which each ray is halfway back (the last one when it never is)
    first = np.where(back.any(axis=2), back.argmax(axis=2), len(steps) - 1)
    observed = np.median(steps[first], axis=1) / _HALF_DEPTH
    return np.sqrt(np.maximum(observed * observed - sigma * sigma, 0.0))


def find_spots(gray: np.ndarray, mm_per_px: float, where: np.ndarray, *, source_mm_per_px: float | None = None,
               min_contrast: float = MIN_CONTRAST, min_evenness: float = MIN_EVENNESS) -> Spots:
    """Dark spots of ``gray`` (2-D, any dtype) whose centres lie in ``where`` (bool, same shape).

    ``mm_per_px`` is the pixel size of ``gray``; ``source_mm_per_px`` that of the photo it was resampled
    from (scales it does not resolve are skipped). See the module docstring for the test.
    """
    if not where.any():
        return _EMPTY
    floor_mm = _MIN_SOURCE_PX * (source_mm_per_px or 0.0)
    scales = [s / mm_per_px for s in SCALES_MM if s >= floor_mm and s / mm_per_px >= 1.0]
    if not scales:
        return _EMPTY
    out_px = _PROFILE_MM / mm_per_px
    pad = int(math.ceil(max(RING * scales[-1] + 4 * scales[-1], out_px))) + 1
    rows, cols = mask_window(where, pad)
    img = np.asarray(gray[rows, cols], dtype=np.float32)
    inside = where[rows, cols]
    found = np.zeros(img.shape, dtype=np.uint8)
    xy, radius, contrast = [], [], []
    kernel = np.ones((3, 3), np.uint8)
    reduced: dict[int, np.ndarray] = {1: img}
    finest = None
    for s in scales:
        # a coarse scale is looked at on the image reduced by f (area averaging), at least 1.5 of its pixels wide
        f = max(1, 2 ** int(math.floor(math.log2(max(s / _REDUCED_SIGMA_PX, 1.0)))))
        if f not in reduced:
            reduced[f] = cv2.resize(img, (img.shape[1] // f, img.shape[0] // f), interpolation=cv2.INTER_AREA)
        # an f-pixel box has a variance of 1/12 of the reduced grid's pixel
        smooth = cv2.GaussianBlur(reduced[f], (0, 0), math.sqrt((s / f) ** 2 - (1 / 12 if f > 1 else 0.0)))
        if finest is None:
            # sizes are read on the full grid, at the finest scale
            finest = (smooth if f == 1 else cv2.GaussianBlur(img, (0, 0), s), s)
        r = RING * s / f
        edge = int(math.ceil(max(r, out_px / f))) + 1
        # local minima, with their ring inside the window
        cand = smooth <= cv2.erode(smooth, kernel)
        cand &= inside[f // 2::f, f // 2::f][:cand.shape[0], :cand.shape[1]]
        cand[:edge] = cand[-edge:] = False
        cand[:, :edge] = cand[:, -edge:] = False
        ys, xs = np.nonzero(cand)
        if not len(ys):
            continue
        # in the full grid: the centre of the reduced pixel
        fy, fx = ys * f + (f - 1) // 2, xs * f + (f - 1) // 2
        new = found[fy, fx] == 0
        ys, xs, fy, fx = ys[new], xs[new], fy[new], fx[new]
        rel, even = _evenness(smooth, ys, xs, r)
        ok = (rel >= min_contrast) & (even >= min_evenness)
        if not ok.any():
            continue
        fy, fx = fy[ok], fx[ok]
        own = _radius(finest[0], fy, fx, out_px, finest[1])
        # a spot found at a finer scale is not found again at a coarser one
        for y, x, rad in zip(fy, fx, np.maximum(own, s), strict=True):
            cv2.circle(found, (int(x), int(y)), int(math.ceil(rad)), 1, -1)
        xy.append(np.stack([fx + cols.start, fy + rows.start], axis=1).astype(float))
        radius.append(own)
        contrast.append(rel[ok])
    if not xy:
        return _EMPTY
    return Spots(np.concatenate(xy), np.concatenate(radius), np.concatenate(contrast))


def remove_spots(strength: np.ndarray, spots: Spots, low: float, mm_per_px: float,
                 normal_angle: np.ndarray | None = None) -> np.ndarray:
    """``strength`` without the spots' rings of response (see the module docstring). A copy when anything is
    removed."""
    if not len(spots):
        return strength
    reach = np.maximum(2.0 * spots.radius_px, spots.radius_px + REACH_MM / mm_per_px) + 1.0
    h, w = strength.shape[:2]
    near = np.zeros((h, w), dtype=np.uint8)
    for (x, y), r in zip(spots.xy, reach, strict=True):
        cv2.circle(near, (int(round(x * 16)), int(round(y * 16))), int(round(r * 16)), 1, -1, lineType=cv2.LINE_8,
                   shift=4)
    # one pixel beyond the disks' box, so a piece that leaves them is seen to leave
    rows, cols = mask_window(near.view(bool), 1)
    above = (strength[rows, cols] >= low).astype(np.uint8)
    n, labels = cv2.connectedComponents(above, connectivity=8)
    if n <= 1:
        return strength
    inside = near[rows, cols] != 0
    outside = np.bincount(labels[~inside], minlength=n)
    drop = (outside == 0) & (np.bincount(labels[inside], minlength=n) > 0)
    drop[0] = False
    out = strength
    if drop.any():
        out = strength.copy()
        out[rows, cols][drop[labels]] = 0.0
    if normal_angle is None:
        return out
    # a ring joined to a line or to texture outside: its arcs are cut off it, and what lies beyond stays
    sin_max = math.sin(math.radians(MAX_ANGLE_DEG))
    for (x, y), s, r in zip(spots.xy, spots.radius_px, reach, strict=True):
        x0, x1 = max(0, int(x - r)), min(w, int(math.ceil(x + r)) + 1)
        y0, y1 = max(0, int(y - r)), min(h, int(math.ceil(y + r)) + 1)
        win = out[y0:y1, x0:x1]
        if not (win >= low).any():
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        dy, dx = yy - y, xx - x
        dist = np.hypot(dx, dy)
        phi = np.arctan2(dy, dx)
        along_circle = np.abs(np.cos(normal_angle[y0:y1, x0:x1] - phi)) < sin_max
        cut = (dist <= r) & (dist >= 0.5 * s) & along_circle & (win > 0)
        if cut.any():
            # a line running into or through the spot goes on past its reach in the same direction, and keeps
            # its pixels; a ring stops there
            cy, cx = np.nonzero(cut)
            goes_on = np.ones(len(cy), dtype=bool)
            for far in (r + 2.0, r + 2.0 + _BEYOND_MM / mm_per_px):
                qy = np.clip(np.round(y + far * np.sin(phi[cy, cx])).astype(np.intp), 0, h - 1)
                qx = np.clip(np.round(x + far * np.cos(phi[cy, cx])).astype(np.intp), 0, w - 1)
                goes_on &= (strength[qy, qx] >= low) & (np.abs(np.cos(normal_angle[qy, qx] - phi[cy, cx])) < sin_max)
            cut[cy[goes_on], cx[goes_on]] = False
        if cut.any():
            if out is strength:
                out = strength.copy()
            out[y0:y1, x0:x1][cut] = 0.0
    return out


def without_spots(wmap: WrinkleMap, spots: Spots, texture_level: float | None) -> WrinkleMap:
    """A :class:`~toolkit.imaging.wrinkles.WrinkleMap` without the ridge response of ``spots``, its pieces
    formed at the low threshold for a skin of ``texture_level``."""
    if not len(spots):
        return wmap
    low, _ = wmap.params.thresholds(texture_level)
    return replace(wmap, strength_pct=remove_spots(wmap.strength_pct, spots, low, wmap.mm_per_px, wmap.normal_angle))
