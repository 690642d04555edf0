"""The twin's physical model against known answers: published skin impedance, RC circuit theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instruments.errors import ConnectionFailed
from instruments.twin import TwinBench
from instruments.twin.physics import BenchModel, CurrentDrive, SkinParameters, VoltageDrive


def test_default_skin_matches_the_published_two_electrode_impedance() -> None:
    skin = SkinParameters()
    # DOMAIN: about 130 kΩ at 1 Hz falling to about 30 kΩ at 1 kHz for a pair of electrodes
    assert skin.impedance_ohms(1.0) == pytest.approx(130e3, rel=0.02)
    assert skin.impedance_ohms(1e3) == pytest.approx(30e3, rel=0.05)


def test_sub_threshold_pulse_is_a_first_order_rc_response() -> None:
    model = BenchModel(load="skin", amplifier_gain=1.0, amplifier_out_ohms=5.0, shunt_ohms=10.0,
                       segments_per_phase=40)
    s = model.skin
    dly = model.deliver_voltage(VoltageDrive(high_V=10.0, low_V=0.0, pulse_width_s=5e-3, period_s=20e-3, pulses=1),
                                0.0)
    r_ext = 5.0 + s.rs_ohms + 10.0
    tau = s.cp_F * (s.rp_ohms * r_ext / (s.rp_ohms + r_ext))
    t, i = dly.time_s, dly.current_A
    on = (t > 0) & (t < 5e-3)
    expected = 10.0 / (r_ext + s.rp_ohms) + (10.0 / r_ext - 10.0 / (r_ext + s.rp_ohms)) * np.exp(-t[on] / tau)
    assert np.allclose(i[on], expected, rtol=1e-9, atol=1e-12)
    assert model.pore_fraction(1.0) == 0.0  # 10 V stays below the electroporation threshold


def test_electroporation_threshold_and_three_decade_limit() -> None:
    model = BenchModel(load="skin", amplifier_gain=1.0, amplifier_max_V=1e6)
    model.deliver_voltage(VoltageDrive(high_V=25.0, low_V=0.0, pulse_width_s=1e-3, period_s=10e-3, pulses=3), 0.0)
    assert model.pore_fraction(0.03) == 0.0
    model.deliver_voltage(VoltageDrive(high_V=2000.0, low_V=0.0, pulse_width_s=5e-3, period_s=10e-3, pulses=3), 1.0)
    rp = model.skin_rp_ohms(1.03)
    assert rp == pytest.approx(model.skin.rp_ohms * 1e-3, rel=1e-6)  # at most three orders of magnitude


def test_current_source_resistive_load_and_compliance() -> None:
    model = BenchModel(load="dummy", dummy_load_ohms=1000.0, shunt_ohms=10.0)
    dly = model.deliver_current(CurrentDrive(high_A=1e-3, low_A=-1e-3, high_s=1e-3, period_s=2e-3, cycles=2,
                                             compliance_V=50.0), 0.0)
    assert np.max(dly.current_A) == pytest.approx(1e-3) and np.min(dly.current_A) == pytest.approx(-1e-3)
    assert np.max(dly.electrode_V) == pytest.approx(1.0)
    dly = model.deliver_current(CurrentDrive(high_A=1e-3, low_A=-1e-3, high_s=1e-3, period_s=2e-3, cycles=2,
                                             compliance_V=0.505), 1.0)
    assert np.max(dly.current_A) == pytest.approx(0.505 / 1010.0)  # limited by the compliance voltage


def test_render_outside_the_burst_is_zero_and_long_bursts_repeat() -> None:
    model = BenchModel(load="dummy", max_simulated_pulses=2)
    model.deliver_voltage(VoltageDrive(high_V=1.0, low_V=0.0, pulse_width_s=1e-3, period_s=10e-3, pulses=10), 5.0)
    v, _ = model.render(np.array([4.0, 5.0 + 0.5e-3, 5.0 + 70.5e-3, 5.0 + 75e-3, 5.2]))
    gain_v = 20.0 * 1000.0 / (5.0 + 1000.0 + 10.0)
    assert v[0] == 0.0 and v[4] == 0.0
    assert v[1] == pytest.approx(gain_v) and v[2] == pytest.approx(gain_v)  # 8th pulse, beyond those simulated
    assert v[3] == pytest.approx(0.0)
    assert math.isclose(model.last_delivery.duration_s, 0.1)  # type: ignore[union-attr]


def test_a_port_already_in_use_is_reported() -> None:
    with TwinBench() as first:
        port = first.servers["scope"].port
        with pytest.raises(ConnectionFailed, match=f"port {port}"):
            TwinBench(ports={"scope": port}).start()
