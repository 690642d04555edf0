"""A colour channel the camera clipped carries no texture: wrinkle contrast comes from the others."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.imaging.wrinkles import clipped_channels, wrinkle_map

SKIN = np.array([236.0, 176.0, 146.0])  # a pale face: red near the top of the range


def _skin_with_line(gain: float, contrast: float = 0.2, sigma_px: float = 2.5, size: int = 160) -> np.ndarray:
    """Skin colour with one horizontal dark Gaussian line (relative depth ``contrast`` in every channel)."""
    y = np.arange(size, dtype=np.float64)[:, None] - size / 2
    profile = 1.0 - contrast * np.exp(-0.5 * (y / sigma_px) ** 2)
    img = SKIN[None, None, :] * profile[..., None] * np.ones((1, size, 1)) * gain
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _peak(rgb: np.ndarray, use_clipped: bool) -> float:
    wmap = wrinkle_map(rgb, 0.1, clipped=clipped_channels(rgb) if use_clipped else None)
    c = rgb.shape[0] // 2
    return float(wmap.strength_pct[c - 3 : c + 4, 40:-40].max(axis=0).mean())


def test_clipped_channels_marks_each_channel_at_the_range_ends() -> None:
    rgb = np.array([[[255, 100, 2], [250, 249, 3], [4, 0, 255]]], dtype=np.uint8)
    bits = clipped_channels(rgb)
    assert bits.tolist() == [[0b101, 0b101, 0b110]]


def test_a_line_keeps_its_strength_when_the_red_channel_saturates() -> None:
    normal = _skin_with_line(1.0)
    over = _skin_with_line(1.36)  # red clips everywhere, even in the line; green and blue keep it
    assert (over[..., 0] == 255).all() and not (clipped_channels(normal) & 1).any()
    ref = _peak(normal, use_clipped=True)
    assert ref > 5.0
    # left to the luminance, the line loses red's share of its contrast (about a third on this skin)
    assert _peak(over, use_clipped=False) / ref < 0.75
    # the clipped red channel is left out, and the line reads as before
    assert _peak(over, use_clipped=True) / ref == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("gain", [1.1, 1.15, 1.2])
def test_partly_clipped_red_changes_the_line_by_at_most_two_percent(gain: float) -> None:
    # red clips on the skin around the line but not in its darkest part: the luminance loses 1.5–12 %
    ref = _peak(_skin_with_line(1.0), use_clipped=True)
    assert _peak(_skin_with_line(gain), use_clipped=True) / ref == pytest.approx(1.0, abs=0.02)


def test_without_clipping_colour_and_luminance_agree() -> None:
    rgb = _skin_with_line(1.0)
    gray = np.round(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    a = wrinkle_map(rgb, 0.1, clipped=clipped_channels(rgb)).strength_pct
    b = wrinkle_map(gray, 0.1).strength_pct
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999
    assert a.max() == pytest.approx(b.max(), rel=0.02)


def test_everything_clipped_gives_a_flat_finite_map() -> None:
    white = np.full((120, 120, 3), 255, np.uint8)
    wmap = wrinkle_map(white, 0.1, clipped=clipped_channels(white))
    assert np.isfinite(wmap.strength_pct).all() and wmap.strength_pct.max() == 0.0


def _skin_with_coloured_line(gain: float, depths=(0.14, 0.21, 0.23), sigma_px: float = 2.5,
                             size: int = 160) -> np.ndarray:
    """As :func:`_skin_with_line`, but the line is shallower in red than in green and blue, as a fold is
    on real skin (red light scatters deeper)."""
    y = np.arange(size, dtype=np.float64)[:, None] - size / 2
    bump = np.exp(-0.5 * (y / sigma_px) ** 2)
    img = np.stack([SKIN[c] * (1.0 - depths[c] * bump) * np.ones((1, size)) for c in range(3)], axis=-1) * gain
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def test_a_line_shallower_in_red_keeps_its_strength_when_red_saturates() -> None:
    normal = _skin_with_coloured_line(1.0)
    over = _skin_with_coloured_line(1.12)  # red clips on the skin, not in the line's darkest part
    assert not (clipped_channels(normal) & 1).any() and (clipped_channels(over)[0] & 1).all()
    base = wrinkle_map(normal, 0.1, clipped=clipped_channels(normal))
    # each channel's contrast relative to the luminance's, fitted on the unclipped photo: the depths over
    # their luma-weighted mean
    luma_depth = 0.299 * 0.14 + 0.587 * 0.21 + 0.114 * 0.23
    assert base.channel_gains == pytest.approx((0.14 / luma_depth, 0.21 / luma_depth, 0.23 / luma_depth), rel=0.03)
    c = normal.shape[0] // 2

    def peak(rgb, gains) -> float:
        wmap = wrinkle_map(rgb, 0.1, clipped=clipped_channels(rgb), channel_gains=gains)
        return float(wmap.strength_pct[c - 3 : c + 4, 40:-40].max(axis=0).mean())

    ref = peak(normal, base.channel_gains)
    # averaging green and blue alone would read the line about 10 % stronger than the luminance does
    assert peak(over, (1.0, 1.0, 1.0)) / ref > 1.08
    # with the channels' gains they stand in for the luminance
    assert peak(over, base.channel_gains) / ref == pytest.approx(1.0, abs=0.02)


def test_gains_that_cannot_be_trusted_are_not_used() -> None:
    """A channel whose fitted gain is outside 0.2–5 (here red, lighter along the line than beside it: a
    negative gain), a photo without any contrast, or a reference of a few pixels give no gains (1, 1, 1),
    and the line is then read from the unclipped channels at their own luma-weighted contrast."""
    depths = (-0.05, 0.21, 0.23)
    normal = _skin_with_coloured_line(1.0, depths=depths)
    assert not clipped_channels(normal).any()
    assert wrinkle_map(normal, 0.1, clipped=clipped_channels(normal)).channel_gains == (1.0, 1.0, 1.0)
    # the same line in green and blue, red as deep as they are: its gains are fitted, and within range
    plain = _skin_with_coloured_line(1.0, depths=(0.2, 0.21, 0.23))
    assert wrinkle_map(plain, 0.1, clipped=clipped_channels(plain)).channel_gains != (1.0, 1.0, 1.0)
    flat = np.tile(SKIN.astype(np.uint8), (160, 160, 1))
    assert wrinkle_map(flat, 0.1, clipped=clipped_channels(flat)).channel_gains == (1.0, 1.0, 1.0)
    few = np.zeros(plain.shape[:2], dtype=bool)
    few[70:90, 70:90] = True  # 400 pixels, fewer than the fit needs
    assert wrinkle_map(plain, 0.1, clipped=clipped_channels(plain), reference=few).channel_gains == (1.0, 1.0, 1.0)

    over = _skin_with_coloured_line(1.12, depths=depths)  # red clipped everywhere
    assert (clipped_channels(over) & 1).all()
    c = over.shape[0] // 2

    def peak(rgb: np.ndarray) -> float:
        wmap = wrinkle_map(rgb, 0.1, clipped=clipped_channels(rgb), channel_gains=(1.0, 1.0, 1.0))
        assert np.isfinite(wmap.strength_pct).all() and (wmap.strength_pct >= 0).all()
        return float(wmap.strength_pct[c - 3 : c + 4, 40:-40].max(axis=0).mean())

    gb = (0.587 * depths[1] + 0.114 * depths[2]) / (0.587 + 0.114)
    assert peak(over) == pytest.approx(peak(_skin_with_coloured_line(1.0, depths=(gb, gb, gb))), rel=0.03)


def test_gains_are_fitted_when_red_is_clipped_in_specks_all_over_the_skin() -> None:
    """Bright skin clips its red channel here and there everywhere (pores' highlights, a sheen): the gains
    are fitted on the pixels away from the specks, as on the same skin without them. (Demanding a
    neighbourhood free of any clipping left nothing to fit on, and the gains fell back to one.)"""
    size, depths = 240, (0.14, 0.21, 0.23)
    y = np.arange(size, dtype=np.float64)[:, None]
    ripple = 0.5 + 0.5 * np.cos(2 * np.pi * y / 12.0)  # lines every 12 px: texture to fit the gains on
    img = np.stack([SKIN[c] * (1.0 - depths[c] * ripple) * np.ones((1, size)) for c in range(3)], axis=-1)
    clean = np.clip(np.round(img), 0, 255).astype(np.uint8)
    specked = clean.copy()
    rng = np.random.default_rng(5)
    specks = rng.random((size, size)) < 0.06
    specked[..., 0][specks] = 255
    assert 0.05 < (clipped_channels(specked) & 1).mean() < 0.07 and not clipped_channels(clean).any()
    want = wrinkle_map(clean, 0.1, clipped=clipped_channels(clean)).channel_gains
    got = wrinkle_map(specked, 0.1, clipped=clipped_channels(specked)).channel_gains
    assert want != (1.0, 1.0, 1.0)
    assert got == pytest.approx(want, abs=0.05)


def _cast(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """The photo under other light: each channel scaled in linear light (sRGB-like gamma 2.2), clipped."""
    lin = (rgb / 255.0) ** 2.2 * np.asarray(gains)
    return np.clip(255 * np.clip(lin, 0, 1) ** (1 / 2.2), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("factor", [1, 2])
def test_a_follow_up_reads_alike_under_brighter_or_warmer_light_against_a_bright_baseline(factor: int) -> None:
    """Grace Hopper's pale face, a baseline whose red channel is clipped on about two fifths of the forehead:
    one follow-up shown as it is, a fifth brighter, and with a strong warm cast (red up 30 %, blue down
    20 %), so more and more of its red clips. The face and its noise are the same in all three; each
    region's wrinkle length stays within 15 % of the others (it spread by 18-32 % when the baseline's
    channel gains fell back to one)."""
    from tests.imaging.portraits import portrait_at, with_baseline
    from toolkit.imaging import analyze_photo
    from toolkit.imaging.synthetic import simulate_visit

    img = portrait_at("grace_hopper", factor)
    layout, baseline = with_baseline(img)
    follow, _ = simulate_visit(img, wrinkle_change={}, seed=1, layout=layout)
    lengths = []
    for light in ((1.0, 1.0, 1.0), (1.2, 1.2, 1.2), (1.3, 1.0, 0.8)):
        shown = _cast(follow, light)
        res = analyze_photo(shown, baseline=baseline, overlays=False)
        assert res.qc.passed, res.qc.reasons
        lengths.append(res.regions.set_index("region")["wrinkle_length_mm"])
    assert (_cast(follow, (1.3, 1.0, 0.8))[..., 0] >= 250).mean() > 2 * (follow[..., 0] >= 250).mean()
    measured = lengths[0][lengths[0] > 25].index
    assert len(measured) >= 6
    for region in measured:
        values = [float(ln[region]) for ln in lengths]
        assert max(values) / min(values) - 1 < 0.15, (region, values)


def _camera_jpeg(rgb: np.ndarray, gain: float) -> np.ndarray:
    """``rgb`` exposed ``gain`` times brighter and saved as most cameras save it: JPEG, quality 80, colour at half
    resolution (4:2:0)."""
    import cv2

    shown = np.clip(np.rint(rgb.astype(np.float32) * gain), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 80, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                             cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_a_follow_up_whose_red_clips_on_much_more_skin_than_at_baseline_is_flagged() -> None:
    """Grace Hopper's pale face at 2x, the same visit saved as a camera JPEG at the baseline's exposure, 3 %
    darker and 15 % brighter. At +15 % red clips on three quarters of her forehead (a tenth at baseline); her
    faint forehead lines, read from green and blue whose detail the JPEG's half-resolution colour blurs, came
    out 27 % shorter with no word said. It is now flagged, naming the region and the channel; the photo still
    passes (a warning), and the two photos near the baseline's exposure are not flagged."""
    from tests.imaging.portraits import portrait_at
    from toolkit.imaging import analyze_photo
    from toolkit.imaging.synthetic import fold_layout, simulate_visit

    img = portrait_at("grace_hopper", 2)
    visit, _ = simulate_visit(img, wrinkle_change={}, perturb=False, layout=fold_layout(img))
    baseline = _camera_jpeg(visit, 1.0)
    for gain in (1.0, 0.97):
        res = analyze_photo(_camera_jpeg(visit, gain), baseline=baseline, overlays=False)
        assert res.qc.passed and "channel_clipped" not in res.qc.flag_codes, (gain, res.qc.flags)
    res = analyze_photo(_camera_jpeg(visit, 1.15), baseline=baseline, overlays=False)
    assert res.qc.passed, res.qc.reasons
    assert "channel_clipped" in res.qc.flag_codes
    said = res.qc.flags[res.qc.flag_codes.index("channel_clipped")]
    assert "forehead (red clipped on" in said and "at baseline" in said, said


