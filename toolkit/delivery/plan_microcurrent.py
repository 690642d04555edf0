"""A microcurrent prescription on a bench: a current source, or a voltage generator through a series resistor.

* ``driver: current_source`` — a true current source (Keithley 6221) delivers the waveform; its compliance
  reaches the voltage the highest accepted electrode impedance needs, with headroom, so a lifted electrode
  shows up as a collapsing current rather than as a high voltage.
* ``driver: generator`` — the generator's channel wired to the bench's series resistor sets
  ``V = I × (50 Ω + R + measured load)``; the load is measured on the subject and the voltage follows it, the
  shunt verifies the current. The prescription's resistor must be the bench's; the bench must reach the
  current at the highest accepted impedance within its voltage range, or the arm is refused.

Waveforms: galvanic (a direct current, current source only), faradic (monophasic pulses), biphasic (a
symmetric square), and biphasic with a direct part (DC + AC).

``polarity_period_s`` reverses the current (the direct part) every half period, in one of two ways:

* **in the burst** — a current source that holds an arbitrary waveform (the Keithley 6221) plays one whole
  polarity period per burst, the forward half then the reversed half (:mod:`toolkit.delivery.alternating`),
  when that period fits in one burst (``max_burst_interval_s``) and the waveform fits the instrument (points,
  repetition frequency), and the scope can show both halves in one record. One exchange per burst; each
  capture shows the forward half and the start of the reversed half of the same burst.
* **between bursts** — otherwise (a generator through its series resistor, whose voltage follows the measured
  load; a period longer than a burst may last; a waveform the instrument cannot hold): a burst never spans a
  reversal and the current is reversed between bursts.

The plan records which (``instrument['polarity']``) and why.
"""

from __future__ import annotations

import math
from typing import Any

from toolkit.delivery.alternating import AlternatingWaveform, WaveformDoesNotFit, alternating_waveform
from toolkit.delivery.plan_model import ExpectedSignal, TreatmentPlan
from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.views import Need, fit_view, per_pulse_need
from toolkit.errors import ConfigurationError

__all__ = ["mc_plan"]

#: stimulator waveform for each microcurrent waveform of the study model
_MC_WAVEFORMS = {"galvanic": "dc", "faradic": "square", "biphasic": "biphasic"}


def _source_path(rx: Any, bench: Any, tolerances: Any, where: str) -> tuple[str, int, float]:
    """(role, channel, compliance V) of a current source, or a refusal."""
    if bench.current_source is None:
        raise ConfigurationError(
            f"{where} prescribes microcurrent from a current source, but bench {bench.name!r} declares no "
            "current_source; use a bench file with one (e.g. instruments/benches/twin.yaml), or driver: generator"
        )
    if rx.polarity_period_s and bench.current_source.driver != "keithley6221":
        raise ConfigurationError(
            f"{where}: polarity_period_s needs a current source whose polarity can be reversed between bursts; "
            f"bench {bench.name!r} uses driver {bench.current_source.driver!r} (accepted: keithley6221)"
        )
    peak_A = rx.current_A + abs(rx.dc_offset_A)
    compliance_V = min(max(peak_A * tolerances.impedance_ohm_max * 1.25, 1.0), 105.0)
    return "current_source", bench.current_source.channel, compliance_V


