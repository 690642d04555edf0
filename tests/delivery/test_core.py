"""The parts of a session that need no bench: clock, stop token, state machine, abort rules, dose, guard."""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from toolkit.delivery.abort import AbortReason, AbortRules, RuleDebouncer
from toolkit.delivery.captures import CaptureStore, load_capture, sha256_file
from toolkit.delivery.clock import SimulatedClock, WallClock
from toolkit.delivery.dose import DoseAccumulator, WaveformRates, rates_from_arrays
from toolkit.delivery.guard import OutputGuard
from toolkit.delivery.state import IllegalTransition, SessionState, SessionStateMachine
from toolkit.delivery.stop import StopToken, sigint_stops
from toolkit.errors import StoreError


def test_simulated_clock_moves_only_when_sleeping_and_feeds_the_twin() -> None:
    advanced: list[float] = []
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    clock = SimulatedClock(start, on_advance=advanced.append)
    t0 = time.perf_counter()
    for _ in range(1800):
        clock.sleep(1.0)
    assert time.perf_counter() - t0 < 0.5
    assert clock.now_s() == 1800.0
    assert clock.utcnow() == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert sum(advanced) == 1800.0
    clock.sleep(-3)
    assert clock.now_s() == 1800.0
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 1, 1))


def test_wall_clock_sleep_is_real_and_interruptible() -> None:
    clock = WallClock()
    t0 = clock.now_s()
    clock.sleep(0.05)
    assert clock.now_s() - t0 >= 0.045
    threading.Timer(0.05, clock.interrupt).start()
    t0 = time.monotonic()
    clock.sleep(5.0)
    assert time.monotonic() - t0 < 2.0
    assert clock.utcnow().tzinfo is not None


def test_stop_token_first_reason_wins_and_listeners_fire() -> None:
    token = StopToken()
    woken: list[int] = []
    token.add_listener(lambda: woken.append(1))
    threading.Timer(0.02, token.stop, args=("button",)).start()
    assert token.wait(2.0)
    token.stop("second")
    assert token.reason == "button"
    assert len(woken) == 2
    late: list[int] = []
    token.add_listener(lambda: late.append(1))
    assert late == [1]


def test_sigint_is_routed_to_the_token_then_restored() -> None:
    token = StopToken()
    before = signal.getsignal(signal.SIGINT)
    with sigint_stops(token):
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 2
        while not token.stopped and time.monotonic() < deadline:
            time.sleep(0.001)
        assert token.stopped and "Ctrl+C" in (token.reason or "")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is before


def test_state_machine_refuses_skipping_verification() -> None:
    sm = SessionStateMachine()
    for state in (SessionState.ELIGIBLE, SessionState.RECORD_OPEN, SessionState.PREFLIGHT_OK,
                  SessionState.CONFIGURED):
        sm.advance(state, t_s=0)
    assert not sm.output_allowed
    with pytest.raises(IllegalTransition):
        sm.advance(SessionState.DELIVERING, t_s=0)
    with pytest.raises(IllegalTransition):
        sm.advance(SessionState.COMPLETED, t_s=0)
    sm.advance(SessionState.ABORTING, t_s=1)
    sm.advance(SessionState.ABORTED, t_s=2)
    assert sm.finished and not sm.can_abort()
    assert [h["state"] for h in sm.as_list()][-2:] == ["aborting", "aborted"]


def test_refusal_is_only_possible_before_the_record_opens() -> None:
    sm = SessionStateMachine()
    with pytest.raises(IllegalTransition):
        sm.advance(SessionState.ABORTING, t_s=0)
    sm.advance(SessionState.REFUSED, t_s=0)
    assert sm.finished


@pytest.mark.parametrize(
    ("impedance", "reason"),
    [(2e6, AbortReason.ELECTRODE_LIFTED), (50.0, AbortReason.ELECTRODE_SHORT), (20e3, None), (math.nan, None)],
)
def test_impedance_rule(impedance: float, reason: AbortReason | None) -> None:
    rules = AbortRules(impedance_ohm_min=200, impedance_ohm_max=200e3, current_rel=0.1)
    got = rules.check_impedance(impedance)
    assert (got.reason if got else None) == reason
    if got:
        assert re.search(r"impedance [\d.]+ [kM]?Ω (above|below) the study (maximum 200 kΩ|minimum 200 Ω)", got.message)


