"""Every waveform of the shipped example study delivers and verifies on the twin, with a dose that obeys physics.

``studies/epmc-waveforms``: electroporation pulses filled with a 1.5 kHz bipolar carrier (an arbitrary waveform),
microcurrent from the generator through the bench's 10 kΩ series resistor, galvanic (DC) current, and DC + AC.
Expected numbers come from the circuit (Ohm's law, the carrier's half-cycles), not from the twin's code.
"""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.delivery import SafetyRefusal, run_session
from toolkit.delivery.captures import load_capture
from toolkit.delivery.deliverable import check_deliverable
from toolkit.errors import ConfigurationError

from ._support import FAST, Subjects, short

#: the twin bench: the generator's output resistance, the series resistor and the current shunt (bench file)
R_GEN, R_SERIES, R_SHUNT = 50.0, 10_000.0, 10.0


def _with(study, arm_id: str, **changes):
    arm = study.arm(arm_id)
    rx = arm.prescription.model_copy(update=changes)
    return study.model_copy(update={"arms": tuple(a if a.id != arm_id else arm.model_copy(update={"prescription": rx})
                                                  for a in study.arms)})


def _step(treatment, name: str) -> dict:
    return next(v for v in treatment.verification if v["step"] == name)


def test_electroporation_with_a_carrier_is_verified_pulse_by_pulse(waveforms_study, wf_store, twin):
    study = short(waveforms_study, 0.5)
    sid = Subjects(wf_store).add("W-001", "EPC")
    rec = run_session(study, sid, 1, store=wf_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    t = rec.treatments[0]
    rx = study.arm("EPC").prescription
    trains = 30 / rx.train_interval_s
    assert t.dose.pulse_count == trains * rx.pulses_per_train
    row = wf_store.deliveries(sid).iloc[-1]
    assert row["settings"]["plan"]["instrument"]["carrier_Hz"] == pytest.approx(1500.0)
    train = next(b for b in _step(t, "dummy_load")["bursts"] if b["view"] == "train")
    # the whole train on the dummy load: five pulses, each a 1 ms envelope of a 1.5 kHz carrier
    assert train["measures"]["pulses"] == 5 and not train["breaks"]
    assert train["measures"]["carrier_Hz"] == pytest.approx(1500.0, rel=0.01)
    assert train["measures"]["pulse_width_s"] == pytest.approx(1e-3, rel=0.02)
    # one pulse into the 1000 Ω dummy load: 1.5 carrier cycles are three half-cycles +, −, + of 1/3 ms, so
    # the net charge is a third of the charge moved, and the charge is V/R × 1 ms
    path, sha = next(w for w in t.waveforms if w[0].endswith("-verify-1.npz"))
    data = load_capture(wf_store.resolve_path(path), sha256=sha)
    time_s, amps = data["time_s"], data["amps_A"]
    dt = float(np.median(np.diff(time_s)))
    moved, net = float(np.abs(amps).sum() * dt), float(amps.sum() * dt)
    load_V = rx.amplitude_V * 1000 / (1000 + 5 + R_SHUNT)  # the amplifier's 5 Ω and the shunt in series
    assert moved == pytest.approx(load_V / 1000 * 1e-3, rel=0.03)
    assert net / moved == pytest.approx(1 / 3, rel=0.03)
    assert not twin.any_output_on()


def test_microcurrent_from_the_generator_follows_the_measured_load(waveforms_study, wf_store, twin):
    study = short(waveforms_study, 0.5)
    sid = Subjects(wf_store).add("W-002", "MCG")
    rec = run_session(study, sid, 1, store=wf_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    t = rec.treatments[0]
    row = wf_store.deliveries(sid).iloc[-1]
    settings = row["settings"]["plan"]["instrument"]
    assert row["settings"]["plan"]["role"] == "stimulator" and row["settings"]["plan"]["channel"] == 2
    # the voltage clamp: what 40 µA needs through the generator, the resistor, the highest accepted
    # impedance and the shunt, with 5 % headroom
    assert settings["compliance_V"] == pytest.approx(1.05 * 40e-6 * (R_GEN + R_SERIES + 200_000 + R_SHUNT))
    series = _step(t, "live")["summary"]["series"]
    full = [c for c in series if c["scale"] == 1.0]
    assert full, series
    for c in full:
        # the current measured on the shunt is the prescription's, whatever the skin presents
        assert c["current_on_A"] == pytest.approx(40e-6, rel=0.05)
        assert 50e3 < c["impedance_ohm"] < 200e3
    # the generator was set for the load it measured (the skin and the shunt), and kept to it
    loads = _step(t, "live")["generator_load"]
    assert loads[0]["programmed_load_ohm"] == pytest.approx(200 + R_SHUNT)  # blind: the lowest accepted load
    assert loads[0]["set_again"]
    assert loads[-1]["measured_load_ohm"] == pytest.approx(full[-1]["impedance_ohm"], rel=0.05)
    assert abs(t.dose.net_charge_C) < 0.02 * t.dose.charge_C
    assert not twin.any_output_on()


@pytest.mark.parametrize("arm", ["GALV", "DCAC"])
def test_galvanic_and_dc_plus_ac_carry_their_direct_charge(waveforms_study, wf_store, twin, arm):
    study = _with(short(waveforms_study, 0.5), arm, ramp_up_s=0, ramp_down_s=0)
    sid = Subjects(wf_store).add("W-003", arm)
    rec = run_session(study, sid, 1, store=wf_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    d = rec.treatments[0].dose
    if arm == "GALV":
        # 150 µA one way for 30 s: 4.5 mC, all of it net
        moved, net, rms = 150e-6 * 30, 150e-6 * 30, 150e-6
    else:
        # 150 µA AC on 50 µA DC: levels +200 and −100 µA half the time each
        moved, net, rms = (200e-6 + 100e-6) / 2 * 30, 50e-6 * 30, np.hypot(150e-6, 50e-6)
    assert d.charge_C == pytest.approx(moved, rel=0.03)
    assert d.net_charge_C == pytest.approx(net, rel=0.03)
    assert d.rms_current_A == pytest.approx(rms, rel=0.03)
    assert not twin.any_output_on()


@pytest.mark.parametrize(
    ("arm", "changes", "words"),
    [
        # a generator through 10 kΩ cannot push 100 µA through the highest accepted impedance
        ("MCG", {"current_uA": 100.0}, ["current_uA 100 µA", "series_resistor_ohm 10000", "at most 47.6 µA"]),
        ("MCG", {"series_resistor_ohm": 4700.0}, ["series_resistor_ohm 4700", "series_resistor_ohms 10000"]),
        # a carrier the generator's arbitrary-waveform memory cannot hold
        ("EPC", {"carrier_Hz": 2e6}, ["carrier_Hz 2e+06 Hz", "65536 samples", "keysight33500b"]),
        # 150 µA for 15 min carries 135 mC one way, above the study's 120 mC
        ("GALV", {"duration_min": 15.0}, ["current_uA", "135 mC", "galvanic_charge_max_mC 120 mC"]),
    ],
)
def test_validate_and_deliver_refuse_the_same_way_before_anything_is_sent(
        waveforms_study, wf_store, twin, arm, changes, words):
    study = _with(waveforms_study, arm, **changes)
    row = next(r for r in check_deliverable(study, twin.bench) if r.arm_id == arm)
    assert not row.deliverable
    sid = Subjects(wf_store).add(f"W-1{len(words)}{arm}", arm)
    with pytest.raises((ConfigurationError, SafetyRefusal)) as err:
        run_session(study, sid, 1, store=wf_store, twin=twin, settings=FAST)
    text = str(err.value) + " ".join(getattr(err.value, "details", None) or [])
    assert row.problem == str(err.value)
    for word in words:
        assert word in text
    assert len(wf_store.deliveries()) == 0
    assert twin.model.deliveries == 0


def test_study_validate_with_a_bench_maps_every_arm_as_deliver_does(repo_root, tmp_path, data_root):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "TOOLKIT_DATA_DIR": str(data_root), "COLUMNS": "160"}
    bench = str(repo_root / "instruments" / "benches" / "twin.yaml")

    def validate(*args):
        return subprocess.run([sys.executable, "-m", "toolkit", "study", "validate", *args, "--bench", bench],
                              capture_output=True, text=True, timeout=120, env=env)

    ok = validate(str(repo_root / "studies" / "epmc-waveforms"))
    assert ok.returncode == 0, ok.stderr
    assert "every arm is deliverable" in ok.stdout and "keysight33500b" not in ok.stdout
    assert "stimulator channel 2" in ok.stdout and "output never enabled; handled as MCG" in ok.stdout
    text = (repo_root / "studies" / "epmc-waveforms" / "study.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "epmc-waveforms"
    folder.mkdir()
    (folder / "study.yaml").write_text(text.replace("current_uA: 40 ", "current_uA: 100 "), encoding="utf-8")
    bad = validate("--json", str(folder))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    arms = json.loads(bad.stdout)["bench"]["arms"]
    assert [a for a, r in arms.items() if not r["deliverable"]] == ["MCG"]
    assert "at most 47.6 µA" in arms["MCG"]["problem"] and arms["EPC"]["plan"]["pulse_points"] > 0
