"""Whole sessions on the digital twin over pyvisa-py: every prescription, every abort path, the records."""

from __future__ import annotations

import math
import os
import re
import signal
from dataclasses import replace

import pytest

from toolkit.delivery import AbortReason, NotEligible, SafetyRefusal, StopToken, run_session
from toolkit.delivery.captures import load_capture

from ._support import FAST, Subjects, short


def _fault_at(n_capture: int, action):
    """A progress callback that runs ``action`` at the n-th live capture (1-based)."""
    seen = {"n": 0}

    def progress(event):
        if event.phase == "capture":
            seen["n"] += 1
            if seen["n"] == n_capture:
                action()

    return progress


def _watch_output(twin, log):
    """A progress callback that records the twin's TRUE output states at every event."""

    def progress(event):
        log.append((event.phase, twin.true_output_state(1), twin.true_output_state(1, "current_source")))

    return progress


@pytest.mark.parametrize("arm", ["EP", "MC"])
def test_demo_active_arms_deliver_as_prescribed(demo_study, demo_store, twin, arm):
    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-001", arm)
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    t = rec.treatments[0]
    rx = study.arm(arm).prescription
    dose = t.dose
    assert dose.duration_s == pytest.approx(60.0, rel=0.02)
    if arm == "MC":
        # faradic 50 % duty: I_rms = I·√0.5 and transferred charge I·0.5·t (ramps 5 s + 5 s at lower current)
        assert dose.pulse_count == round(rx.frequency_Hz * 60)
        assert dose.rms_current_A == pytest.approx(rx.current_A * math.sqrt(0.5), rel=0.08)
        ramp_loss = rx.current_A * 0.5 * 10 * 0.4  # 5 ramp steps average 60 % of full current over 10 s
        assert dose.charge_C == pytest.approx(rx.current_A * 0.5 * 60 - ramp_loss, rel=0.05)
        # polarity alternates every second: the net charge is a small fraction of the transferred charge
        assert abs(dose.net_charge_C) < 0.05 * dose.charge_C
    else:
        trains = 60 / rx.train_interval_s
        assert dose.pulse_count == trains * rx.pulses_per_train
        assert dose.on_time_s == pytest.approx(trains * rx.pulses_per_train / rx.pulse_rate_Hz)
        assert dose.energy_J > 0 and dose.charge_C > 0
    assert not twin.any_output_on()
    row = demo_store.deliveries(sid).iloc[-1]
    assert row["status"] == "completed" and row["dose"]["pulse_count"] == dose.pulse_count
    steps = {v["step"] for v in row["verification"]}
    assert {"preflight", "configure_readback", "dummy_load", "operator_electrodes", "live", "output_off"} <= steps
    assert len(row["waveforms"]) == len(t.waveforms) >= 3
    first = row["waveforms"][0]
    data = load_capture(demo_store.resolve_path(first["path"]), sha256=first["sha256"])
    assert data["time_s"].size == data["amps_A"].size > 100
    assert "/waveforms/S-001/1/" in str(demo_store.resolve_path(first["path"]))


def test_sham_never_enables_any_output(demo_study, demo_store, twin):
    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-002", "SHAM")
    log: list = []
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST, progress=_watch_output(twin, log))
    assert rec.outcome == "completed", rec.summary()
    assert log and not any(on or cs_on for _, on, cs_on in log)
    assert twin.model.deliveries == 0
    dose = rec.dose
    assert dose.charge_C == 0 and dose.pulse_count == 0 and dose.duration_s == pytest.approx(60.0)
    live = next(v for v in rec.treatments[0].verification if v["step"] == "live")
    assert live["sham_output_checks"] >= 2


