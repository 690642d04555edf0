"""Completion is judged from what the bench did: slow replies never make a session "completed" on less.

The twin's ledger is the ground truth (every burst as its output delivered it, cut or whole); the record must
agree with it, and "completed" needs the truth to reach the prescription within the study's tolerance.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from instruments.twin import TwinBench
from toolkit.delivery import AbortReason, PacedClock, run_session
from toolkit.delivery.dose import WaveformRates
from toolkit.delivery.timeline import BurstTimeline

from ._support import FAST, Subjects, short

#: replies slow but inside this I/O timeout
SLOW = replace(FAST, io_timeout_s=2.0)


def _truth_after(twin: TwinBench, mark: int):
    """What the twin's output delivered into the skin after ``mark``."""
    return twin.model.ledger.totals(mark, load="skin")


def _slow_session(study, store, arm: str, subject: str, *, speed: float, instrument: str, delay_s: float,
                  settings=SLOW, **rule):
    """One session on a twin ``speed`` times faster than real time with a paced clock (waits as on a wall
    clock); from the start of delivery ``instrument``'s replies are ``delay_s`` (twin seconds) late.

    Returns the record, the (stopped) twin and the ledger bookmark taken when delivery started.
    """
    sid = Subjects(store).add(subject, arm)
    marks: list[int] = []
    with TwinBench(speed=speed, seed=3) as twin:
        twin.model.max_simulated_pulses = 1

        def progress(event):
            if event.phase in ("ramping_up", "delivering") and not marks:
                marks.append(twin.model.ledger.mark())
                twin.delay_replies(instrument, delay_s / speed, **rule)

        rec = run_session(study, sid, 1, store=store, twin=twin, clock=PacedClock(twin.clock), settings=settings,
                          progress=progress)
    return rec, twin, marks[0]


def _check_against_truth(rec, twin: TwinBench, mark: int, rx, *, per_burst: int) -> None:
    t = rec.treatments[0]
    truth = _truth_after(twin, mark)
    prescribed = round(rx.duration_s / (rx.train_interval_s if rx.modality == "electroporation" else 1.0)) * \
        per_burst if rx.modality == "electroporation" else round(rx.duration_s * rx.frequency_Hz)
    # the record counts what the output truly delivered
    assert t.dose.pulse_count == truth.pulses, (t.dose, truth)
    assert t.dose.on_time_s == pytest.approx(truth.on_s, rel=1e-3, abs=1e-3)
    if t.outcome == "completed":
        assert truth.pulses >= prescribed * (1 - 0.02), (truth, prescribed)
        assert truth.bursts_cut == 0
    else:
        assert t.abort_reason is AbortReason.UNDER_DELIVERED, t.reason
        assert f"{truth.pulses} of {prescribed}" in t.reason


def test_a_late_current_source_reply_never_cuts_bursts_or_fakes_completion(demo_study, demo_store):
    """6 s of faradic ± microcurrent; one start confirmation arrives 1.4 s late (2 s timeout).

    Firing the missed bursts back to back used to cut two bursts at the polarity reversals (5.6 s of 6 s
    delivered, 56 of 60 cycles) and record the session "completed" with 60 cycles. The twin and the
    session's clock run four times faster than real time (the session waits as on a wall clock).
    """
    study = short(demo_study, 0.1)
    rec, twin, mark = _slow_session(study, demo_store, "MC", "S-101", speed=4.0, instrument="current_source",
                                    delay_s=1.4, match="WAVE:INIT", count=1, skip=1)
    assert twin.servers["current_source"].reply_delay.held == 1
    _check_against_truth(rec, twin, mark, study.arm("MC").prescription, per_burst=10)
    truth = _truth_after(twin, mark)
    assert truth.bursts_cut == 0 and truth.on_s == pytest.approx(6.0)
    assert rec.outcome == "completed", rec.summary()
    schedule = next(v for v in rec.treatments[0].verification if v["step"] == "schedule")
    assert schedule["start_latency_max_s"] >= 1.4 and schedule["gap_min_s"] >= 0
    assert not twin.any_output_on()


