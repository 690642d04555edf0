"""The bench check: identity, self-test, error queue and calibration of each instrument, then a verification
burst into the dummy load with prescribed vs measured values.

``run_bench_check(bench) -> BenchCheckReport``; ``toolkit bench check BENCH.yaml`` prints it as a table and
exits 0 only if every row passed. The dummy load must be connected (on the twin it is the default load).
Every output is off, and read back off, when the check ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from instruments.bench import Bench, InstrumentSpec
from instruments.errors import InstrumentError

__all__ = ["BenchCheckReport", "CheckRow", "run_bench_check"]


@dataclass(frozen=True)
class CheckRow:
    """One line of the check: what was expected, what was found, and whether it passed."""

    item: str
    expected: str
    measured: str
    passed: bool


@dataclass
class BenchCheckReport:
    """All rows of a bench check."""

    bench: str
    rows: list[CheckRow] = field(default_factory=list)
    measures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True if every row passed (and there is at least one)."""
        return bool(self.rows) and all(r.passed for r in self.rows)

    def add(self, item: str, expected: str, measured: str, passed: bool) -> None:
        """Append a row."""
        self.rows.append(CheckRow(item, expected, measured, bool(passed)))


def _within(measured: float, expected: float, rel: float) -> bool:
    return math.isfinite(measured) and abs(measured - expected) <= rel * abs(expected)


def _check_instrument(report: BenchCheckReport, role: str, spec: InstrumentSpec, timeout_s: float,
                      today: date) -> Any | None:
    from instruments.drivers import open_driver

    if spec.calibration_due is None:
        report.add(f"{role} calibration", "calibration_due declared", "not declared", False)
    else:
        report.add(f"{role} calibration", f"due {spec.calibration_due.isoformat()}",
                   "overdue" if spec.calibration_due < today else "in date", spec.calibration_due >= today)
    try:
        inst = open_driver(spec.driver, spec.resource, timeout_s=timeout_s, name=role)
    except InstrumentError as exc:
        report.add(f"{role} connection", spec.resource, str(exc), False)
        return None
    try:
        idn = inst.identify()
    except InstrumentError as exc:
        report.add(f"{role} identity", spec.idn, str(exc), False)
        inst.abandon()
        return None
    if re.search(spec.idn, idn, flags=re.IGNORECASE) is None:
        report.add(f"{role} identity", spec.idn, idn[:80] or "(empty reply)", False)
        inst.abandon()  # not the declared instrument: send it nothing more
        return None
    report.add(f"{role} identity", spec.idn, idn, True)
    try:
        if getattr(inst, "has_self_test", True):
            tst = inst.self_test()
            report.add(f"{role} self-test", "*TST? = 0", str(tst), tst == 0)
        else:
            # nothing is asked that the instrument does not document; the read-backs stand in for it
            report.add(f"{role} self-test", "*TST? = 0", "not asked: *TST? is not documented for this "
                       "instrument; every setting is read back instead", True)
        errs = inst.errors()
        report.add(f"{role} error queue", "empty", "; ".join(errs) or "empty", not errs)
    except InstrumentError as exc:
        report.add(f"{role} self-test", "*TST? = 0 and an empty error queue", str(exc), False)
        with contextlib.suppress(InstrumentError):
            inst.close()
        return None
    return inst


def run_bench_check(bench: Bench, *, timeout_s: float = 2.0, electrode_V: float = 20.0,
                    today: date | None = None) -> BenchCheckReport:
    """Check every instrument of ``bench`` and verify a burst into the dummy load.

    Parameters
    ----------
    bench : Bench
        The bench configuration.
    timeout_s : float
        I/O timeout per instrument.
    electrode_V : float
        Height of the verification pulses across the dummy load.
    today : date, optional
        Date for the calibration check (default: today).

    Returns
    -------
    BenchCheckReport
    """
    today = today or date.today()
    report = BenchCheckReport(bench.name)
    if bench.amplifier is not None and bench.amplifier.calibration_due is not None:
        due = bench.amplifier.calibration_due
        report.add("amplifier calibration", f"due {due.isoformat()}", "overdue" if due < today else "in date",
                   due >= today)
    opened: dict[str, Any] = {}
    try:
        for role, spec in bench.instruments():
            inst = _check_instrument(report, role, spec, timeout_s, today)
            if inst is not None:
                opened[role] = inst
        if "stimulator" in opened and "scope" in opened:
            _verify_voltage(report, bench, opened["stimulator"], opened["scope"], electrode_V)
        if "current_source" in opened and "scope" in opened:
            _verify_current(report, bench, opened["current_source"], opened["scope"])
    finally:
        for role, inst in opened.items():
            try:
                inst.close()
            except InstrumentError as exc:
                report.add(f"{role} output off at end", "off (read back)", str(exc), False)
    return report


