"""The shipped real portraits as the imaging tests use them: at a size, with a no-change baseline visit."""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.imaging.synthetic import fold_layout, portrait, simulate_visit


def portrait_at(name: str, factor: float = 1) -> np.ndarray:
    """A shipped portrait enlarged ``factor`` times (cubic), toward clinical pixel sizes."""
    img = portrait(name)
    return cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC) if factor != 1 else img


def with_baseline(img: np.ndarray) -> tuple[object, np.ndarray]:
    """The fold layout of ``img`` and a baseline visit of it (re-capture perturbations, seed 100)."""
    layout = fold_layout(img)
    baseline, _ = simulate_visit(img, wrinkle_change={}, seed=100, layout=layout)
    return layout, baseline
