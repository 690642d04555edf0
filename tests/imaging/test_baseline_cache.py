"""A subject's baseline is prepared once per process, and never reused once its file has changed."""

from __future__ import annotations

import os

import cv2
import pandas as pd

from toolkit.imaging import analysis
from toolkit.imaging.analysis import analyze_photo
from toolkit.imaging.synthetic import portrait, simulate_visit


def _write(path, rgb) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _baseline_and_visit(tmp_path, seed: int):
    """The astronaut portrait as a baseline file, one re-capture of it, and an empty cache."""
    base = portrait("astronaut")
    bpath = tmp_path / "baseline.png"
    _write(bpath, base)
    img, _ = simulate_visit(base, lift_mm=0.0, seed=seed, wrinkle_regions=())
    analysis._BASELINE_CACHE.clear()
    return bpath, img


def test_follow_ups_share_one_prepared_baseline_with_identical_results(tmp_path) -> None:
    base = portrait("astronaut")
    bpath = tmp_path / "baseline.png"
    _write(bpath, base)
    visits = []
    for seed in (1, 2):
        img, _ = simulate_visit(base, lift_mm=0.0, seed=seed, wrinkle_regions=())
        visits.append(img)

    analysis._BASELINE_CACHE.clear()
    first = analyze_photo(visits[0], baseline=bpath, overlays=False)
    assert len(analysis._BASELINE_CACHE) == 1
    cached_entry = next(iter(analysis._BASELINE_CACHE.values()))
    second = analyze_photo(visits[1], baseline=bpath, overlays=False)
    assert len(analysis._BASELINE_CACHE) == 1
    assert next(iter(analysis._BASELINE_CACHE.values())) is cached_entry  # reused, not rebuilt

    # the same numbers as without the cache
    analysis._BASELINE_CACHE.clear()
    fresh = analyze_photo(visits[1], baseline=bpath, overlays=False)
    pd.testing.assert_frame_equal(second.regions, fresh.regions)
    assert first.qc.passed and second.qc.passed


def test_a_changed_baseline_file_is_prepared_again(tmp_path) -> None:
    bpath, img = _baseline_and_visit(tmp_path, 3)
    good = analyze_photo(img, baseline=bpath, overlays=False)
    assert good.qc.passed

    # another person's photo now sits at the same path (newer modification time)
    _write(bpath, portrait("grace_hopper"))
    st = bpath.stat()
    os.utime(bpath, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    stale_check = analyze_photo(img, baseline=bpath, overlays=False)
    assert len(analysis._BASELINE_CACHE) == 2
    assert not stale_check.qc.passed and "baseline_mismatch" in stale_check.qc.codes


def test_settings_are_part_of_the_key(tmp_path) -> None:
    bpath, img = _baseline_and_visit(tmp_path, 4)
    analyze_photo(img, baseline=bpath, overlays=False)
    analyze_photo(img, baseline=bpath, overlays=False, analysis_mm_per_px=0.3)
    analyze_photo(img, baseline=bpath, overlays=False, regions=["cheek_l", "cheek_r"])  # same template
    assert len(analysis._BASELINE_CACHE) == 2