def test_deviation_rule_at_the_tolerance_edge() -> None:
    rules = AbortRules(impedance_ohm_min=1, impedance_ohm_max=2, current_rel=0.1)
    assert rules.check_deviation("I", 109.9e-6, 100e-6, 0.1, unit="A") is None
    hit = rules.check_deviation("I", 110.1e-6, 100e-6, 0.1, unit="A")
    assert hit is not None and hit.reason is AbortReason.DEVIATION and "10.1 %" in hit.message
    assert "measured 110.1 µA, expected 100 µA" in hit.message
    missing = rules.check_deviation("pulse width", None, 200e-6, 0.1, unit="s")
    assert missing.reason is AbortReason.DEVIATION and "expected 200 µs" in missing.message
    with pytest.raises(ValueError):
        AbortRules(impedance_ohm_min=5, impedance_ohm_max=1, current_rel=0.1)


def test_debouncer_needs_consecutive_breaks() -> None:
    rules = AbortRules(impedance_ohm_min=1, impedance_ohm_max=10, current_rel=0.1, consecutive=2)
    deb = RuleDebouncer(rules.consecutive)
    lifted = rules.check_impedance(100)
    assert deb.feed([lifted]) is None
    assert deb.feed([]) is None
    assert deb.feed([lifted]) is None
    assert deb.feed([lifted]) is lifted


def test_dose_of_a_biphasic_square_current_matches_physics() -> None:
    # 100 uA biphasic square into 10 kohm for 30 min: |i| = I, i^2 = I^2, net 0, P = I^2 R
    current_A, load_ohm, f_Hz = 100e-6, 10e3, 0.5
    t = np.arange(0, 4.0, 1e-3)
    i = current_A * np.where((t * f_Hz) % 1 < 0.5, 1.0, -1.0)
    rates = rates_from_arrays(i * load_ohm, i)
    acc = DoseAccumulator()
    for _ in range(900):
        acc.add_burst(on_s=2.0, period_s=2.0, rates=rates, pulses=1)
    dose = acc.dose()
    assert dose.duration_s == pytest.approx(1800.0)
    assert dose.charge_C == pytest.approx(current_A * 1800.0, rel=1e-9)
    assert abs(dose.net_charge_C) < 1e-9
    assert dose.rms_current_A == pytest.approx(current_A, rel=1e-9)
    assert dose.energy_J == pytest.approx(current_A**2 * load_ohm * 1800.0, rel=1e-9)
    assert dose.pulse_count == 900 and dose.bursts == 900


def test_pulse_train_rms_follows_the_duty_cycle() -> None:
    # I_rms of a pulse train = I_peak * sqrt(width * frequency) (DOMAIN.md)
    peak_A, width_s, f_Hz = 0.02, 1e-3, 100.0
    t = np.arange(0, 1.0, 1e-5)
    i = np.where((t % (1 / f_Hz)) < width_s, peak_A, 0.0)
    acc = DoseAccumulator()
    acc.add_burst(on_s=1.0, period_s=1.0, rates=rates_from_arrays(i * 500, i), pulses=100)
    assert acc.dose().rms_current_A == pytest.approx(peak_A * math.sqrt(width_s * f_Hz), rel=1e-3)
    acc.add_burst(on_s=0.0, period_s=1.0, rates=WaveformRates.zero(), pulses=0)
    assert acc.dose().rms_current_A == pytest.approx(peak_A * math.sqrt(width_s * f_Hz / 2), rel=1e-3)
    with pytest.raises(ValueError):
        rates_from_arrays(np.zeros(3), np.zeros(4))