def test_split_face_delivers_both_sides_as_two_records(splitface_study, split_store, twin):
    study = short(splitface_study, 0.5)
    sid = Subjects(split_store).add("S-010")
    rec = run_session(study, sid, 1, store=split_store, twin=twin, settings=replace(FAST, capture_every_s=10.0))
    assert rec.outcome == "completed", rec.summary()
    assert {(t.arm_id, t.side) for t in rec.treatments} == {
        (arm, side) for side, arm in split_store.subject(sid).allocation.side_map.items()
    }
    mc = next(t for t in rec.treatments if t.modality == "microcurrent")
    # biphasic square: I_rms equals the peak current on the plateau (20 of 30 s; the ramps carry less)
    assert 200e-6 * math.sqrt(20 / 30) < mc.dose.rms_current_A < 200e-6 * 1.03
    live = next(v for v in mc.verification if v["step"] == "live")["summary"]
    assert live["current_on_max_A"] == pytest.approx(200e-6, rel=0.05)
    assert abs(mc.dose.net_charge_C) < 0.02 * mc.dose.charge_C
    rows = split_store.deliveries(sid)
    assert list(rows["status"]) == ["completed", "completed"]


@pytest.mark.parametrize(
    ("fault", "arm", "reason"),
    [
        ("lift", "MC", AbortReason.ELECTRODE_LIFTED),
        ("lift", "EP", AbortReason.ELECTRODE_LIFTED),
        ("short", "EP", AbortReason.ELECTRODE_SHORT),
        ("error", "MC", AbortReason.INSTRUMENT_ERROR),
        ("drop", "MC", AbortReason.CONNECTION_LOST),
        ("stop", "EP", AbortReason.OPERATOR_STOP),
        ("sigint", "MC", AbortReason.OPERATOR_STOP),
    ],
)
def test_abort_rules_switch_the_output_off(demo_study, demo_store, twin, fault, arm, reason):
    study = short(demo_study, 3.0)
    sid = Subjects(demo_store).add("S-003", arm)
    token = StopToken()
    actions = {
        "lift": twin.lift_electrode,
        "short": twin.short_electrodes,
        "error": lambda: twin.push_error("current_source" if arm == "MC" else "stimulator", -222, "injected"),
        "drop": lambda: twin.drop_connection("current_source" if arm == "MC" else "stimulator"),
        "stop": lambda: token.stop("notebook Stop button"),
        "sigint": lambda: os.kill(os.getpid(), signal.SIGINT),
    }
    # a rule needs two captures in a row (60 s apart): a lifted electrode is injected at the first live
    # capture, so the rule fires at 120 s, well before the last burst (the MC bursts last 2 s, one polarity
    # period; at the second capture the rule would fire only at the last one, 178 s)
    at = 1 if fault == "lift" else 2
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST, stop=token,
                      progress=_fault_at(at, actions[fault]))
    t = rec.treatments[0]
    assert t.outcome == "aborted", rec.summary()
    assert t.abort_reason is reason, t.reason
    assert not twin.true_output_state(1, "current_source") and not twin.true_output_state(1)
    assert t.output_off["state"] == "off"
    row = demo_store.deliveries(sid).iloc[-1]
    assert row["status"] == "aborted" and reason.value in row["reason"]
    assert 0 < t.dose.duration_s < 180


def test_unreachable_instrument_is_recorded_as_output_state_unknown(demo_study, demo_store, twin):
    import time

    study = short(demo_study, 3.0)
    sid = Subjects(demo_store).add("S-004", "EP")
    t0 = time.monotonic()
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST,
                      progress=_fault_at(1, lambda: twin.inject_timeout("stimulator")))
    elapsed = time.monotonic() - t0
    t = rec.treatments[0]
    assert t.outcome == "output_state_unknown", rec.summary()
    assert "OUTPUT STATE UNKNOWN" in t.reason
    assert elapsed < 20  # bounded: I/O timeouts plus the off_retry_s budget
    row = demo_store.deliveries(sid).iloc[-1]
    assert row["status"] == "output_state_unknown"
    # the twin never stopped executing commands, so the output did go off: the record errs on the safe side
    twin.clear_faults()
    assert not twin.true_output_state(1)


