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


def _sampled_pores(model: BenchModel) -> tuple[float, float, float]:
    """Pore state after the last burst, integrated by the sample-by-sample path from its recorded start."""
    from instruments.twin.physics import _PoreState

    burst = model._last
    pores = _PoreState(*burst.pores_before)
    model._simulate_samples(burst, pores)
    return pores.fast, pores.slow, pores.long


@pytest.mark.parametrize(
    ("high_V", "pulses", "max_simulated"),
    [(3.5, 5, 100), (3.5, 5, 1), (9.0, 3, 100), (12.0, 40, 4), (1.4, 2, 100)],
)
def test_lazy_pore_bookkeeping_equals_the_sampled_integration(high_V: float, pulses: int,
                                                              max_simulated: int) -> None:
    # 70 V, 180 V (strong: long recovery), 240 V (clipped) after the ×20 amplifier, and 28 V (sub-threshold)
    model = BenchModel(load="skin", max_simulated_pulses=max_simulated)
    drive = VoltageDrive(high_V=high_V, low_V=0.0, pulse_width_s=1e-3, period_s=0.2, pulses=pulses)
    for k in range(4):
        model.start_voltage_burst(drive, 2.0 * k)
        p = model._pores
        assert (p.fast, p.slow, p.long) == pytest.approx(_sampled_pores(model), rel=1e-9, abs=1e-15)
    assert model.bursts_simulated == 0  # nobody looked at the waveforms: none was simulated
    if high_V * 20 > 30:
        assert model.pore_fraction(8.0) > 0.05
    else:
        assert model.pore_fraction(8.0) == 0.0


def test_pore_bookkeeping_without_pieces_is_the_solved_steps_exactly() -> None:
    """A voltage burst's pore state is integrated from each step's end and peak alone (no pieces built): the
    same floats as solving the steps, for steps that charge, discharge, saturate and stand still."""
    from instruments.twin.circuit import solve_piece, voltage_driven_vc

    rng = np.random.default_rng(3)
    for _ in range(2000):
        level, dur, vc0 = rng.uniform(-200, 200), 10 ** rng.uniform(-8, -1), rng.uniform(-150, 150)
        rp, cp = 10 ** rng.uniform(1, 6), 10 ** rng.uniform(-10, -7)
        src, series, shunt = rng.choice([0.0, 50.0, 200.0]), rng.uniform(0, 2000), 1.0
        (piece,) = solve_piece(level, dur, vc0, source="voltage", src_ohms=src, series=series, shunt_ohms=shunt,
                               rp=rp, cp=cp, compliance_V=math.inf)
        assert voltage_driven_vc(level, dur, vc0, src + series + shunt, rp, cp) == (piece.vc_end, piece.vc_peak)
    for high_V, pulses in ((3.5, 5), (9.0, 3), (1.4, 2)):
        model = BenchModel(load="skin", max_simulated_pulses=2)
        drive = VoltageDrive(high_V=high_V, low_V=0.0, pulse_width_s=1e-3, period_s=0.2, pulses=pulses)
        for k in range(3):
            model.start_voltage_burst(drive, 2.0 * k)
            p = model._pores
            assert (p.fast, p.slow, p.long) == _sampled_pores(model)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(a.view(np.int64) == b.view(np.int64)))


@pytest.mark.parametrize("load", ["skin", "dummy"])
def test_a_record_in_time_order_evaluates_exactly_as_scattered_instants(load: str) -> None:
    """A scope record (instants in order) is evaluated piece by piece, also where it folds onto the burst's last
    solved period and where an exponential is below what a float holds (left 0.0 without evaluating it); the
    same instants out of order take the general path: the same bits, filtered or not, for a burst cut short
    and one folding onto its last period."""
    model = BenchModel(load=load, max_simulated_pulses=2)
    drive = VoltageDrive(high_V=3.5, low_V=0.0, pulse_width_s=1e-3, period_s=4e-3, pulses=5)
    dly = model.deliver_voltage(drive, 0.0)
    wave = dly.waveform
    rel = np.linspace(-1e-3, 2.5e-2, 60_000)  # before the burst, through its folded periods, after its end
    order = np.random.default_rng(7).permutation(rel.size)
    for tau_s, end_s in ((0.0, None), (1.6e-7, None), (1.6e-7, 9.5e-3), (2e-6, 5e-3)):
        v, i = wave.evaluate(rel, tau_filter_s=tau_s, end_s=end_s)
        v_s, i_s = wave.evaluate(rel[order], tau_filter_s=tau_s, end_s=end_s)
        assert _same_bits(v[order], v_s) and _same_bits(i[order], i_s)
        assert np.any(v != 0.0)
    # within the solved periods only: the piece-by-piece path itself (no fold)
    inside = np.linspace(0.0, 7.9e-3, 30_000)
    v, i = wave.evaluate(inside, tau_filter_s=1.6e-7)
    v_s, i_s = wave.evaluate(inside[::-1], tau_filter_s=1.6e-7)
    assert _same_bits(v, v_s[::-1]) and _same_bits(i, i_s[::-1])
    # a pulse train seen whole (the dummy-load train view): every period after the solved ones is folded
    train = np.linspace(-0.2, 1.2, 60_000) * drive.period_s * drive.pulses
    v, i = wave.evaluate(train, tau_filter_s=1.6e-7)
    v_s, i_s = wave.evaluate(train[::-1], tau_filter_s=1.6e-7)
    assert _same_bits(v, v_s[::-1]) and _same_bits(i, i_s[::-1])