def _capture(scope: Any, stim: Any, channel: int, bench: Bench, burst_s: float) -> Any:
    import time

    from instruments.measures import measure_pair

    scope.single()
    stim.arm(channel)
    stim.output_on(channel)
    try:
        stim.trigger()
        scope.wait_acquired(timeout_s=5.0)
        # switching off during the burst would cut it: let it end first
        time.sleep(burst_s + 0.01)
    finally:
        stim.output_off(channel)
    traces = scope.capture((bench.channels.electrode_voltage.channel, bench.channels.current.channel))
    return measure_pair(traces[bench.channels.electrode_voltage.channel], traces[bench.channels.current.channel])


def _verify_voltage(report: BenchCheckReport, bench: Bench, stim: Any, scope: Any, electrode_V: float) -> None:
    width_s, freq_Hz, n = 1e-3, 100.0, 3
    gain = bench.amplifier_gain
    setting = electrode_V / gain
    expected_I = electrode_V / bench.dummy_load_ohms
    try:
        stim.configure_pulse_train(bench.stimulator.channel, amplitude_V=setting, pulse_width_s=width_s,
                                   frequency_Hz=freq_Hz, pulses_per_burst=n, limit_V=min(10.0, abs(setting) * 1.2))
        scope.configure(timebase_s_per_div=2e-3, channels=bench.scope_channels(electrode_V=electrode_V,
                                                                                current_A=expected_I),
                        trigger_channel=bench.channels.electrode_voltage.channel,
                        trigger_level_V=electrode_V / 2, position_s=10e-3)
        m = _capture(scope, stim, bench.stimulator.channel, bench, n / freq_Hz)
    except InstrumentError as exc:
        report.add("verification burst", f"{n} pulses of {electrode_V:g} V", str(exc), False)
        return
    report.measures["voltage"] = m.as_dict()
    report.add("pulse amplitude", f"{electrode_V:g} V ± 5 %", f"{m.amplitude_V:.4g} V",
               _within(m.amplitude_V, electrode_V, 0.05))
    report.add("pulse width", f"{width_s * 1e3:g} ms ± 5 %", f"{m.pulse_width_s * 1e3:.4g} ms",
               _within(m.pulse_width_s, width_s, 0.05))
    report.add("pulse frequency", f"{freq_Hz:g} Hz ± 2 %", f"{m.frequency_Hz:.4g} Hz",
               _within(m.frequency_Hz, freq_Hz, 0.02))
    report.add("pulses in burst", f"{n} pulses", f"{m.pulses} pulses", m.pulses == n)
    report.add("peak current", f"{expected_I * 1e3:.4g} mA ± 5 %", f"{m.current_peak_A * 1e3:.4g} mA",
               _within(m.current_peak_A, expected_I, 0.05))
    report.add("dummy load impedance", f"{bench.dummy_load_ohms:g} Ω ± 5 %", f"{m.impedance_ohms:.4g} Ω",
               _within(m.impedance_ohms, bench.dummy_load_ohms, 0.05))


def _verify_current(report: BenchCheckReport, bench: Bench, source: Any, scope: Any) -> None:
    amp_A, freq_Hz, cycles = 200e-6, 100.0, 3
    channel = bench.current_source.channel if bench.current_source else 1
    expected_V = amp_A * bench.dummy_load_ohms
    try:
        source.configure_current(channel, amplitude_A=amp_A, waveform="biphasic", frequency_Hz=freq_Hz,
                                 compliance_V=max(1.0, 3 * expected_V), cycles_per_burst=cycles)
        scope.configure(timebase_s_per_div=2e-3,
                        channels=bench.scope_channels(electrode_V=expected_V, current_A=amp_A),
                        trigger_channel=bench.channels.electrode_voltage.channel, trigger_level_V=expected_V / 2,
                        position_s=10e-3)
        m = _capture(scope, source, channel, bench, cycles / freq_Hz)
    except InstrumentError as exc:
        report.add("microcurrent burst", f"{cycles} biphasic cycles of {amp_A * 1e6:g} µA", str(exc), False)
        return
    report.measures["current"] = m.as_dict()
    report.add("microcurrent peak", f"{amp_A * 1e6:g} µA ± 5 %", f"{m.current_peak_A * 1e6:.4g} µA",
               _within(m.current_peak_A, amp_A, 0.05))
    report.add("microcurrent frequency", f"{freq_Hz:g} Hz ± 2 %", f"{m.frequency_Hz:.4g} Hz",
               _within(m.frequency_Hz, freq_Hz, 0.02))
    balance = abs(m.net_dc_charge_C) / (amp_A / freq_Hz / 2 * cycles)
    report.add("microcurrent charge balance", "net DC < 5 % of phase charge", f"{balance * 100:.2g} %",
               balance < 0.05)
