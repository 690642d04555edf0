"""The twin bench end to end through the drivers: delivery, physics, faults and the true output state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instruments.bench import ConnectedBench, connect_bench
from instruments.errors import (
    BlockFormatError,
    ConnectionFailed,
    GarbledReply,
    IdentityMismatch,
    InstrumentError,
    InstrumentReportedError,
    OutOfRange,
    OutputStateUnknown,
)
from instruments.measures import WaveformMeasures, measure_pair
from instruments.twin import TwinBench


def _burst(cb: ConnectedBench, twin: TwinBench, electrode_V: float, *, pulses: int = 3, width_s: float = 1e-3,
           freq_Hz: float = 100.0, current_A: float | None = None, trigger_on_current: bool = False
           ) -> WaveformMeasures:
    """Deliver one burst of pulses and measure it on the scope (triggered on the electrode voltage, or on the
    current where the electrodes show none)."""
    g = cb.generator_amplitude_for(electrode_V)
    cb.stimulator.configure_pulse_train(1, amplitude_V=g, pulse_width_s=width_s, frequency_Hz=freq_Hz,
                                        pulses_per_burst=pulses, limit_V=min(10.0, abs(g) * 1.25))
    expected_I = current_A if current_A is not None else electrode_V / twin.bench.dummy_load_ohms
    tb = pulses / freq_Hz / 10
    cb.scope.configure(timebase_s_per_div=tb, position_s=pulses / freq_Hz / 2 - 0.2 / freq_Hz,
                       channels=twin.bench.scope_channels(electrode_V=electrode_V, current_A=expected_I),
                       record_points=cb.scope.record_points_for(tb, width_s / 50),
                       trigger_channel=2 if trigger_on_current else 1,
                       trigger_level_V=0.3 * (expected_I * twin.model.shunt_ohms if trigger_on_current else electrode_V),
                       trigger_slope="rising" if electrode_V > 0 else "falling")
    cb.stimulator.arm(1)
    cb.stimulator.output_on(1)
    cb.scope.single()
    cb.stimulator.trigger()
    cb.scope.wait_acquired(timeout_s=3)
    twin.clock.advance(pulses / freq_Hz)  # the burst ends before the output goes off (off would cut it)
    cb.stimulator.output_off(1)
    tr = cb.scope.capture((1, 2))
    return measure_pair(tr[1], tr[2])


def test_burst_into_dummy_load_matches_circuit_theory(twin: TwinBench, connected: ConnectedBench) -> None:
    m = _burst(connected, twin, 100.0)
    # generator x20 with 5 Ω amplifier output, 1 kΩ load and 10 Ω shunt in series
    total = twin.model.amplifier_out_ohms + 1000.0 + twin.model.shunt_ohms
    assert m.pulses == 3
    assert m.amplitude_V == pytest.approx(100.0 * 1000.0 / total, rel=0.02)
    assert m.current_peak_A == pytest.approx(100.0 / total, rel=0.03)
    assert m.impedance_ohms == pytest.approx(1000.0, rel=0.02)
    assert m.pulse_width_s == pytest.approx(1e-3, rel=0.02)
    assert m.frequency_Hz == pytest.approx(100.0, rel=0.01)
    assert abs(m.resistance_drop_fraction) < 0.05


def test_output_state_tracked_and_off_after_close(twin: TwinBench) -> None:
    with connect_bench(twin.bench) as cb:
        assert not twin.true_output_state(1)  # nothing enabled on connect
        cb.stimulator.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=100,
                                            pulses_per_burst=2, limit_V=2.0)
        cb.stimulator.arm(1)
        cb.stimulator.output_on(1)
        assert twin.true_output_state(1) and cb.stimulator.output_state(1)
    assert not twin.true_output_state(1)
    assert not twin.any_output_on()


def test_dead_host_burst_ends_without_retrigger(twin: TwinBench, connected: ConnectedBench) -> None:
    cb = connected
    cb.stimulator.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=100,
                                        pulses_per_burst=1000, limit_V=2.0)
    cb.stimulator.arm(1)
    cb.stimulator.output_on(1)
    assert not twin.delivering(1)  # armed, on, but nothing until a trigger
    cb.stimulator.trigger()
    assert twin.delivering(1)
    twin.clock.advance(10.0)  # the 1000-pulse burst lasts 10 s; the host sends no further trigger
    assert not twin.delivering(1)
    assert twin.true_output_state(1)  # output still on, yet delivering nothing


def test_electroporation_drops_skin_resistance_above_threshold(twin: TwinBench, connected: ConnectedBench) -> None:
    twin.model.set_load("skin")
    low = _burst(connected, twin, 10.0, current_A=10.0 / 130e3)
    assert low.impedance_ohms == pytest.approx(130e3 + 500, rel=0.05)  # intact: Rs + Rp
    assert abs(low.resistance_drop_fraction) < 0.1
    assert twin.model.pore_fraction(twin.clock.now()) == 0.0
    high = _burst(connected, twin, 200.0, current_A=0.1)
    assert high.resistance_drop_fraction > 0.3  # pores open within the first pulse
    assert high.impedance_ohms < 130e3 / 10
    porated_rp = twin.model.skin_rp_ohms(twin.clock.now())
    assert porated_rp < 130e3 / 10
    # partial recovery within seconds; after >= 160 V the rest takes tens of minutes
    twin.clock.advance(10.0)
    after_10s = twin.model.skin_rp_ohms(twin.clock.now())
    assert porated_rp < after_10s < 130e3 / 2
    twin.clock.advance(3 * 3600)
    assert twin.model.skin_rp_ohms(twin.clock.now()) == pytest.approx(130e3, rel=0.05)


def test_impedance_step_lift_and_short(twin: TwinBench, connected: ConnectedBench) -> None:
    twin.model.set_load("skin")
    twin.impedance_step(0.1)
    m = _burst(connected, twin, 10.0, current_A=10.0 / 13e3)
    assert m.impedance_ohms == pytest.approx(0.1 * (130e3 + 500), rel=0.05)
    twin.lift_electrode()
    m = _burst(connected, twin, 10.0, current_A=1e-3)
    assert m.current_peak_A < 1e-4 and m.amplitude_V == pytest.approx(10.0, rel=0.03)
    twin.short_electrodes()
    m = _burst(connected, twin, 1.0, current_A=1.0 / 15.0, trigger_on_current=True)
    assert abs(m.amplitude_V) < 0.05  # nothing across shorted electrodes
    assert m.current_peak_A == pytest.approx(1.0 / 15.0, rel=0.05)  # limited by amplifier output + shunt
    twin.clear_faults()
    assert twin.model.contact_fault is None and twin.model.impedance_factor == 1.0


def test_current_source_compliance_into_an_open_circuit(twin: TwinBench, connected: ConnectedBench) -> None:
    cs = connected.current_source
    assert cs is not None
    cs.configure_current(1, amplitude_A=500e-6, waveform="biphasic", frequency_Hz=100, compliance_V=20,
                         cycles_per_burst=3)
    twin.lift_electrode()
    cs.arm(1)
    cs.output_on(1)
    cs.trigger()
    dly = twin.model.last_delivery
    assert dly is not None
    assert np.max(np.abs(dly.electrode_V)) == pytest.approx(20.0)
    assert np.max(np.abs(dly.current_A)) == 0.0
    cs.output_off(1)
    assert not twin.true_output_state(1, "current_source")


def test_microcurrent_into_skin_respects_compliance(twin: TwinBench, connected: ConnectedBench) -> None:
    twin.model.set_load("skin")
    cs = connected.current_source
    assert cs is not None
    cs.configure_current(1, amplitude_A=400e-6, waveform="biphasic", frequency_Hz=10, compliance_V=30,
                         cycles_per_burst=2)
    cs.arm(1)
    cs.output_on(1)
    cs.trigger()
    dly = twin.model.last_delivery
    assert dly is not None
    # 400 µA through 130 kΩ would need 52 V: the source stops at its 30 V compliance
    assert np.max(np.abs(dly.electrode_V + dly.current_A * twin.model.shunt_ohms)) <= 30.0 + 1e-9
    assert np.max(np.abs(dly.current_A)) == pytest.approx(400e-6, rel=1e-6)  # until Cp charges
    assert np.min(np.abs(dly.current_A[len(dly.current_A) // 4:len(dly.current_A) // 2])) < 400e-6


def test_keysight_scope_family_end_to_end() -> None:
    with TwinBench(seed=3, scope_family="keysight") as tw, connect_bench(tw.bench) as cb:
        assert "DSOX" in cb.scope.identify()
        m = _burst(cb, tw, 50.0)
        assert m.amplitude_V == pytest.approx(50.0 * 1000 / 1015, rel=0.02)
        assert m.pulses == 3


# ---- bad input and faults: each a clear error naming the resource, and the output stays off
def test_identity_mismatch_names_the_resource(twin: TwinBench) -> None:
    wrong = twin.bench.model_copy(update={"scope": twin.bench.scope.model_copy(update={"idn": "TEKTRONIX"})})
    with pytest.raises(IdentityMismatch, match="TEKTRONIX") as info:
        connect_bench(wrong)
    assert twin.resources["scope"] in str(info.value)
    assert not twin.any_output_on()


def test_closed_port_is_a_connection_failure(twin: TwinBench) -> None:
    with TwinBench() as other:
        bench = other.bench
    with pytest.raises(ConnectionFailed) as info:  # the other twin is stopped: its ports are closed
        connect_bench(bench, timeout_s=0.5)
    assert bench.stimulator.resource in str(info.value)


def test_timeout_then_output_state_unknown_is_loud_but_output_is_off(twin: TwinBench) -> None:
    cb = connect_bench(twin.bench, timeout_s=0.3)
    cb.stimulator.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=100,
                                        pulses_per_burst=2, limit_V=2.0)
    cb.stimulator.arm(1)
    cb.stimulator.output_on(1)
    twin.inject_timeout("stimulator")
    with pytest.raises(ConnectionFailed, match="did not answer in time"):
        cb.stimulator.identify()
    with pytest.raises(OutputStateUnknown, match="check the instrument by hand"):
        cb.stimulator.safe_shutdown()
    assert not twin.true_output_state(1)  # the OFF commands still reached the instrument
    twin.clear_faults()  # a silent instrument dropped its replies, so once it answers again all is in step
    cb.close()
    assert not twin.any_output_on()


def test_dropped_connection_is_reported(twin: TwinBench, connected: ConnectedBench) -> None:
    twin.drop_connection("scope")
    with pytest.raises(ConnectionFailed, match="scope"):
        connected.scope.identify()


def test_garbled_reply_is_reported(twin: TwinBench, connected: ConnectedBench) -> None:
    twin.garble_next_reply("stimulator")
    with pytest.raises((GarbledReply, ConnectionFailed)):
        connected.stimulator.output_state(1)


def test_truncated_block_is_reported(twin: TwinBench, connected: ConnectedBench) -> None:
    connected.scope.configure(timebase_s_per_div=1e-3, channels=twin.bench.scope_channels(electrode_V=10,
                                                                                          current_A=0.01))
    connected.scope.adapter.connection.timeout = 300
    connected.scope.write(":WAV:SOUR CHAN1")
    twin.garble_next_reply("scope", "truncate")
    with pytest.raises(BlockFormatError, match="truncated"):
        connected.scope.read_block(":WAV:DATA?")


def test_error_pushed_into_the_queue_is_raised_at_configure(twin: TwinBench, connected: ConnectedBench) -> None:
    twin.push_error("stimulator", -222, "injected")
    with pytest.raises(InstrumentReportedError, match="stimulator") as info:
        connected.stimulator.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=100,
                                                   pulses_per_burst=2, limit_V=2.0)
    assert info.value.errors[0].startswith("-222")
    assert not twin.true_output_state(1)


def test_clock_runs_faster_than_real_time() -> None:
    with TwinBench(speed=1000.0) as tw:
        t0 = tw.clock.now()
        tw.clock.sleep(5.0)  # 5 simulated seconds take 5 ms
        assert tw.clock.now() - t0 >= 5.0
        assert not math.isnan(tw.clock.now())


def test_threads_cannot_interleave_commands(twin: TwinBench, connected: ConnectedBench) -> None:
    import threading

    stim = connected.stimulator
    failures: list[str] = []

    def worker(kind: int) -> None:
        for _ in range(40):
            if kind == 0:
                idn = stim.identify()
                if not idn.startswith("Keysight"):
                    failures.append(idn)
            elif stim.output_state(1 + kind % 2):
                failures.append("output on")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []


def test_twin_only_load_command_switches_the_model(twin: TwinBench, connected: ConnectedBench) -> None:
    connected.stimulator.write("TWIN:LOAD SKIN")
    connected.stimulator.opc()  # a write has no reply: synchronise before looking at the model
    assert twin.model.load == "skin"
    assert connected.stimulator.ask("TWIN:LOAD?") == "SKIN"
    connected.stimulator.write("TWIN:LOAD RESISTOR")
    assert connected.stimulator.errors()[0].startswith("-224")
    assert twin.model.load == "skin"


def test_microcurrent_from_the_generator_through_a_series_resistor(twin: TwinBench) -> None:
    bench = twin.bench.model_copy(update={"series_resistor_ohms": 100e3})
    with connect_bench(bench) as cb:
        back = cb.stimulator.configure_current(1, amplitude_A=50e-6, waveform="biphasic", frequency_Hz=200,
                                               compliance_V=6.0, cycles_per_burst=4)
        # ±5 V (50 µA × (100 kΩ + the generator's 50 Ω)) as a pulse from -5 V to +5 V for half of each
        # period, clamped at ±6 V
        assert back["readback"]["amplitude_Vpp"] == pytest.approx(2 * 50e-6 * 100_050)
        assert back["readback"]["offset_V"] == pytest.approx(0.0, abs=1e-9)
        # with the load measured on the subject (130 kΩ + the 10 Ω shunt) the generator sets what that needs
        back = cb.stimulator.configure_current(1, amplitude_A=20e-6, waveform="biphasic", frequency_Hz=200,
                                               compliance_V=6.0, cycles_per_burst=4, load_ohms=130_010)
        assert back["output_V"] == pytest.approx(20e-6 * (50 + 100e3 + 130_010))
        assert back["readback"]["pulse_width_s"] == pytest.approx(2.5e-3)
        assert back["readback"]["limit_high_V"] == pytest.approx(6.0)
        with pytest.raises(OutOfRange, match="'dc' needs a current source"):
            cb.stimulator.configure_current(1, amplitude_A=50e-6, waveform="dc", frequency_Hz=200,
                                            compliance_V=6.0, cycles_per_burst=4)
    bare = twin.bench.model_copy(update={"series_resistor_ohms": None, "series_resistor_channel": None})
    with connect_bench(bare) as cb, pytest.raises(InstrumentError, match="series_resistor_ohms"):
        cb.stimulator.configure_current(1, amplitude_A=50e-6, waveform="square", frequency_Hz=200,
                                        compliance_V=6.0, cycles_per_burst=4)


def test_a_wrong_instrument_receives_nothing_but_idn(twin: TwinBench) -> None:
    # the generator's resource points at the current source: *IDN? does not match, and nothing else is sent
    wrong = twin.bench.model_copy(update={"stimulator": twin.bench.stimulator.model_copy(
        update={"resource": twin.resources["current_source"]})})
    with pytest.raises(IdentityMismatch, match="KEITHLEY"):
        connect_bench(wrong)
    assert twin.servers["current_source"].commands_seen == 1
    assert not twin.any_output_on()


def test_a_trigger_during_a_burst_is_ignored_and_opc_waits_for_the_burst(twin: TwinBench,
                                                                        connected: ConnectedBench) -> None:
    """As the 33500B manual says: *OPC? answers when the burst is complete; a trigger during it is ignored."""
    import time

    gen = connected.stimulator
    gen.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=20, pulses_per_burst=4,
                              limit_V=2.0)
    gen.arm(1)
    gen.output_on(1)
    mark = twin.model.ledger.mark()
    assert gen.trigger() is True
    assert gen.trigger() is False  # the 200 ms burst still runs: -211, nothing new starts
    t0 = time.monotonic()
    gen.opc()  # waits for the burst, in the twin's time (real time here)
    assert 0.1 < time.monotonic() - t0 < 1.0
    assert not twin.delivering(1)
    truth = twin.model.ledger.totals(mark)
    assert (truth.bursts, truth.bursts_cut, truth.pulses) == (1, 0, 4)
    assert truth.on_s == pytest.approx(0.2)


def test_switching_off_or_aborting_cuts_the_running_burst_in_the_ledger(twin: TwinBench,
                                                                       connected: ConnectedBench) -> None:
    gen, cs = connected.stimulator, connected.current_source
    gen.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=10, pulses_per_burst=10,
                              limit_V=2.0)
    gen.arm(1)
    gen.output_on(1)
    mark = twin.model.ledger.mark()
    gen.trigger()
    twin.clock.advance(0.35)
    gen.output_off(1)
    cut = twin.model.ledger.since(mark)[-1]
    assert cut.cut and 0.35 <= cut.on_s < 0.4 and cut.pulses == 4 and not twin.delivering(1)
    v, _ = twin.model.render(np.array([cut.t0_s + 0.3005, cut.t0_s + 0.4005]))
    assert v[0] > 1.0 and v[1] == 0.0  # the scope sees no pulse after the cut
    cs.configure_current(1, amplitude_A=100e-6, waveform="biphasic", frequency_Hz=10, compliance_V=10,
                         cycles_per_burst=10)
    cs.arm(1)
    cs.output_on(1)
    assert cs.trigger() is True
    assert cs.trigger() is False  # -213: the wave still runs
    twin.clock.advance(0.22)
    cs.write(":SOUR:WAVE:ABOR")
    cs.opc()  # a write has no reply: synchronise before looking at the ledger
    last = twin.model.ledger.since(mark)[-1]
    assert last.source == "current" and last.cut and last.pulses == 2  # first phases of cycles 1 and 2
    cs.output_off(1)


def test_the_current_source_plays_its_arbitrary_waveform_half_forward_half_reversed(
        twin: TwinBench, connected: ConnectedBench) -> None:
    """10 +pulses then 10 −pulses (200 µA, 50 ms each) in one 2 s burst: the load sees them in that order, the
    ledger counts 20 pulses, and a cut after 1.3 s leaves 13."""
    cs = connected.current_source
    points = [1.0, 0.0] * 10 + [-1.0, 0.0] * 10
    cs.configure_arb_current(1, points=points, amplitude_A=200e-6, frequency_Hz=0.5, compliance_V=10)
    cs.arm(1)
    cs.output_on(1)
    mark = twin.model.ledger.mark()
    assert cs.trigger() is True
    cs.opc()  # the 2 s burst is delivered
    burst = twin.model.ledger.since(mark)[-1]
    assert (burst.pulses, burst.period_s, burst.first_phase_s) == (20, pytest.approx(0.1), pytest.approx(0.05))
    t = burst.t0_s + np.array([0.025, 0.075, 0.925, 1.025, 1.075, 1.925])
    _, amps = twin.model.render(t)
    assert amps == pytest.approx([200e-6, 0.0, 200e-6, -200e-6, 0.0, -200e-6], abs=1e-9)
    assert cs.trigger() is True
    twin.clock.advance(1.3)
    cs.output_off(1)
    cut = twin.model.ledger.since(mark)[-1]
    assert cut.cut and cut.pulses == 13


def test_the_current_source_refuses_arbitrary_data_as_its_manual_does(twin: TwinBench,
                                                                      connected: ConnectedBench) -> None:
    cs = connected.current_source
    cs.write(":SOUR:WAVE:ARB:DATA " + ",".join(["0.5"] * 101))
    assert cs.errors()[0].startswith("-223")
    cs.write(":SOUR:WAVE:ARB:DATA 1,1.5")
    assert cs.errors()[0].startswith("-222")
    cs.write(":SOUR:WAVE:FUNC ARB1")
    assert cs.errors()[0].startswith("-221")  # nothing copied into ARB1 yet
    cs.write(":SOUR:WAVE:ARB:DATA 1,-1;:SOUR:WAVE:ARB:APP 0.5,-0.5;:SOUR:WAVE:ARB:COPY 1;:SOUR:WAVE:FUNC ARB1")
    assert cs.ask(":SOUR:WAVE:ARB:POIN?;:SOUR:WAVE:FUNC?") == "4;ARB1" and cs.errors() == []