def test_a_slow_scope_at_every_capture_never_loses_pulses_unrecorded(demo_study, demo_store):
    """300 pulses of the demo EP (5 per train every 2 s); every scope reply is 1.1 s late.

    Each capture then took ≈ 6 s and the loop fired the missed trains back to back: the 33500B ignores a
    trigger during a burst, so trains were lost while the record counted every trigger as delivered. The
    twin runs twenty times faster than real time here, and so does the session's clock.
    """
    study = short(demo_study, 2.0)
    rx = study.arm("EP").prescription
    rec, twin, mark = _slow_session(study, demo_store, "EP", "S-102", speed=20.0, instrument="scope", delay_s=1.1)
    assert twin.servers["scope"].reply_delay.held >= 10
    _check_against_truth(rec, twin, mark, rx, per_burst=rx.pulses_per_train)
    assert rec.outcome == "completed", rec.summary()
    assert not twin.devices["stimulator"].error_queue  # no trigger was ever ignored


def test_a_bench_too_slow_to_finish_in_time_is_recorded_under_delivered(demo_study, demo_store):
    """Every start confirmation 1.6 s late (2 s timeout) in a 6 s microcurrent session of three 2 s bursts
    (each one polarity period): the bounded extension runs out before the third, and the record says how much
    was delivered."""
    study = short(demo_study, 0.1)
    settings = replace(SLOW, max_extension_rel=0.0, max_extension_s=1.0)
    rec, twin, mark = _slow_session(study, demo_store, "MC", "S-103", speed=4.0, instrument="current_source",
                                    delay_s=1.6, settings=settings, match="WAVE:INIT")
    t = rec.treatments[0]
    assert t.outcome == "aborted" and t.abort_reason is AbortReason.UNDER_DELIVERED, t.reason
    assert "under-delivered (" in t.reason
    _check_against_truth(rec, twin, mark, study.arm("MC").prescription, per_burst=10)
    truth = _truth_after(twin, mark)
    assert truth.bursts_cut == 0 and 0 < truth.pulses < 60
    row = demo_store.deliveries("S-103").iloc[-1]
    assert row["status"] == "aborted" and row["dose"]["pulse_count"] == truth.pulses
    assert not twin.any_output_on()


def _entry(timeline: BurstTimeline, t_sent: float, t_conf: float, **kw):
    base = {"on_s": 1.0, "pulses": 5, "period_s": 0.2, "first_phase_s": 1e-3, "interval_s": 2.0, "scale": 1.0,
            "polarity": 1, "rates": WaveformRates(1e-3, 1e-3, 1e-6, 1e-2)}
    return timeline.started(t_sent_s=t_sent, t_confirmed_s=t_conf, **{**base, **kw})


def test_timeline_bounds_a_cut_burst_between_its_start_and_cut_readings():
    tl = BurstTimeline()
    _entry(tl, 0.0, 0.001)
    assert tl.idle_at_s() == pytest.approx(1.001)
    _entry(tl, 2.0, 2.5)  # confirmation 0.5 s late: the burst may end as late as 3.5 s
    assert tl.idle_at_s() == pytest.approx(3.5)
    assert tl.cut(2.7, 2.71)  # switched off while it may still run
    e = tl.entries[-1]
    assert e.delivered_s("low") == pytest.approx(0.2) and e.delivered_s("high") == pytest.approx(0.71)
    assert e.pulses_delivered("low") == 1 and e.pulses_delivered("high") == 4  # the pulse at 0.2 s needs 0.201 s
    assert not e.complete and tl.delivered("low").bursts_complete == 1
    assert not tl.cut(5.0, 5.1)  # nothing runs any more
    dose = tl.dose()
    assert dose.pulse_count == 5 + e.pulses_delivered("estimate")
    assert dose.duration_s == pytest.approx(2.0 + 2.0 * e.delivered_s("estimate"))
    ignored = _entry(tl, 6.0, 6.001, accepted=False)
    assert ignored.delivered_s() == 0.0 and tl.ignored == 1 and tl.last is e