def test_ineligible_subjects_are_refused_before_anything_is_sent(demo_study, demo_store, twin):
    from datetime import date

    study = short(demo_study, 1.0)
    subjects = Subjects(demo_store)
    sid = subjects.add("S-005", "EP")
    with pytest.raises(NotEligible, match="session 1"):
        run_session(study, sid, 3, store=demo_store, twin=twin, settings=FAST)
    with pytest.raises(NotEligible, match="1–12"):
        run_session(study, sid, 13, store=demo_store, twin=twin, settings=FAST)
    demo_store.record_patch_test(sid, passed=False, read_on=date.today())
    with pytest.raises(NotEligible) as err:
        run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert "patch test passed" in str(err.value)
    with pytest.raises(NotEligible, match="not enrolled"):
        run_session(study, "S-999", 1, store=demo_store, twin=twin, settings=FAST)
    assert len(demo_store.deliveries()) == 0
    assert sum(s.commands_seen for s in twin.servers.values()) == 0


def test_a_prescription_outside_the_envelope_is_refused(demo_study, demo_store, twin):
    study = short(demo_study, 1.0)
    mc = study.arm("MC")
    loud = mc.prescription.model_copy(update={"current_uA": 5000.0})
    arms = tuple(a if a.id != "MC" else a.model_copy(update={"prescription": loud}) for a in study.arms)
    study = study.model_copy(update={"arms": arms})
    sid = Subjects(demo_store).add("S-006", "MC")
    with pytest.raises(SafetyRefusal) as err:
        run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert "nothing was sent" in str(err.value) and err.value.details
    assert len(demo_store.deliveries()) == 0
    assert sum(s.commands_seen for s in twin.servers.values()) == 0


def test_a_wrong_amplifier_gain_fails_the_dummy_load_check(demo_study, demo_store):
    from instruments.bench import default_bench_path, load_bench
    from instruments.twin import TwinBench

    declared = load_bench(default_bench_path("twin"))
    actual = declared.model_copy(update={"amplifier": declared.amplifier.model_copy(update={"gain": 23.0})})
    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-007", "EP")
    with TwinBench(speed=1.0, bench=actual) as twin:
        bench = twin.bench.model_copy(update={"amplifier": declared.amplifier})
        rec = run_session(study, sid, 1, store=demo_store, twin=twin, bench=bench, settings=FAST)
        t = rec.treatments[0]
        assert t.abort_reason is AbortReason.VERIFICATION_FAILED, t.reason
        assert "electrode voltage" in t.reason
        # the numbers carry their units: the measured height is 23/20 of the expected one
        found = re.search(r"electrode voltage measured ([\d.]+) V, expected ([\d.]+) V", t.reason)
        assert found is not None, t.reason
        assert float(found[1]) / float(found[2]) == pytest.approx(23 / 20, rel=0.03)
        assert twin.model.deliveries >= 1 and twin.model.load == "dummy"  # never reached the skin
        assert not twin.any_output_on()


def test_resumed_and_repeated_sessions_are_new_linked_records(demo_study, demo_store, twin):
    study = short(demo_study, 2.0)
    sid = Subjects(demo_store).add("S-008", "EP")
    first = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST,
                        progress=_fault_at(1, twin.lift_electrode))
    assert first.outcome == "aborted"
    twin.clear_faults()
    delivered = first.dose.duration_s
    resumed = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert resumed.outcome == "completed", resumed.summary()
    assert resumed.treatments[0].resumed_from == first.delivery_id
    assert resumed.dose.duration_s == pytest.approx(120.0 - delivered, abs=2.0)
    with pytest.raises(NotEligible, match="already completed"):
        run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    again = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST, repeat=True)
    assert again.outcome == "completed" and again.treatments[0].resumed_from == first.delivery_id
    rows = demo_store.deliveries(sid)
    assert list(rows["resumed_from"].fillna(0).astype(int)) == [0, first.delivery_id, first.delivery_id]


def test_expired_calibration_aborts_in_preflight_with_a_record(demo_study, demo_store, twin):
    from datetime import date

    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-009", "EP")
    bench = twin.bench.model_copy(update={
        "stimulator": twin.bench.stimulator.model_copy(update={"calibration_due": date(2020, 1, 1)})})
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, bench=bench, settings=FAST)
    t = rec.treatments[0]
    assert t.outcome == "aborted" and "calibration was due on 2020-01-01" in t.reason
    assert twin.model.deliveries == 0


