"""What a treatment does to a fold must be measured without bias from what else it does.

- Lightening alone (a shallower fold): the depth measure changes in proportion (slope 0.9–1.1).
- A lower-face lift together with a fold change: the measured fold change stays within 10 % of the same
  change measured without the lift (the follow-up is warped onto the baseline before it is measured), over
  four re-captures. The depth measure meets this; the length measure's spread between re-captures
  (SD ≈ 2 mm on a change of ≈ 7.5 mm) is too wide to show it with four, and it is recorded as a known miss.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from toolkit.imaging import analyze_photo
from toolkit.imaging.synthetic import fold_layout, portrait, simulate_visit

FOLDS = ("nasolabial_l", "nasolabial_r")


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, object, np.ndarray]:
    base = cv2.resize(portrait("astronaut"), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    layout = fold_layout(base, FOLDS)
    baseline, _ = simulate_visit(base, wrinkle_change={}, perturb=False, wrinkle_regions=FOLDS, layout=layout)
    return base, layout, baseline


def _fold_change(face, *, severity: float, lift_mm: float, seed: int, length: bool = True,
                 contrast: bool = True) -> tuple[dict, dict]:
    base, layout, baseline = face
    img, truth = simulate_visit(base, wrinkle_change=dict.fromkeys(FOLDS, severity - 1.0), lift_mm=lift_mm, seed=seed,
                                wrinkle_regions=FOLDS, layout=layout, change_length=length, change_contrast=contrast)
    res = analyze_photo(img, baseline=baseline, overlays=False)
    assert res.qc.passed, res.qc.reasons
    return res.regions.set_index("region").loc[list(FOLDS)], truth


def test_lightening_changes_the_depth_measure_in_proportion(face) -> None:
    base_table = analyze_photo(face[2], overlays=False).regions.set_index("region").loc[list(FOLDS)]
    _, truth1 = simulate_visit(face[0], wrinkle_change={}, perturb=False, wrinkle_regions=FOLDS, layout=face[1])
    true0 = sum(truth1["wrinkle_depth_index"].values())
    drawn, measured = [], []
    for sev in (0.9, 0.8, 0.7, 0.6):
        for seed in (1, 2, 3, 4):
            table, truth = _fold_change(face, severity=sev, lift_mm=0.0, seed=seed, length=False)
            drawn.append(sum(truth["wrinkle_depth_index"].values()) - true0)
            measured.append(float((table.wrinkle_depth_index - base_table.wrinkle_depth_index).sum()))
    slope = np.polyfit(drawn, measured, 1)[0]
    assert 0.9 <= slope <= 1.1, (slope, list(zip(np.round(drawn), np.round(measured), strict=True)))


LIFTS_MM = (0.0, 1.0, 2.0)


@pytest.fixture(scope="module")
def lifted(face) -> dict[float, pd.DataFrame]:
    """The fold change (severity 0.6) with and without a lower-face lift, per re-capture (seeds 1–4)."""
    base_table = analyze_photo(face[2], overlays=False).regions.set_index("region").loc[list(FOLDS)]
    out = {}
    for lift in LIFTS_MM:
        rows = []
        for seed in (1, 2, 3, 4):
            table, _ = _fold_change(face, severity=0.6, lift_mm=lift, seed=seed)
            rows.append((table[["wrinkle_length_mm", "wrinkle_depth_index"]] - base_table[
                ["wrinkle_length_mm", "wrinkle_depth_index"]]).sum())
        out[lift] = pd.DataFrame(rows)
    return out


@pytest.mark.parametrize("lift_mm", [1.0, 2.0])
def test_a_lift_does_not_change_the_measured_fold_depth(lifted, lift_mm: float) -> None:
    without = lifted[0.0].wrinkle_depth_index
    with_lift = lifted[lift_mm].wrinkle_depth_index
    assert without.mean() < -300  # the fold change itself is measured
    assert with_lift.mean() == pytest.approx(without.mean(), rel=0.10), (without.tolist(), with_lift.tolist())


@pytest.mark.parametrize("lift_mm", [1.0, 2.0])
def test_a_lift_does_not_change_the_measured_fold_length(lifted, lift_mm: float) -> None:
    without = lifted[0.0].wrinkle_length_mm
    with_lift = lifted[lift_mm].wrinkle_length_mm
    assert with_lift.mean() == pytest.approx(without.mean(), rel=0.10), (without.tolist(), with_lift.tolist())
