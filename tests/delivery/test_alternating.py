"""Microcurrent whose polarity reverses within each burst: one arbitrary waveform per polarity period.

The demo's faradic arm (200 µA, 10 Hz, duty 0.5, ``polarity_period_s`` 2) plays 10 +pulses then 10 −pulses per
2 s burst. Expected numbers are physics: the charge moved is the current times the time it flows (I × duty ×
on-time), a reversed half carries the same charge the other way (net ≈ 0), and the twin's ledger is the truth
for what its output delivered. A twin made to play the halves swapped, the reversed half missing or at half
its level must never give a completed session.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from toolkit.delivery import DeliverySettings, run_session
from toolkit.delivery.captures import load_capture
from toolkit.delivery.dose import WaveformRates
from toolkit.delivery.plan import make_plan
from toolkit.delivery.timeline import BurstTimeline

from ._support import FAST, Subjects, short

I_A, DUTY = 200e-6, 0.5


def _mc(study, **changes):
    arm = study.arm("MC")
    rx = arm.prescription.model_copy(update=changes)
    return study.model_copy(update={"arms": tuple(a if a.id != "MC" else arm.model_copy(update={"prescription": rx})
                                                  for a in study.arms)})


def _plan(study, settings=FAST, arm_id="MC"):
    from instruments.bench import default_bench_path, load_bench

    arm = study.arm(arm_id)
    return make_plan(arm.prescription, arm_id=arm_id, side=None, bench=load_bench(default_bench_path()),
                     settings=settings, tolerances=study.tolerances, envelope=study.envelope)


def _step(t, name):
    return next(v for v in t.verification if v["step"] == name)


def _capture(store, t, suffix):
    path, sha = next(w for w in t.waveforms if w[0].endswith(suffix))
    return load_capture(store.resolve_path(path), sha256=sha)


def test_demo_faradic_arm_plays_both_polarities_in_each_burst(demo_study):
    plan = _plan(demo_study)
    wave = plan.alternating
    assert wave is not None and plan.flip_every_bursts is None
    assert "within each burst" in plan.settings["polarity"]
    # one 2 s polarity period per burst: 10 +pulses then 10 −pulses, 2 points per 100 ms pulse period
    assert plan.burst_on_s == pytest.approx(2.0) and plan.pulses_per_burst == 20
    assert wave.points == (1.0, 0.0) * 10 + (-1.0, 0.0) * 10
    assert wave.frequency_Hz == pytest.approx(0.5) and wave.peak_A == pytest.approx(I_A)
    assert wave.net_charge_C() == 0.0
    assert plan.as_dict()["alternating"]["points"] == 40


def test_an_alternating_session_counts_each_half_with_its_own_charge(demo_study, demo_store, twin):
    study = _mc(short(demo_study, 0.5), ramp_up_s=0, ramp_down_s=0)
    sid = Subjects(demo_store).add("A-001", "MC")
    mark = twin.model.ledger.mark()
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    t = rec.treatments[0]
    truth = twin.model.ledger.totals(mark, load="skin")
    # 15 bursts of 2 s: 300 pulses of 50 ms, as the twin's output delivered them
    assert t.dose.bursts == 15 and t.dose.pulse_count == 300 == truth.pulses
    assert t.dose.on_time_s == pytest.approx(truth.on_s) and truth.bursts_cut == 0
    # physics: the charge moved is the current while it flows; the reversed halves carry it back
    assert t.dose.charge_C == pytest.approx(I_A * DUTY * 30.0, rel=0.02)
    assert abs(t.dose.net_charge_C) < 0.01 * t.dose.charge_C
    assert t.dose.rms_current_A == pytest.approx(I_A * math.sqrt(DUTY), rel=0.02)
    # the dummy load saw both halves, each at its level
    bursts = _step(t, "dummy_load")["bursts"]
    assert [b["half"] for b in bursts] == ["forward", "reversed"] and not any(b["breaks"] for b in bursts)
    for b in bursts:
        assert b["measures"]["current_on_A"] == pytest.approx(I_A, rel=0.02)
    # live captures of each half, on skin: +pulses from the trigger, −pulses from the reversal 1 s later
    series = _step(t, "live")["summary"]["series"]
    assert {x["polarity"] for x in series} == {1, -1}
    data = _capture(demo_store, t, "-live.npz")
    assert data["meta"]["reversed_at_s"] == pytest.approx(1.0)
    time_s, amps = data["time_s"], data["amps_A"]
    for start, sign in ((0.0, 1), (1.0, -1)):
        on = (time_s >= start) & (time_s < start + 0.2)  # two whole pulse periods
        assert sign * float(np.mean(amps[on])) == pytest.approx(I_A * DUTY, rel=0.05)
    row = demo_store.deliveries(sid).iloc[-1]
    assert row["settings"]["plan"]["alternating"]["cycles_per_half"] == 10
    assert not twin.any_output_on()


def test_ramps_scale_the_alternating_waveform(demo_study, demo_store, twin):
    study = _mc(short(demo_study, 0.5), ramp_up_s=5, ramp_down_s=5)
    plan = _plan(study)
    sid = Subjects(demo_store).add("A-002", "MC")
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    t = rec.treatments[0]
    steps = FAST.ramp_steps
    scales = []
    for k in range(plan.bursts):
        raw = plan.amplitude_scale(k * plan.trigger_interval_s + plan.burst_on_s / 2)
        scales.append(1.0 if raw >= 1.0 else max(math.ceil(raw * steps - 1e-9), 1) / steps)
    assert min(scales) < 1.0
    # each burst moves I × scale × duty × 2 s, half of it each way (the rates come from the first capture, at a
    # fifth of the amplitude on the scope's full-current range: a few 8-bit steps, hence 3 %)
    assert t.dose.charge_C == pytest.approx(I_A * DUTY * 2.0 * sum(scales), rel=0.03)
    assert abs(t.dose.net_charge_C) < 0.01 * t.dose.charge_C


def _played(twin, transform):
    """Make the twin's current source play its arbitrary waveform changed by ``transform`` (a broken bench)."""
    dev = twin.devices["current_source"]
    honest = dev._arb

    def broken():
        points = honest()
        return tuple(transform(np.asarray(points, dtype=float))) if points else points

    dev._arb = broken


