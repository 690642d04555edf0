"""The recorded dose obeys physics: closed-form answers for a resistor and for R‖C skin, E = V·Q for pulses.

Every expected number here is computed from circuit theory written in the test (series resistances, the
skin's Rs + Rp ‖ Cp), never from the twin's own code.
"""

from __future__ import annotations

import math

import pytest

from toolkit.delivery import SimulatedClock, run_session
from toolkit.errors import ConfigurationError

from ._support import FAST, Subjects, short

#: the twin bench: amplifier output resistance and current shunt, in series with the load
R_AMP, R_SHUNT = 5.0, 10.0


def _with_ep(study, **changes):
    arm = study.arm("EP")
    rx = arm.prescription.model_copy(update=changes)
    return study.model_copy(update={"arms": tuple(a if a.id != "EP" else arm.model_copy(update={"prescription": rx})
                                                  for a in study.arms)})


def test_monophasic_pulses_into_the_dummy_load_net_charge_equals_charge_and_energy_is_v_times_q(
        demo_study, demo_store, twin):
    study = short(demo_study, 1.0)
    sid = Subjects(demo_store).add("S-201", "EP")
    rec = run_session(study, sid, 1, store=demo_store, bench=twin.bench, clock=SimulatedClock(source=twin.clock),
                      confirm=lambda request: True, settings=FAST)  # the load stays the 1 kΩ resistor
    assert rec.outcome == "completed", rec.summary()
    rx = study.arm("EP").prescription
    v_load = rx.amplitude_V * 1000 / (R_AMP + 1000 + R_SHUNT)
    d = rec.dose
    assert d.net_charge_C == pytest.approx(d.charge_C, rel=1e-3)
    assert d.energy_J == pytest.approx(v_load * d.charge_C, rel=0.01)
    assert d.charge_C == pytest.approx(d.pulse_count * v_load / 1000 * rx.pulse_width_s, rel=0.01)


def test_sub_threshold_pulses_into_skin_match_the_rc_circuit(demo_study, demo_store, twin):
    """10 V pulses stay below the electroporation threshold: the skin is a linear Rs + Rp ‖ Cp.

    While a pulse is on, i = A + B·exp(−t/τ) with A = V/(r + Rp) and B = V/r − A (r = Rs + amplifier +
    shunt, τ = Cp·(Rp ‖ r)); the charge carried while it is on is A·w + B·τ·(1 − exp(−w/τ)). After it the
    stratum corneum gives its charge back through the source, so the net charge is the conduction A·w.

    The current channel's range covers a short (V / 200 Ω), so the 76 µA conduction current is 1/650 of full
    scale: its integral rests on the scope noise dithering the 8-bit steps, ≈ 2 % standard error per capture.
    """
    from instruments.twin.physics import SkinParameters

    study = short(_with_ep(demo_study, amplitude_V=10.0), 0.1)
    rx = study.arm("EP").prescription
    sid = Subjects(demo_store).add("S-202", "EP")
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    skin = SkinParameters()
    r = skin.rs_ohms + R_AMP + R_SHUNT
    tau = skin.cp_F * skin.rp_ohms * r / (skin.rp_ohms + r)
    a = rx.amplitude_V / (r + skin.rp_ohms)
    b = rx.amplitude_V / r - a
    w = rx.pulse_width_s
    d = rec.dose
    assert d.pulse_count == 15
    assert d.charge_C == pytest.approx(d.pulse_count * (a * w + b * tau * (1 - math.exp(-w / tau))), rel=0.05)
    assert d.net_charge_C == pytest.approx(d.pulse_count * a * w, rel=0.05)
    assert twin.model.pore_fraction(twin.clock.now()) == 0.0


def test_electroporation_pulses_into_skin_deliver_e_equal_to_v_times_q(demo_study, demo_store, twin):
    """The demo's 70 V pulses porate the skin; the energy the electrodes took is V·Q within 3 %."""
    study = short(demo_study, 0.5)
    rx = study.arm("EP").prescription
    sid = Subjects(demo_store).add("S-203", "EP")
    rec = run_session(study, sid, 1, store=demo_store, twin=twin, settings=FAST)
    assert rec.outcome == "completed", rec.summary()
    d = rec.dose
    assert d.energy_J == pytest.approx(rx.amplitude_V * d.charge_C, rel=0.03)
    # a monophasic train: everything flows one way while on; what comes back is the skin capacitance's
    # charge, far below what the pulses carried
    assert 0.8 * d.charge_C < d.net_charge_C < d.charge_C
    live = next(v for v in rec.treatments[0].verification if v["step"] == "live")
    assert live["summary"]["resistance_drop_index_mean"] > 0.1  # the pores opened (≈ 0 for intact skin)


def test_a_scope_too_slow_for_the_pulse_is_refused_before_anything_is_sent(demo_study, demo_store, twin):
    slow = twin.bench.model_copy(update={"scope": twin.bench.scope.model_copy(
        update={"max_sample_rate_Sa_s": 1e6, "max_record_points": 60_000})})
    sid = Subjects(demo_store).add("S-204", "EP")
    with pytest.raises(ConfigurationError) as err:
        run_session(short(demo_study, 1.0), sid, 1, store=demo_store, twin=twin, bench=slow, settings=FAST)
    text = str(err.value)
    assert "pulse_width_ms" in text and "amplifier.bandwidth_Hz" in text and "1e+06 Sa/s" in text
    assert len(demo_store.deliveries()) == 0
    assert sum(s.commands_seen for s in twin.servers.values()) == 0