def test_an_unreachable_bench_is_recorded_and_nothing_enabled(demo_study, demo_store, twin):
    from toolkit.delivery import SimulatedClock

    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-011", "EP")
    dead = twin.bench.model_copy(update={
        "name": "lab",
        "stimulator": twin.bench.stimulator.model_copy(update={"resource": "TCPIP0::127.0.0.1::1::SOCKET"}),
    })
    rec = run_session(study, sid, 1, store=demo_store, bench=dead, clock=SimulatedClock(),
                      confirm=lambda request: True, settings=FAST)
    t = rec.treatments[0]
    assert t.abort_reason is AbortReason.CONNECTION_LOST and "127.0.0.1::1" in t.reason
    assert t.output_off["state"] == "never_enabled"
    assert demo_store.deliveries(sid).iloc[-1]["status"] == "aborted"


def test_real_instruments_need_an_operator(demo_study, demo_store, twin):
    from toolkit.errors import ConfigurationError

    lab = twin.bench.model_copy(update={"name": "lab"})
    with pytest.raises(ConfigurationError, match="confirm"):
        run_session(short(demo_study, 1.0), "S-012", 1, store=demo_store, bench=lab, settings=FAST)


def test_ep_dose_into_a_known_resistor_matches_ohms_law(demo_study, demo_store, twin):
    """Delivered into the bench's 1 kΩ dummy load (never switched to skin), the EP dose has a known answer."""
    from toolkit.delivery import SimulatedClock

    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-013", "EP")
    rec = run_session(study, sid, 1, store=demo_store, bench=twin.bench, clock=SimulatedClock(source=twin.clock),
                      confirm=lambda request: True, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    rx = study.arm("EP").prescription
    # the amplifier (5 Ω out) and the 10 Ω shunt are in series with the 1 kΩ load
    v_load = rx.amplitude_V * 1000 / (5 + 1000 + 10)
    i_load = v_load / 1000
    pulses = 60 / rx.train_interval_s * rx.pulses_per_train
    dose = rec.dose
    assert dose.pulse_count == pulses
    assert dose.charge_C == pytest.approx(pulses * i_load * rx.pulse_width_s, rel=0.02)
    assert dose.energy_J == pytest.approx(pulses * v_load * i_load * rx.pulse_width_s, rel=0.03)
    assert dose.rms_current_A == pytest.approx(i_load * math.sqrt(rx.pulse_width_s * pulses / 60), rel=0.02)


@pytest.mark.parametrize(
    ("mode", "arm", "fragment"),
    [
        # a well-formed block whose length header announces half the record the preamble describes
        ("short_block", "EP", r"CH\d block holds 30000 samples, preamble announces 60000"),
        # a block that stops before its announced length
        ("truncate", "MC", r"truncated block, \d+ bytes announced but the transfer stopped"),
    ],
)
def test_a_wrong_waveform_block_aborts_and_is_never_stored_short(demo_study, demo_store, twin, mode, arm, fragment):
    study = short(demo_study, 3.0)
    sid = Subjects(demo_store).add(f"S-BLK-{mode}", arm)
    # the next waveform data block after the first live capture is corrupted
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST,
                      progress=_fault_at(1, lambda: twin.garble_next_reply("scope", mode, match=":WAV:DATA?")))
    t = rec.treatments[0]
    assert t.outcome == "aborted", rec.summary()
    assert t.abort_reason is AbortReason.INSTRUMENT_ERROR, t.reason
    # the message names the instrument, its address and what was expected of the block
    assert "scope at " + twin.resources["scope"] in t.reason and re.search(fragment, t.reason), t.reason
    assert not twin.true_output_state(1) and not twin.true_output_state(1, "current_source")
    assert t.output_off["state"] == "off"
    # every capture that was stored holds the whole record: a short one was refused, not kept
    points = 60000 if arm == "EP" else 6000
    stored = [load_capture(demo_store.study_dir / path, sha256=digest) for path, digest in t.waveforms]
    assert stored and all(c["volts_V"].size == c["amps_A"].size == points for c in stored)