def _generator_path(rx: Any, bench: Any, tolerances: Any, where: str) -> tuple[str, int, float]:
    """(role, channel, voltage clamp V) of a generator driving the series resistor, or a refusal."""
    from instruments.drivers import driver_class

    r_rx = float(rx.series_resistor_ohm)
    r_bench = bench.series_resistor_ohms
    if r_bench is None:
        raise ConfigurationError(
            f"{where}: driver: generator with series_resistor_ohm {r_rx:g} Ω needs a bench whose file declares "
            f"that resistor (series_resistor_ohms); bench {bench.name!r} declares none"
        )
    if not math.isclose(r_rx, r_bench, rel_tol=1e-6):
        raise ConfigurationError(
            f"{where}: series_resistor_ohm {r_rx:g} Ω differs from the resistor of bench {bench.name!r} "
            f"(series_resistor_ohms {r_bench:g} Ω); the prescription and the bench must name the same resistor"
        )
    if rx.waveform == "galvanic":
        raise ConfigurationError(
            f"{where}: waveform galvanic with driver: generator — a generator delivers finite bursts of pulses, "
            "not a held direct current; accepted: faradic or biphasic (with dc_offset_uA for DC + AC), or "
            "driver: current_source"
        )
    gen = driver_class(bench.stimulator.driver)
    max_V = float(getattr(gen, "max_output_V", 0.0))
    if bench.stimulator.driver == "keithley6221" or not max_V:
        raise ConfigurationError(
            f"{where}: driver: generator needs a voltage generator as the bench's stimulator; bench "
            f"{bench.name!r} uses {bench.stimulator.driver!r}"
        )
    ohms = float(getattr(gen, "output_ohms", 50.0)) + r_rx + tolerances.impedance_ohm_max + bench.shunt_ohms
    peak_A = rx.current_A + abs(rx.dc_offset_A)
    needed_V = peak_A * ohms
    if needed_V > max_V:
        reachable_uA = max_V / ohms * 1e6
        raise ConfigurationError(
            f"{where}: current_uA {peak_A * 1e6:g} µA through series_resistor_ohm {r_rx:g} Ω needs up to "
            f"{needed_V:.3g} V when the electrodes present the highest accepted impedance (impedance_ohm_max "
            f"{tolerances.impedance_ohm_max:g} Ω), beyond the ±{max_V:g} V of the {bench.stimulator.driver} "
            f"generator; accepted: at most {reachable_uA:.3g} µA with this resistor and tolerances"
        )
    channel = bench.series_resistor_channel or bench.stimulator.channel
    return "stimulator", channel, min(needed_V * 1.05, max_V)


def _in_burst(instrument: dict[str, Any], bench: Any, settings: DeliverySettings, cycles_per_half: int,
              half_s: float, peak_A: float, where: str) -> tuple[AlternatingWaveform | None, str]:
    """The waveform holding both polarities in one burst, or None and why the current is reversed between
    bursts instead (see the module docstring)."""
    from instruments.drivers import driver_class
    from instruments.errors import OutOfRange

    if instrument["driver"] == "generator":
        return None, "a generator through its series resistor follows the measured load burst by burst"
    source = driver_class(bench.current_source.driver)
    check = getattr(source, "check_arb", None)
    if check is None:
        return None, f"driver {bench.current_source.driver!r} holds no arbitrary waveform"
    if 2 * half_s > settings.max_burst_interval_s + 1e-9:
        return None, (f"the polarity period {2 * half_s:g} s is longer than the {settings.max_burst_interval_s:g} s "
                      "a burst may last (max_burst_interval_s)")
    try:
        wave = alternating_waveform(instrument, cycles_per_half=cycles_per_half, half_s=half_s, peak_A=peak_A,
                                    where=where)
        check(wave.points, wave.frequency_Hz, bench.current_source.resource)
    except (WaveformDoesNotFit, OutOfRange) as exc:
        return None, str(exc)
    return wave, ""