def test_resistance_drop_index_compares_each_runs_first_and_last_fifth() -> None:
    from toolkit.delivery.live import _drop_index

    rng = np.random.default_rng(4)
    v = np.abs(rng.normal(10.0, 1.0, 5_000))
    i = np.abs(rng.normal(1e-3, 1e-4, 5_000))
    # runs at the record's start and end, short ones (k = 2), and one too short to count
    segs = [(0, 40), (100, 112), (300, 1_000), (1_200, 1_205), (4_000, 5_000)]
    want = []
    for a, b in segs:
        if b - a < 10:
            continue
        k = max((b - a) // 5, 2)
        early = v[a:a + k].mean() / i[a:a + k].mean()
        late = v[b - k:b].mean() / i[b - k:b].mean()
        want.append(1.0 - late / early)
    assert _drop_index(v, i, segs) == pytest.approx(float(np.median(want)), rel=1e-12)
    assert math.isnan(_drop_index(v, i, [(5, 9)]))


def test_captures_are_checksummed_and_never_overwritten(tmp_path) -> None:
    store = CaptureStore(tmp_path, "S/001", 3, 7)
    t = np.linspace(0, 1, 50)
    saved = store.save("live", t, np.sin(t), np.cos(t) * 1e-4, {"impedance_ohm": 1e4})
    assert saved.path.startswith("waveforms/S_001/3/delivery-7/")
    assert sha256_file(saved.absolute) == saved.sha256
    data = load_capture(saved.absolute, sha256=saved.sha256)
    np.testing.assert_array_equal(data["volts_V"], np.sin(t))
    assert data["meta"]["impedance_ohm"] == 1e4
    saved.absolute.write_bytes(saved.absolute.read_bytes() + b"x")
    with pytest.raises(StoreError, match="SHA-256"):
        load_capture(saved.absolute, sha256=saved.sha256)
    assert not list(tmp_path.rglob("*.partial"))


class _FlakySwitch:
    """An output that fails the first ``fail`` calls, then behaves."""

    def __init__(self, fail: int, stuck_on: bool = False) -> None:
        self.fail = fail
        self.on = {1: True, 2: True}
        self.stuck_on = stuck_on
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionError("link down")

    def output_off(self, channel: int) -> None:
        self._maybe_fail()
        if not self.stuck_on:
            self.on[channel] = False

    def output_state(self, channel: int) -> bool:
        self._maybe_fail()
        return self.on[channel]


def test_guard_reconnects_until_the_output_reads_back_off() -> None:
    flaky = _FlakySwitch(fail=5)
    reconnects: list[int] = []

    def reconnect() -> _FlakySwitch:
        reconnects.append(1)
        return flaky

    result = OutputGuard(flaky, (1, 2), reconnect=reconnect, retry_for_s=5, retry_interval_s=0.001).switch_off()
    assert result.off and result.readback == {1: False, 2: False}
    assert result.attempts > 1 and reconnects and result.errors


def test_guard_gives_up_after_its_budget_with_unknown_state() -> None:
    stuck = _FlakySwitch(fail=10**9)
    t0 = time.monotonic()
    result = OutputGuard(stuck, (1,), retry_for_s=0.2, retry_interval_s=0.01).switch_off()
    assert 0.2 <= time.monotonic() - t0 < 1.0
    assert result.state == "unknown" and result.readback == {1: None}
    assert "link down" in result.errors[0]


def test_guard_reports_an_output_that_stays_on() -> None:
    stuck = _FlakySwitch(fail=0, stuck_on=True)
    result = OutputGuard(stuck, (1,), retry_for_s=0.05, retry_interval_s=0.01).switch_off()
    assert result.state == "unknown" and result.readback == {1: True}
    assert "read back ON" in result.errors[0]


def test_simulated_clock_shares_a_time_line_with_a_source() -> None:
    class Source:
        def __init__(self) -> None:
            self.t = 100.0

        def now(self) -> float:
            return self.t

        def advance(self, seconds: float) -> None:
            self.t += seconds

    src = Source()
    clock = SimulatedClock(source=src)
    clock.sleep(30.0)
    assert src.t == 130.0 and clock.now_s() == 30.0
    src.t += 5  # the source runs on its own too
    assert clock.now_s() == 35.0


def test_a_second_ctrl_c_waits_for_the_shielded_block() -> None:
    token = StopToken()
    with sigint_stops(token):
        token.stop("first")
        reached_end = False
        with pytest.raises(KeyboardInterrupt), token.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached_end = True
        assert reached_end
