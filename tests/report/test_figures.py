"""Figure functions: house style, numbering, footnotes, traces per arm, grayscale, and their numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from toolkit.errors import DataError
from toolkit.report import figures as F
from toolkit.report.style import FONT_FAMILY, TEMPLATE_NAME, figure_info, order_arms, pt_to_px

from .conftest import ARMS, TRUE_SLOPE, VISITS


def _tte(n=30, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n * 3):
        arm = ARMS[i % 3]
        t = rng.exponential({"EP": 20, "MC": 30, "Sham": 80}[arm])
        rows.append({"USUBJID": f"S{i}", "TRT01A": arm, "AVAL": min(t, 60.0), "CNSR": int(t > 60)})
    return pd.DataFrame(rows)


def _ae():
    rows = []
    # EP: 3 subjects with erythema (one twice), MC: 1; Sham: none
    for s, arm, pt in [("E1", "EP", "Erythema"), ("E1", "EP", "Erythema"), ("E2", "EP", "Erythema"),
                       ("E3", "EP", "Erythema"), ("M1", "MC", "Erythema"), ("M1", "MC", "Twitching")]:
        soc = "SKIN" if pt == "Erythema" else "MUSCLE"
        rows.append({"USUBJID": s, "TRTA": arm, "AEBODSYS": soc, "AEDECOD": pt, "TRTEMFL": "Y"})
    rows.append({"USUBJID": "S1", "TRTA": "Sham", "AEBODSYS": "SKIN", "AEDECOD": "Erythema", "TRTEMFL": "N"})
    return pd.DataFrame(rows)


def _waveform():
    t = np.arange(500) * 1e-6
    rx = np.where(t % 1e-4 < 2e-5, 10.0, 0.0)
    meas = rx.copy()
    meas[100:103] += 5.0  # three samples out of tolerance
    return pd.DataFrame({"time_s": t, "measured": meas, "prescribed": rx, "lower": rx - 1, "upper": rx + 1})


def _dose():
    return pd.DataFrame([{"USUBJID": f"S{i}", "TRT01A": ARMS[i % 3], "SESSION": k, "AVAL": 1.0 + i % 3}
                         for i in range(9) for k in (1, 2, 3)])


def _forest():
    return pd.DataFrame({"subgroup": ["Overall", "Sex", "Sex"] * 2, "level": ["", "F", "M"] * 2,
                         "contrast": ["EP - Sham"] * 3 + ["MC - Sham"] * 3,
                         "estimate": [-1, -1.2, -0.8, -0.5, -0.6, -0.4], "ci_low": [-1.5, -2, -1.6, -1, -1.3, -1.2],
                         "ci_high": [-0.5, -0.4, 0, 0, 0.1, 0.4]})


def _photo(tmp_path):
    from skimage import data as skdata

    img = skdata.astronaut()[:120, 150:270]
    mask = np.zeros(img.shape[:2], bool)
    mask[50:52, 20:80] = True
    flow = np.zeros((*img.shape[:2], 2))
    flow[..., 1] = -2.0  # every pixel moved 2 px up
    np.save(tmp_path / "flow.npy", flow)
    from PIL import Image

    Image.fromarray(img).save(tmp_path / "base.png")
    return pd.DataFrame({"image": [str(tmp_path / "base.png"), img], "label": ["Baseline", "Week 12"],
                         "wrinkle_mask": [None, mask], "displacement": [None, str(tmp_path / "flow.npy")]})


def _adsl():
    rows = [{"USUBJID": f"S{i}", "TRT01P": ARMS[i % 3], "RANDFL": "Y", "EFFFL": "Y" if i % 4 else "N",
             "EOSSTT": "DISCONTINUED" if i % 5 == 0 else "COMPLETED", "DCSREAS": "Lost" if i % 5 == 0 else ""}
            for i in range(30)]
    rows.append({"USUBJID": "SF1", "TRT01P": "", "RANDFL": "N", "EFFFL": "N", "EOSSTT": "", "DCSREAS": ""})
    return pd.DataFrame(rows)


def _all_figures(bds, tmp_path) -> dict[str, tuple[go.Figure, int | None]]:
    """name -> (figure, traces per arm or None when traces are not per arm)."""
    last = bds[bds["AVISIT"] == "Week 12"]
    return {
        "mean_change": (F.fig_mean_change(bds, number="14.2.1"), 1),
        "trajectories": (F.fig_trajectories(bds, number="14.2.2"), 2),
        "waterfall": (F.fig_waterfall(last, number="14.2.3"), 1),
        "forest": (F.fig_forest(_forest(), contrast="contrast", number="14.2.4"), None),
        "box": (F.fig_box(bds, number="14.2.5"), 1),
        "violin": (F.fig_box(bds, kind="violin", number="14.2.6"), 1),
        "km": (F.fig_km(_tte(), number="14.2.7"), 5),
        "consort": (F.fig_consort(_adsl(), number="14.1.1"), None),
        "photo": (F.fig_photo_panel(_photo(tmp_path), number="14.2.8"), None),
        "waveform": (F.fig_waveform(_waveform(), number="14.3.5"), None),
        "dose": (F.fig_dose(_dose(), number="14.3.6"), 2),
        "ae": (F.fig_ae_incidence(_ae(), population={"EP": 10, "MC": 10, "Sham": 10}, number="14.3.1"), 1),
    }


@pytest.fixture(scope="module")
def all_figures(bds, tmp_path_factory):
    return _all_figures(bds, tmp_path_factory.mktemp("photos"))


def test_every_figure_is_numbered_footnoted_and_in_house_style(all_figures) -> None:
    for name, (fig, _) in all_figures.items():
        info = figure_info(fig)
        assert fig.layout.title.text.replace("<br>", " ") == f"Figure {info.number} {info.title}", name
        assert fig.layout.title.text.startswith("Figure 14."), name
        notes = [a.text for a in fig.layout.annotations if a.name == "footnotes"]
        assert len(notes) == 1, name
        assert "Source: " in notes[0] and "Program: toolkit.report.fig_" in notes[0] and "run 20" in notes[0], name
        assert fig.layout.template.layout.font.family == FONT_FAMILY
        sizes_pt = [s * 72 / 96 for s in (fig.layout.template.layout.font.size,
                                          fig.layout.template.layout.title.font.size, notes and 12)]
        assert all(9 <= s <= 12 for s in sizes_pt), (name, sizes_pt)
        assert "Liberation Sans" in FONT_FAMILY


def test_long_titles_wrap_inside_the_figure(bds) -> None:
    title = "Incidence of treatment-emergent adverse events by preferred term and arm, safety population"
    fig = F.fig_mean_change(bds, title=title)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and " ".join(lines) == f"Figure 14.2.1 {title}"
    assert fig.layout.margin.t > F.fig_mean_change(bds).layout.margin.t


def test_template_is_registered_once_and_not_made_default() -> None:
    import plotly.io as pio

    from toolkit.report.style import register_template

    assert register_template() is pio.templates[TEMPLATE_NAME]
    assert TEMPLATE_NAME not in str(pio.templates.default)


def _arm_traces(fig: go.Figure, arms) -> dict[str, list]:
    out = {a: [] for a in arms}
    for tr in fig.data:
        group = tr.legendgroup or tr.name
        for a in arms:
            if group == a or (tr.name or "").startswith(f"{a} ") or tr.name == a:
                out[a].append(tr)
                break
    return out


def test_traces_per_arm_and_grayscale_distinguishability(all_figures) -> None:
    for name, (fig, per_arm) in all_figures.items():
        if per_arm is None:
            continue
        traces = _arm_traces(fig, ARMS)
        assert {a: len(t) for a, t in traces.items()} == dict.fromkeys(ARMS, per_arm), name
        # the first trace of each arm carries its look; in grayscale colour is gone, so dash/symbol/pattern remain
        looks = []
        for a in ARMS:
            named = [t for t in traces[a] if t.name in (a, f"{a} mean")]
            t = named[-1] if named else traces[a][0]
            line = getattr(t, "line", None)
            marker = getattr(t, "marker", None)
            looks.append((getattr(line, "dash", None) if line is not None else None,
                          getattr(marker, "symbol", None) if marker is not None else None,
                          marker.pattern.shape if marker is not None and hasattr(marker, "pattern") else None))
        assert len(set(looks)) == len(ARMS), (name, looks)


def test_mean_change_estimates_cover_the_known_truth(bds) -> None:
    fig = F.fig_mean_change(bds)
    for tr in fig.data:
        slope = TRUE_SLOPE[tr.name]
        x_visit = np.round(np.asarray(tr.x)).astype(int)
        lo = np.asarray(tr.y) - np.asarray(tr.error_y.arrayminus)
        hi = np.asarray(tr.y) + np.asarray(tr.error_y.array)
        truth = slope * x_visit
        covered = (lo <= truth + 1e-12) & (truth - 1e-12 <= hi)
        assert covered[1:].sum() >= 2, tr.name  # 3 visits with 95% CIs: missing two would be very unlikely
        # the half-width is the t quantile times the SE of 40 N(0,1) draws: about 2.02 / sqrt(40)
        half = (hi - lo)[1:] / 2
        assert np.all((half > 0.2) & (half < 0.5)), half


def test_mean_change_accepts_model_estimates() -> None:
    est = pd.DataFrame({"TRT01A": ["EP", "EP", "MC", "MC"], "AVISIT": ["W4", "W8"] * 2,
                        "estimate": [-1, -2, -0.5, -1], "lo": [-1.5, -2.6, -0.9, -1.4], "hi": [-0.5, -1.4, -0.1, -0.6]})
    fig = F.fig_mean_change(est, visit_num=None, value="estimate", ci_low="lo", ci_high="hi")
    ep = fig.data[0]
    assert list(ep.y) == [-1, -2]
    assert np.allclose(ep.error_y.arrayminus, [0.5, 0.6]) and np.allclose(ep.error_y.array, [0.5, 0.6])


def test_kaplan_meier_reproduces_the_freireich_6mp_estimates() -> None:
    # 6-MP arm of Freireich et al. (1963), the textbook example: times in weeks, * = censored
    times = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
    censored = [0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
    km = F.kaplan_meier(pd.DataFrame({"AVAL": times, "CNSR": censored}))
    at = km.set_index("time")
    published = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for t, s in published.items():
        assert at.loc[t, "survival"] == pytest.approx(s, abs=0.0005), t
    assert at.loc[6, "se"] == pytest.approx(0.076, abs=0.0005)
    assert at.loc[23, "se"] == pytest.approx(0.135, abs=0.0005)
    assert at.loc[6, "n_risk"] == 21 and at.loc[23, "n_risk"] == 6
    # log-log CI at t=6 (R survival, conf.type="log-log"): 0.620 to 0.952
    assert at.loc[6, "ci_low"] == pytest.approx(0.620, abs=0.001)
    assert at.loc[6, "ci_high"] == pytest.approx(0.952, abs=0.001)


def test_km_figure_has_steps_band_and_numbers_at_risk() -> None:
    data = _tte()
    fig = F.fig_km(data, risk_times=[0, 30, 60])
    curves = [t for t in fig.data if t.name in ARMS]
    assert all(t.line.shape == "hv" for t in curves)
    assert sum(1 for t in fig.data if t.fill == "tonexty") == 3
    at_risk = {t.name.split()[0]: list(t.text) for t in fig.data if t.mode == "text"}
    for arm in ARMS:
        sub = data[data["TRT01A"] == arm]
        assert at_risk[arm] == [str(int((sub["AVAL"] >= x).sum())) for x in (0, 30, 60)]
        assert at_risk[arm][0] == str(len(sub))


def test_consort_counts_match_the_cdisc_pilot_disposition(reference_dir) -> None:
    adsl = pd.read_sas(reference_dir / "cdisc-pilot" / "adsl.xpt", encoding="latin1")
    counts = F.consort_counts(adsl, arm="TRT01P", analysed="EFFFL")
    # CDISCPILOT01 report: 254 randomised (86/84/84); completed 58/25/27; efficacy population 79/81/74
    assert counts.randomised == 254
    assert counts.allocated == {"Xanomeline High Dose": 84, "Xanomeline Low Dose": 84, "Placebo": 86}
    assert counts.lost == {"Xanomeline High Dose": 84 - 27, "Xanomeline Low Dose": 84 - 25, "Placebo": 86 - 58}
    assert counts.analysed == {"Xanomeline High Dose": 74, "Xanomeline Low Dose": 81, "Placebo": 79}
    fig = F.fig_consort(counts)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "Randomised (n=254)" in texts and "Allocated (n=86)" in texts and "Analysed (n=74)" in texts
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 3 + 3 * 3


def test_consort_counts_screen_failures_as_excluded() -> None:
    counts = F.consort_counts(_adsl())
    assert counts.assessed == 31 and counts.randomised == 30 and counts.excluded == 1
    assert sum(counts.allocated.values()) == 30 and sum(counts.lost.values()) == 6


def test_ae_incidence_counts_subjects_once_and_uses_the_population() -> None:
    inc = F.ae_incidence(_ae(), population={"EP": 10, "MC": 10, "Sham": 10})
    pt = inc[(inc["level"] == "PT") & (inc["pt"] == "Erythema")].set_index("arm")
    assert pt.loc["EP", "n"] == 3 and pt.loc["EP", "pct"] == pytest.approx(30.0)
    assert pt.loc["MC", "n"] == 1 and pt.loc["Sham", "n"] == 0  # Sham's event is not treatment-emergent
    anyae = inc[inc["level"] == "ANY"].set_index("arm")
    assert anyae.loc["MC", "n"] == 1


def test_ae_incidence_reproduces_the_cdisc_pilot_table(reference_dir) -> None:
    adsl = pd.read_sas(reference_dir / "cdisc-pilot" / "adsl.xpt", encoding="latin1")
    adae = pd.read_sas(reference_dir / "cdisc-pilot" / "adae.xpt", encoding="latin1")
    inc = F.ae_incidence(adae, population=adsl[adsl["SAFFL"] == "Y"])
    # CDISCPILOT01 Table 14-5.01: any TEAE 65/77/76; application site pruritus 6/22/22
    anyae = inc[inc["level"] == "ANY"].set_index("arm")["n"]
    assert anyae.to_dict() == {"Placebo": 65, "Xanomeline Low Dose": 77, "Xanomeline High Dose": 76}
    prur = inc[(inc["level"] == "PT") & (inc["pt"] == "APPLICATION SITE PRURITUS")].set_index("arm")["n"]
    assert prur.to_dict() == {"Placebo": 6, "Xanomeline Low Dose": 22, "Xanomeline High Dose": 22}


def test_waveform_marks_samples_outside_the_tolerance_band() -> None:
    fig = F.fig_waveform(_waveform())
    assert fig.layout.meta["n_outside"] == 3
    assert fig.layout.xaxis.title.text == "Time (µs)"


def test_a_band_given_only_where_the_level_is_checked_is_drawn_there_and_judged_there() -> None:
    t = np.arange(3000) * 1e-6
    on = (t % 1e-3) < 5e-4  # three pulses of 0.5 ms
    rx = np.where(on, 10.0, 0.0)
    middle = on & ((t % 1e-3) >= 1e-4) & ((t % 1e-3) <= 4.5e-4)
    lo, hi = np.where(middle, 9.0, np.nan), np.where(middle, 11.0, np.nan)
    meas = rx.copy()
    meas[~on] = 3.0  # far from 0 between pulses, where no level is checked: not outside
    meas[1200] = 15.0  # inside the second pulse's checked middle: outside
    fig = F.fig_waveform(pd.DataFrame({"time_s": t, "measured": meas, "prescribed": rx, "lower": lo, "upper": hi}))
    assert fig.layout.meta["n_outside"] == 1
    band = next(tr for tr in fig.data if tr.name == "tolerance band")
    # one closed outline per pulse, separated by gaps
    xs = list(band.x)
    assert xs.count(None) == 3
    outline = np.asarray(xs[:xs.index(None)], float)
    assert outline.min() == pytest.approx(100.0, abs=1.01) and outline.max() == pytest.approx(450.0, abs=1.01)  # µs
    with pytest.raises(DataError, match="blank in the same rows"):
        F.fig_waveform(pd.DataFrame({"time_s": t, "measured": meas, "prescribed": rx, "lower": lo,
                                     "upper": np.where(on, 11.0, np.nan)}))


def test_a_deep_capture_is_drawn_as_its_envelope_and_keeps_every_peak() -> None:
    from toolkit.report.figures.waveform import MAX_DRAWN_POINTS

    n = 60_000
    t = np.arange(n) * 55e-9
    y = np.where((t > 0.5e-3) & (t < 1.5e-3), 70.0, 0.0)
    y[31_234] = 95.0  # one sample: a transient a thinning by stride would drop
    fig = F.fig_waveform(pd.DataFrame({"time_s": t, "measured": y}), prescribed=None, lower=None, upper=None)
    drawn = next(tr for tr in fig.data if tr.name == "delivered")
    assert len(drawn.y) <= MAX_DRAWN_POINTS
    assert max(drawn.y) == 95.0 and min(drawn.y) == 0.0
    assert np.all(np.diff(np.asarray(drawn.x, float)) >= 0)  # still in time order


def test_photo_panel_draws_images_masks_and_displacement(tmp_path) -> None:
    fig = F.fig_photo_panel(_photo(tmp_path), arrow_step_px=20)
    images = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(images) == 2 and all(t.source.startswith("data:image/jpeg;base64,") for t in images)
    arrows = [t for t in fig.data if t.name == "displacement (Week 12)"][0]
    dy = np.asarray(arrows.y, float).reshape(-1, 3)
    assert np.allclose(dy[:, 1] - dy[:, 0], -2.0)  # every arrow 2 px up, as the field says
    # the wrinkle mask is drawn: the follow-up image differs from the baseline only where the mask is
    import base64
    import io

    from PIL import Image

    a, b = (np.asarray(Image.open(io.BytesIO(base64.b64decode(t.source.split(",", 1)[1])))) for t in images)
    diff = np.abs(a.astype(int) - b.astype(int)).max(axis=2)  # JPEG: small coding noise beside the mask
    inside = np.zeros(diff.shape, bool)
    inside[50:52, 20:80] = True
    assert diff[inside].min() > 40 and np.percentile(diff[~inside], 99) < 12


def test_arm_order_puts_controls_last() -> None:
    assert order_arms(["Sham", "MC", "EP", "Placebo", None]) == ["EP", "MC", "Placebo", "Sham"]


@pytest.mark.parametrize(("call", "needle"), [
    (lambda d: F.fig_mean_change(d.drop(columns="CHG")), "'CHG'"),
    (lambda d: F.fig_mean_change(d.assign(CHG="x")), "must be numeric"),
    (lambda d: F.fig_mean_change(d, arm_order=["EP", "MC"]), "not in arm_order"),
    (lambda d: F.fig_mean_change(d, level=95), "between 0 and 1"),
    (lambda d: F.fig_mean_change(d, ci_low="CHG"), "both ci_low and ci_high"),
    (lambda d: F.fig_mean_change(d.iloc[0:0]), "no rows"),
    (lambda d: F.fig_waterfall(d), "one row per subject"),
    (lambda d: F.fig_box(d, kind="bar"), "'box' or 'violin'"),
    (lambda d: F.fig_mean_change(d, number=""), "figure number"),
    (lambda d: F.kaplan_meier(pd.DataFrame({"AVAL": [-1, 2], "CNSR": [0, 1]})), "negative"),
    (lambda d: F.kaplan_meier(pd.DataFrame({"AVAL": [1, 2], "CNSR": [0, 2]})), "0 (event) or 1"),
    (lambda d: F.fig_forest(_forest().assign(ci_low=0.5)), "ci_low <= estimate"),
    (lambda d: F.fig_waveform(_waveform().iloc[::-1]), "must be increasing"),
    (lambda d: F.fig_waveform(_waveform(), upper=None), "both lower and upper"),
    (lambda d: F.fig_ae_incidence(_ae(), population={"EP": 10}), "no subjects at risk"),
    (lambda d: F.fig_photo_panel(pd.DataFrame({"image": ["/no/such.png"], "label": ["x"]})), "does not exist"),
    (lambda d: F.fig_photo_panel(pd.DataFrame({"image": [np.zeros((4, 4, 2))], "label": ["x"]})), "shape"),
    (lambda d: F.fig_mean_change("not a frame"), "DataFrame"),
])
def test_bad_input_gets_a_clear_data_error(bds, call, needle) -> None:
    with pytest.raises(DataError) as err:
        call(bds)
    assert needle in str(err.value)


def test_corrupt_photo_is_named(tmp_path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="broken.png is not a readable image"):
        F.load_image(bad)


def test_t_interval_matches_scipy(bds) -> None:
    from toolkit.report.figures._common import mean_ci

    x = bds.loc[(bds["TRT01A"] == "EP") & (bds["AVISIT"] == VISITS[-1]), "CHG"]
    n, m, lo, hi = mean_ci(x)
    ref = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
    assert (lo, hi) == pytest.approx(ref)
    assert pt_to_px(9) == pytest.approx(12.0)


def test_km_band_is_drawn_up_to_the_last_time_even_where_everyone_improved() -> None:
    # sessions: 4 of 7 improve at session 8, the other 3 at session 12 (S reaches 0, log-log CI undefined)
    data = pd.DataFrame({"TRT01A": ["EP"] * 8, "AVAL": [4.0] + [8.0] * 4 + [12.0] * 3,
                         "CNSR": [1] + [0] * 7})
    fig = F.fig_km(data, time_unit="sessions")
    low, high = (next(t for t in fig.data if t.name == f"EP CI {e}") for e in ("low", "high"))
    assert high.fill == "tonexty" and list(high.x) == list(low.x) and max(high.x) == 12
    lo, hi = np.asarray(low.y, dtype=float), np.asarray(high.y, dtype=float)
    assert np.isfinite(lo).all() and np.isfinite(hi).all()
    k = list(low.x).index(8.0)
    assert hi[k] - lo[k] > 0.3  # a visible band after the first events
    assert fig.layout.xaxis2.title.text == "Time (sessions)"
    assert list(fig.layout.xaxis2.tickvals) == [0, 4, 8, 12]  # numbers at risk at the assessed sessions


@pytest.mark.parametrize("label", ["Wrinkle Severity Rating Scale, NLF", "Allergan fine lines, per side", "NLFLEN"])
def test_a_box_plot_title_keeps_its_label_as_written(label: str) -> None:
    box = F.fig_box(pd.DataFrame({"TRT01A": ARMS * 4, "AVISIT": ["Week 4"] * 12, "AVAL": np.arange(12.0)}),
                    parameter=label, number="14.2.9")
    # the demo's title read "Distribution of wrinkle severity rating scale, nlf by arm and visit"
    assert figure_info(box).title == f"Distribution of {label} by arm and visit"