@pytest.mark.parametrize(
    ("name", "transform"),
    [
        ("swapped", lambda p: np.concatenate([p[len(p) // 2:], p[: len(p) // 2]])),
        ("reversed half missing", lambda p: np.concatenate([p[: len(p) // 2], np.zeros(len(p) // 2)])),
        ("reversed half at half its level", lambda p: np.concatenate([p[: len(p) // 2], 0.5 * p[len(p) // 2:]])),
        ("no reversal", lambda p: np.abs(p)),
    ],
)
def test_a_bench_that_does_not_reverse_as_programmed_is_never_completed(demo_study, demo_store, twin, name,
                                                                        transform):
    study = _mc(short(demo_study, 0.5), ramp_up_s=0, ramp_down_s=0)
    sid = Subjects(demo_store).add("A-010", "MC")
    _played(twin, transform)
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    t = rec.treatments[0]
    assert t.outcome == "aborted", (name, rec.summary())
    assert t.abort_reason.value in ("verification_failed", "deviation"), t.reason
    assert not twin.any_output_on()


def test_a_cut_burst_counts_only_the_halves_it_delivered():
    """The dose of one 2 s burst (+0.1 mA mean for 1 s, then −0.1 mA mean), cut at 0.5 s, 1.5 s or not."""
    pos = WaveformRates(1e-4, 1e-4, 2e-8, 1e-3)
    neg = WaveformRates(1e-4, -1e-4, 2e-8, 1e-3)
    results = []
    for cut in (0.5, 1.5, None):
        tl = BurstTimeline()
        tl.started(t_sent_s=0.0, t_confirmed_s=0.0, on_s=2.0, pulses=20, period_s=0.1, first_phase_s=0.05,
                   interval_s=2.0, scale=0.5, polarity=1, rates=pos, split=(1.0, neg))
        if cut is not None:
            tl.cut(cut, cut)
        results.append(tl.dose())
    half_cut, late_cut, whole = results
    assert half_cut.net_charge_C == pytest.approx(0.5 * 1e-4 * 0.5)  # forward only, at half amplitude
    assert late_cut.net_charge_C == pytest.approx(0.5 * 1e-4 * (1.0 - 0.5))
    assert whole.net_charge_C == pytest.approx(0.0, abs=1e-15)
    assert whole.charge_C == pytest.approx(0.5 * 1e-4 * 2.0)  # |i| × on-time, both halves
    assert (half_cut.pulse_count, late_cut.pulse_count, whole.pulse_count) == (5, 15, 20)


@pytest.mark.parametrize(
    ("changes", "settings", "why"),
    [
        # a 4 s period does not fit the 2 s a burst may last
        ({"polarity_period_s": 4.0}, FAST, "max_burst_interval_s"),
        # a duty that is no fraction k/n with n ≤ 1000 cannot be placed on equal points
        ({"duty_cycle": 0.33337}, FAST, "duty_cycle 0.33337"),
        # 1 kHz pulses of duty 1/1000 over 2 s: 2 000 000 points, beyond ARB0's 65 535
        ({"frequency_Hz": 1000.0, "duty_cycle": 0.001}, FAST, "accepted: 2 to 65,535"),
    ],
)
def test_a_waveform_the_source_cannot_hold_is_reversed_between_bursts(demo_study, changes, settings, why):
    plan = _plan(_mc(demo_study, **changes), settings)
    assert plan.alternating is None and plan.flip_every_bursts is not None
    assert plan.settings["polarity"].startswith("reversed between bursts") and why in plan.settings["polarity"]


def test_a_generator_or_a_short_burst_limit_reverses_between_bursts(demo_study, repo_root):
    from toolkit.study import load_study

    waveforms = load_study(repo_root / "studies" / "epmc-waveforms")
    mcg = waveforms.arm("MCG")
    study = waveforms.model_copy(update={"arms": tuple(
        a if a.id != "MCG" else a.model_copy(update={"prescription": mcg.prescription.model_copy(
            update={"polarity_period_s": 2.0})}) for a in waveforms.arms)})
    plan = _plan(study, arm_id="MCG")
    assert plan.alternating is None and "series resistor" in plan.settings["polarity"]
    slow = DeliverySettings(burst_interval_s=0.5, capture_every_s=60.0, max_burst_interval_s=1.0)
    plan = _plan(demo_study, slow)
    assert plan.alternating is None and "1 s a burst may last" in plan.settings["polarity"]


def test_reversed_between_bursts_faradic_pulses_keep_their_width(demo_study, demo_store, twin):
    """A 4 s polarity period (longer than a burst may last) reverses between bursts: each reversed pulse must
    last duty × period as the forward ones do, so the session's net charge stays ≈ 0 at a duty of 0.25."""
    # 24 s: six whole polarity periods of 4 s
    study = _mc(short(demo_study, 0.4), ramp_up_s=0, ramp_down_s=0, polarity_period_s=4.0, duty_cycle=0.25)
    assert _plan(study).alternating is None
    sid = Subjects(demo_store).add("A-020", "MC")
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=replace(FAST, capture_every_s=2.0))
    assert rec.outcome == "completed", rec.summary()
    d = rec.treatments[0].dose
    assert d.charge_C == pytest.approx(I_A * 0.25 * 24.0, rel=0.03)
    assert abs(d.net_charge_C) < 0.02 * d.charge_C