def test_strong_lines_are_not_flagged_when_red_clips_over_them() -> None:
    """The astronaut's lines are four to six times stronger than her skin's texture: at 10 % more exposure than
    a 10 % darker baseline, red clips on about half of her right under-eye skin (none at baseline), yet every
    the regions it clips on keep their length within 8 %; nothing is flagged."""
    from tests.imaging.portraits import portrait_at
    from toolkit.imaging import analyze_photo
    from toolkit.imaging.synthetic import fold_layout, simulate_visit

    img = portrait_at("astronaut", 2)
    visit, _ = simulate_visit(img, wrinkle_change={}, perturb=False, layout=fold_layout(img))
    baseline = _camera_jpeg(visit, 0.9)
    follow = _camera_jpeg(visit, 1.1)
    assert (follow[..., 0] >= 250).mean() > 3 * (baseline[..., 0] >= 250).mean()
    before = analyze_photo(baseline, overlays=False).regions.set_index("region").wrinkle_length_mm
    res = analyze_photo(follow, baseline=baseline, overlays=False)
    assert res.qc.passed and "channel_clipped" not in res.qc.flag_codes, res.qc.flags
    after = res.regions.set_index("region").wrinkle_length_mm
    lined = ["under_eye_r", "nasolabial_l", "nasolabial_r"]
    assert (before[lined] > 10).all(), before[lined]
    assert ((after[lined] / before[lined] - 1).abs() < 0.08).all(), (after[lined] / before[lined] - 1).round(3)