def test_current_burst_below_threshold_leaves_pores_and_compliance_takes_the_exact_path() -> None:
    model = BenchModel(load="skin")
    below = CurrentDrive(high_A=200e-6, low_A=0.0, high_s=0.05, period_s=0.1, cycles=10, compliance_V=40.0)
    model.start_current_burst(below, 0.0)  # 200 µA × 130 kΩ = 26 V < 30 V threshold
    assert model.pore_fraction(1.0) == 0.0 and model.bursts_simulated == 0
    # 600 µA would need 78 V; the 60 V compliance limits it, yet the stratum corneum passes the threshold
    limited = CurrentDrive(high_A=600e-6, low_A=0.0, high_s=0.05, period_s=0.1, cycles=3, compliance_V=60.0)
    dly = model.deliver_current(limited, 2.0)
    assert np.max(np.abs(dly.electrode_V)) <= 60.0 + 1e-9
    assert model.pore_fraction(2.3) > 0.0
    assert model.pore_fraction(2.3) == pytest.approx(max(_sampled_pores(model)), rel=1e-6)


def test_repeated_bursts_are_replayed_from_the_cache_and_match_a_fresh_simulation() -> None:
    drive = VoltageDrive(high_V=1.0, low_V=0.0, pulse_width_s=1e-3, period_s=10e-3, pulses=5)
    model = BenchModel(load="dummy")
    first = model.deliver_voltage(drive, 0.0)
    again = model.deliver_voltage(drive, 3.0)
    assert (model.bursts_simulated, model.bursts_cached) == (1, 1)
    assert again.t0_s == 3.0 and first.t0_s == 0.0
    fresh = BenchModel(load="dummy").deliver_voltage(drive, 3.0)
    assert np.array_equal(again.electrode_V, fresh.electrode_V) and np.array_equal(again.time_s, fresh.time_s)
    v, _ = model.render(np.array([3.0005, 2.0005]))
    assert v[0] == pytest.approx(20.0 * 1000.0 / 1015.0) and v[1] == 0.0  # the replay sits at its own start
    with pytest.raises(ValueError):
        again.electrode_V[0] = 1.0  # shared by every replay: read-only
    # anything the waveform depends on makes it a new simulation
    model.contact_fault = "short"
    shorted = model.deliver_voltage(drive, 6.0)
    assert model.bursts_simulated == 2
    assert np.max(shorted.current_A) > 10 * np.max(first.current_A)


def test_waveforms_follow_the_state_at_the_burst_start_even_when_read_later() -> None:
    drive = VoltageDrive(high_V=3.5, low_V=0.0, pulse_width_s=1e-3, period_s=0.2, pulses=5)
    lazy = BenchModel(load="skin")
    lazy.start_voltage_burst(drive, 0.0)
    lazy.start_voltage_burst(drive, 2.0)
    lazy.impedance_factor = 5.0  # changed after the burst started: the burst already happened
    late = lazy.last_delivery
    eager = BenchModel(load="skin")
    eager.deliver_voltage(drive, 0.0)
    now = eager.deliver_voltage(drive, 2.0)
    assert late is not None and late.t0_s == 2.0
    assert np.allclose(late.current_A, now.current_A, rtol=1e-12, atol=0.0)


def _filtered_step(t: np.ndarray, a: float, b: float, tau: float, tau_f: float) -> np.ndarray:
    """One-pole low-pass (tau_f) of a + b·exp(-t/tau) switched on at t = 0 from rest (derived by hand)."""
    t = np.clip(t, 0.0, None)
    return a * (1 - np.exp(-t / tau_f)) + b * tau / (tau - tau_f) * (np.exp(-t / tau) - np.exp(-t / tau_f))


