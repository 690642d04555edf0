"""The generator twin's continuous output (no burst), set up as the 33500B manual does, seen on the twin scope.

The expected values are circuit theory: the generator's open-circuit levels (``OUTP:LOAD INF``) times the
amplifier gain, divided between the amplifier's output resistance, the dummy load and the shunt; a sine's
r.m.s. is its peak over √2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from instruments.bench import ConnectedBench
from instruments.measures import measure_pair
from instruments.twin import TwinBench


def _divider(twin: TwinBench) -> float:
    m = twin.model
    return m.amplifier_gain * m.dummy_load_ohms / (m.amplifier_out_ohms + m.dummy_load_ohms + m.shunt_ohms)


def _setup(cb: ConnectedBench, *commands: str) -> None:
    for command in commands:
        cb.stimulator.write(command)
    assert cb.stimulator.errors() == []


def _look(cb: ConnectedBench, twin: TwinBench, *, period_s: float, electrode_V: float, level_V: float):
    """Capture five periods of what reaches the dummy load, triggered on the electrode voltage."""
    tb = 5 * period_s / 10
    cb.scope.configure(timebase_s_per_div=tb, position_s=2.5 * period_s,
                       channels=twin.bench.scope_channels(electrode_V=electrode_V,
                                                          current_A=electrode_V / twin.bench.dummy_load_ohms),
                       record_points=cb.scope.record_points_for(tb, period_s / 200),
                       trigger_channel=1, trigger_level_V=level_V, trigger_slope="rising")
    cb.scope.single()
    cb.scope.wait_acquired(timeout_s=3)
    return cb.scope.capture((1, 2))


def test_continuous_pulse_train_has_the_width_it_was_given(twin: TwinBench, connected: ConnectedBench) -> None:
    # 33500B manual, "To configure a pulse waveform": FUNC PULS, FREQ, FUNC:PULS:WIDT; no burst, output on
    _setup(connected, "OUTP1:LOAD INF", "SOUR1:FUNC PULS", "SOUR1:FREQ 1000", "SOUR1:FUNC:PULS:WIDT 200e-6",
           "SOUR1:VOLT 1", "SOUR1:VOLT:OFFS 0.5", "OUTP1 ON")
    assert twin.delivering(1)
    high = 1.0 * _divider(twin)
    tr = _look(connected, twin, period_s=1e-3, electrode_V=high, level_V=high / 2)
    m = measure_pair(tr[1], tr[2])
    assert m.pulse_width_s == pytest.approx(200e-6, rel=0.02)
    assert m.frequency_Hz == pytest.approx(1000.0, rel=0.01)
    assert m.duty == pytest.approx(0.2, abs=0.01)  # not a 50 % square wave
    assert m.amplitude_V == pytest.approx(high, rel=0.02)
    assert float(connected.stimulator.ask("SOUR1:FUNC:PULS:DCYC?")) == pytest.approx(20.0)

    # a new width takes effect at once, without a trigger
    _setup(connected, "SOUR1:FUNC:PULS:DCYC 35")
    tr = _look(connected, twin, period_s=1e-3, electrode_V=high, level_V=high / 2)
    assert measure_pair(tr[1], tr[2]).pulse_width_s == pytest.approx(350e-6, rel=0.02)

    connected.stimulator.output_off(1)
    assert not twin.delivering(1)
    last = twin.model.ledger.since(0)[-1]
    assert last.cut and last.end_s == pytest.approx(twin.clock.now(), abs=0.5)


def test_continuous_square_follows_its_duty_cycle(twin: TwinBench, connected: ConnectedBench) -> None:
    _setup(connected, "OUTP1:LOAD INF", "SOUR1:FUNC SQU", "SOUR1:FREQ 500", "SOUR1:FUNC:SQU:DCYC 25",
           "SOUR1:VOLT 0.5", "SOUR1:VOLT:OFFS 0.25", "OUTP1 ON")
    high = 0.5 * _divider(twin)
    tr = _look(connected, twin, period_s=2e-3, electrode_V=high, level_V=high / 2)
    m = measure_pair(tr[1], tr[2])
    assert m.frequency_Hz == pytest.approx(500.0, rel=0.01)
    assert m.pulse_width_s == pytest.approx(0.25 * 2e-3, rel=0.02)
    assert float(connected.stimulator.ask("SOUR1:FUNC:SQU:DCYC?")) == pytest.approx(25.0)
    connected.stimulator.output_off(1)


def test_continuous_sine_has_the_rms_of_a_sine(twin: TwinBench, connected: ConnectedBench) -> None:
    _setup(connected, "OUTP1:LOAD INF", "SOUR1:FUNC SIN", "SOUR1:FREQ 1000", "SOUR1:VOLT 0.5",
           "SOUR1:VOLT:OFFS 0", "OUTP1 ON")
    peak = 0.25 * _divider(twin)
    tr = _look(connected, twin, period_s=1e-3, electrode_V=peak, level_V=0.0)
    v = np.asarray(tr[1].values)
    t = np.asarray(tr[1].time_s)
    whole = (t >= t[0]) & (t < t[0] + 4e-3)  # four whole periods
    assert np.max(v) == pytest.approx(peak, rel=0.03)
    assert np.sqrt(np.mean(v[whole] ** 2)) == pytest.approx(peak / math.sqrt(2), rel=0.03)
    assert abs(np.mean(v[whole])) < 0.02 * peak
    connected.stimulator.output_off(1)


def test_continuous_dc_output_and_its_end(twin: TwinBench, connected: ConnectedBench) -> None:
    _setup(connected, "OUTP1:LOAD INF", "SOUR1:FUNC DC", "SOUR1:VOLT:OFFS 0.2", "OUTP1 ON")
    now = twin.clock.now()
    v, i = twin.model.render(np.array([now + 0.01, now + 0.02]))
    assert v == pytest.approx([0.2 * _divider(twin)] * 2, rel=1e-3)
    assert i == pytest.approx([0.2 * _divider(twin) / twin.model.dummy_load_ohms] * 2, rel=1e-3)
    connected.stimulator.write("*RST")
    connected.stimulator.opc()
    assert not twin.delivering(1)
    assert twin.model.ledger.since(0)[-1].cut


def test_burst_mode_keeps_the_output_quiet_until_a_trigger(twin: TwinBench, connected: ConnectedBench) -> None:
    _setup(connected, "OUTP1:LOAD INF", "SOUR1:FUNC PULS", "SOUR1:FREQ 1000", "SOUR1:FUNC:PULS:WIDT 200e-6",
           "SOUR1:VOLT 1", "SOUR1:VOLT:OFFS 0.5", "SOUR1:BURS:MODE TRIG", "SOUR1:BURS:NCYC 3",
           "TRIG1:SOUR BUS", "SOUR1:BURS:STAT ON", "OUTP1 ON")
    assert twin.model.ledger.since(0) == []
    connected.stimulator.write("*TRG")
    connected.stimulator.opc()
    bursts = twin.model.ledger.since(0)
    assert len(bursts) == 1 and bursts[0].cycles == 3
    connected.stimulator.output_off(1)


@pytest.mark.parametrize(("function", "rms_over_peak"), [("SIN", 1 / math.sqrt(2)), ("RAMP", 1 / math.sqrt(3))])
def test_current_source_sine_and_ramp_have_the_rms_of_their_shape(twin: TwinBench, connected: ConnectedBench,
                                                                  function: str, rms_over_peak: float) -> None:
    cs = connected.current_source
    for command in (f":SOUR:WAVE:FUNC {function}", ":SOUR:WAVE:AMPL 1e-3", ":SOUR:WAVE:OFFS 0",
                    ":SOUR:WAVE:FREQ 100", ":SOUR:WAVE:DCYC 50", ":SOUR:WAVE:DUR:CYCL 5", ":SOUR:CURR:COMP 10",
                    ":OUTP ON", ":SOUR:WAVE:ARM", ":SOUR:WAVE:INIT"):
        cs.write(command)
    assert cs.errors() == []
    t0 = twin.model.ledger.since(0)[-1].t0_s
    _, i = twin.model.render(t0 + np.arange(1000) * 1e-5)  # one whole period, 10 µs apart
    assert np.max(i) == pytest.approx(1e-3, rel=0.01) and np.min(i) == pytest.approx(-1e-3, rel=0.01)
    assert np.sqrt(np.mean(i**2)) == pytest.approx(1e-3 * rms_over_peak, rel=0.01)
    assert abs(np.mean(i)) < 1e-6
    cs.write(":OUTP OFF")


def test_scope_trigger_level_and_slope_gate_the_acquisition(twin: TwinBench, connected: ConnectedBench) -> None:
    """On a continuous pulse train: a rising trigger sees the pulse start at the trigger point, a falling one
    its end, and a level above the pulse never triggers (the scope keeps waiting)."""
    from instruments.errors import ConnectionFailed

    _setup(connected, "OUTP1:LOAD INF", "SOUR1:FUNC PULS", "SOUR1:FREQ 1000", "SOUR1:FUNC:PULS:WIDT 300e-6",
           "SOUR1:VOLT 1", "SOUR1:VOLT:OFFS 0.5", "OUTP1 ON")
    high = _divider(twin)
    for slope, before, after in (("rising", 0.0, high), ("falling", high, 0.0)):
        tb = 100e-6
        connected.scope.configure(timebase_s_per_div=tb, position_s=0.0,
                                  channels=twin.bench.scope_channels(electrode_V=high,
                                                                     current_A=high / twin.bench.dummy_load_ohms),
                                  record_points=connected.scope.record_points_for(tb, 1e-6),
                                  trigger_channel=1, trigger_level_V=high / 2, trigger_slope=slope)
        connected.scope.single()
        connected.scope.wait_acquired(timeout_s=3)
        tr = connected.scope.capture((1,))[1]
        t, v = np.asarray(tr.time_s), np.asarray(tr.values)
        assert np.median(v[(t > -50e-6) & (t < -5e-6)]) == pytest.approx(before, abs=0.05 * high), slope
        assert np.median(v[(t > 5e-6) & (t < 50e-6)]) == pytest.approx(after, abs=0.05 * high), slope
    connected.scope.configure(timebase_s_per_div=100e-6, position_s=0.0,
                              channels=twin.bench.scope_channels(electrode_V=high,
                                                                 current_A=high / twin.bench.dummy_load_ohms),
                              trigger_channel=1, trigger_level_V=1.2 * high, trigger_slope="rising")
    connected.scope.single()
    with pytest.raises(ConnectionFailed, match="did not trigger"):
        connected.scope.wait_acquired(timeout_s=0.5)
    connected.stimulator.output_off(1)