def mc_plan(rx: Any, arm_id: str, side: str | None, bench: Any, settings: DeliverySettings,
            tolerances: Any, *, reason: str = "") -> TreatmentPlan:
    """Map a microcurrent prescription onto ``bench`` (see the module docstring); ``reason`` says why the
    polarity is reversed between bursts when the caller already knows it must be."""
    where = f"arm {arm_id!r}"
    generator = rx.driver == "generator"
    role, channel, compliance_V = (_generator_path if generator else _source_path)(rx, bench, tolerances, where)
    waveform = _MC_WAVEFORMS[rx.waveform]
    current_A = rx.current_A
    dc_A = rx.dc_offset_A
    duty = float(rx.duty_cycle) if rx.waveform == "faradic" and rx.duty_cycle is not None else 0.5
    max_interval = settings.burst_interval_s
    if rx.polarity_period_s:
        # a burst never spans a polarity reversal
        max_interval = min(max_interval, rx.polarity_period_s / 2.0)
    if waveform == "dc":
        frequency_Hz = 1.0 / max_interval
        cycles = 1
    else:
        frequency_Hz = float(rx.frequency_Hz)
        period_s = 1.0 / frequency_Hz
        if period_s > max_interval + 1e-12:
            raise ConfigurationError(
                f"{where}: frequency_Hz {frequency_Hz:g} Hz gives a waveform period of {period_s:g} s, longer "
                f"than the {max_interval:g} s a single burst may last here (a dead host must stop stimulation "
                "within one burst, and a burst never spans a polarity reversal); accepted: frequency_Hz >= "
                f"{1 / max_interval:g} Hz"
            )
        cycles = max(1, math.floor(max_interval * frequency_Hz + 1e-9))
    burst_on_s = cycles / frequency_Hz
    flip = max(1, round(rx.polarity_period_s / 2.0 / burst_on_s)) if rx.polarity_period_s else None
    peak_A = current_A + abs(dc_A)
    instrument: dict[str, Any] = {
        "amplitude_A": current_A,
        "waveform": waveform,
        "frequency_Hz": frequency_Hz,
        "compliance_V": compliance_V,
        "cycles_per_burst": cycles,
        "duty_cycle": duty,
        "dc_offset_A": dc_A,
        "driver": rx.driver,
    }
    if generator:
        instrument["series_resistor_ohm"] = float(rx.series_resistor_ohm)
    arb: AlternatingWaveform | None = None
    half_s = burst_on_s
    if flip is not None:
        arb, why = (None, reason) if reason else _in_burst(instrument, bench, settings, flip * cycles,
                                                            flip * burst_on_s, peak_A, where)
        instrument["polarity"] = "reversed within each burst (arbitrary waveform)" if arb else \
            f"reversed between bursts ({why})"
        if arb is not None:
            half_s = arb.half_s
            cycles = 2 * arb.cycles_per_half
            burst_on_s = arb.period_s
            flip = None
            instrument["cycles_per_burst"] = cycles
    # two whole periods (or one polarity's part of the burst when shorter) starting at the trigger, each
    # phase resolved; a burst that reverses within it is seen in one record up to as much of its reversed half
    part_s = min(2.0 / frequency_Hz, half_s)
    if waveform == "dc":
        needs = [Need(part_s / 100, "duration_min", "100 samples over the view of a direct current")]
    else:
        phase_s = (duty if waveform == "square" else 0.5) / frequency_Hz
        needs = [per_pulse_need(phase_s, "frequency_Hz", "waveform phase")]
    views: dict[str, float] = {}
    if arb is not None:
        try:
            views = fit_view(bench, "cycles", half_s + part_s, needs, where)
        except ConfigurationError as exc:
            # the scope cannot resolve both halves in one record: reverse between bursts, one half per burst
            return mc_plan(rx, arm_id, side, bench, settings, tolerances,
                           reason=f"the scope cannot show both halves in one record ({exc})")
        views["cycles_reversed_at_s"] = half_s
        views["cycles_part_s"] = part_s
    else:
        views = fit_view(bench, "cycles", part_s, needs, where)
    window_s = part_s
    # DC + AC: the AC amplitude (half the step between its two levels) and the direct part are checked
    expected = ExpectedSignal(current_on_A=current_A, current_mean_A=dc_A if dc_A else None)
    expected_dummy = ExpectedSignal(current_on_A=current_A, voltage_on_V=current_A * bench.dummy_load_ohms,
                                    current_mean_A=dc_A if dc_A else None)
    # the current channel's range is the set current: through a series resistor the skin's charging spikes
    # at the edges clip (tens of microseconds, a few per cent of a phase's charge), so that the steady current
    # the session verifies, and the impedance the generator follows, keep the scope's full resolution
    current_range_A = peak_A
    return TreatmentPlan(
        modality="microcurrent",
        arm_id=arm_id,
        side=side,
        role=role,
        channel=channel,
        duration_s=rx.duration_s,
        ramp_up_s=float(rx.ramp_up_s),
        ramp_down_s=float(rx.ramp_down_s),
        trigger_interval_s=burst_on_s,
        burst_on_s=burst_on_s,
        pulses_per_burst=cycles,
        flip_every_bursts=flip,
        alternating=arb,
        settings=instrument,
        expected_dummy=expected_dummy,
        expected_live=expected,
        scope={
            "live_window_s": window_s,
            "dummy_window_s": window_s,
            "electrode_V": compliance_V,
            "current_A": current_range_A,
            **views,
        },
    )