def test_the_scope_sees_the_exact_transient_through_the_bandwidth_at_any_rate() -> None:
    """A sub-threshold pulse into R‖C skin, band-limited by the amplifier, against the closed form.

    The circuit is linear below the electroporation threshold, so the pulse is a step up minus a step down
    and a one-pole filter acts on each step: the expected current is written here independently.
    """
    model = BenchModel(load="skin", amplifier_gain=1.0, amplifier_out_ohms=5.0, shunt_ohms=10.0,
                       amplifier_bandwidth_Hz=1e6)
    s = model.skin
    v_src, width = 10.0, 100e-6
    model.deliver_voltage(VoltageDrive(high_V=v_src, low_V=0.0, pulse_width_s=width, period_s=10e-3, pulses=1), 2.0)
    r_ext = 5.0 + s.rs_ohms + 10.0
    tau = s.cp_F * (s.rp_ohms * r_ext / (s.rp_ohms + r_ext))
    tau_f = 1 / (2 * math.pi * 1e6)
    a = v_src / (r_ext + s.rp_ohms)
    b = v_src / r_ext - a

    def expected(t: np.ndarray) -> np.ndarray:
        return _filtered_step(t, a, b, tau, tau_f) - _filtered_step(t - width, a, b, tau, tau_f)

    for step in (5e-9, 1.3e-6, 47e-6):  # far finer than, near, and far coarser than the transient
        t = np.arange(0.0, 2.5 * width, step)
        _, i = model.render(2.0 + t)
        assert np.allclose(i, expected(t), rtol=1e-6, atol=1e-9), step
    # the charge that flowed in while the stratum corneum charged comes back after the pulse: net = a·width
    t = np.arange(0.0, 3 * width, 1e-9)
    _, i = model.render(2.0 + t)
    assert i.sum() * 1e-9 == pytest.approx(a * width, rel=2e-3)


def test_a_coarse_capture_samples_the_circuit_not_an_interpolation_of_it() -> None:
    """70 V, 1 ms into skin sampled every 50 µs: after the pulse the skin has discharged within microseconds,
    so every later sample is (almost) zero — no ramp drawn between two coarse points of a simulation."""
    model = BenchModel(load="skin", max_simulated_pulses=1)
    model.deliver_voltage(VoltageDrive(high_V=3.5, low_V=0.0, pulse_width_s=1e-3, period_s=0.2, pulses=5), 0.0)
    t = np.arange(0.0, 0.02, 50e-6)
    v, i = model.render(t)
    during = t < 1e-3
    after = t >= 1.05e-3
    assert np.all(i[during][1:] > 4e-4) and i[during][-1] > 4e-3  # rising as the skin electroporates
    assert np.max(np.abs(i[after])) < 1e-6 and np.max(np.abs(v[after])) < 1e-3


def test_scope_records_rendered_in_kept_buffers_are_the_bytes_of_fresh_ones() -> None:
    """The scope renders records of one length into buffers it keeps from one record to the next; every record
    is still the bytes a scope rendering into new arrays gives (same seed, same bursts), both channels, and a
    record read before is not changed by the ones after it."""
    from instruments.twin.clock import SimClock
    from instruments.twin.scope import TwinScope

    model = BenchModel(load="skin", max_simulated_pulses=1)
    clock = SimClock(1.0)
    kept, fresh = (TwinScope(model, clock, seed=11) for _ in range(2))
    fresh.SCRATCH_MAX_POINTS = 0  # never keeps a buffer
    setup = (":CHAN3:DISP OFF", ":CHAN4:DISP OFF", ":TIM:SCAL 2.7777777778e-4", ":TIM:OFFS 1.25e-3",
             ":CHAN1:PROB 10", ":CHAN1:SCAL 21.875", ":CHAN2:SCAL 1.09375", ":TRIG:EDGE:LEV 21", ":ACQ:MDEP 60000",
             ":WAV:MODE RAW")
    for scope in (kept, fresh):
        for command in setup:
            scope.execute(command)
    drive = VoltageDrive(high_V=3.5, low_V=0.0, pulse_width_s=1e-3, period_s=0.2, pulses=5)
    earlier: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(3):
        for scope in (kept, fresh):
            scope.execute(":SING")
        model.start_voltage_burst(drive, clock.now())
        clock.advance(0.01)
        for scope in (kept, fresh):
            assert scope.execute(":TRIG:STAT?") == b"STOP"
        records = [(scope.sample(1), scope.sample(2)) for scope in (kept, fresh)]
        assert all(r.size == 60_000 for pair in records for r in pair)
        assert np.array_equal(records[0][0], records[1][0]) and np.array_equal(records[0][1], records[1][1])
        assert np.ptp(records[0][0]) > 50 and np.ptp(records[0][1]) > 20  # a pulse on both channels
        earlier.append((records[0][0], records[0][0].copy()))
        clock.advance(2.0)
    assert all(np.array_equal(seen, copy) for seen, copy in earlier)
    assert kept._scratch_buffers is not None and getattr(fresh, "_scratch_buffers", None) is None
