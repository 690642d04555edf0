"""Growing and shrinking masks around their own box gives the whole image's exact Euclidean result."""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.imaging.skin import grow, shrink


def _distance(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def test_grow_and_shrink_equal_the_whole_image_distance_transform() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(5, 120, 2)
        mask = np.zeros((h, w), bool)
        for _ in range(rng.integers(1, 4)):  # boxes, some cut by the image edge
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            ry, rx = rng.integers(1, 30, 2)
            mask[max(0, cy - ry):cy + ry, max(0, cx - rx):cx + rx] = True
        if rng.random() < 0.3:
            mask |= rng.random((h, w)) < 0.02  # scattered specks far from the boxes
        radius = float(rng.uniform(0.5, 25))
        assert np.array_equal(grow(mask, radius), _distance(~mask) <= radius)
        assert np.array_equal(shrink(mask, radius), _distance(mask) > radius)


def test_small_radii_and_empty_masks_are_returned_as_they_are() -> None:
    mask = np.zeros((8, 8), bool)
    mask[3, 3] = True
    assert np.array_equal(grow(mask, 0.3), mask) and np.array_equal(shrink(mask, 0.3), mask)
    empty = np.zeros((8, 8), bool)
    assert not grow(empty, 5).any() and not shrink(empty, 5).any()
    assert grow(mask, 1.0).sum() == 5  # the pixel and its four neighbours at distance 1
