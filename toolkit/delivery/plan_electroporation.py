"""An electroporation prescription on a bench: pulse trains through the amplifier, monophasic or with a carrier.

The generator's setting is the electrode amplitude divided by the amplifier's gain, clamped by the instrument
just above it and never above what the envelope allows at the electrodes. A carrier inside each pulse is an
arbitrary waveform of one pulse period (:mod:`instruments.carrier`), refused on a generator without one.
"""

from __future__ import annotations

from typing import Any

from toolkit.delivery.plan_model import ExpectedSignal, TreatmentPlan
from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.views import edge_need, fit_view, per_pulse_need
from toolkit.errors import ConfigurationError

__all__ = ["ep_plan"]


def ep_plan(rx: Any, arm_id: str, side: str | None, bench: Any, settings: DeliverySettings,
             envelope: Any) -> TreatmentPlan:
    where = f"arm {arm_id!r}"
    train_s = rx.pulses_per_train / rx.pulse_rate_Hz
    if train_s > settings.max_burst_interval_s:
        raise ConfigurationError(
            f"{where}: a train of {rx.pulses_per_train} pulses at {rx.pulse_rate_Hz:g} Hz lasts {train_s:g} s, "
            f"longer than the {settings.max_burst_interval_s:g} s one burst may last; accepted: "
            f"pulses_per_train / pulse_rate_Hz <= {settings.max_burst_interval_s:g} s"
        )
    gain = bench.amplifier_gain
    amp = bench.amplifier
    if amp is not None and rx.amplitude_V > amp.max_output_V:
        raise ConfigurationError(
            f"{where}: amplitude_V {rx.amplitude_V:g} V exceeds the amplifier's max_output_V "
            f"{amp.max_output_V:g} V (bench {bench.name!r})"
        )
    setting_V = rx.amplitude_V / gain
    if amp is not None and setting_V > amp.max_input_V:
        raise ConfigurationError(
            f"{where}: amplitude_V {rx.amplitude_V:g} V needs {setting_V:g} V at the amplifier input, above its "
            f"max_input_V {amp.max_input_V:g} V (bench {bench.name!r})"
        )
    # instrument-side clamp just above the setting, never above what the envelope allows at the electrodes
    ceiling_V = envelope.ep_peak_voltage_max_V / gain
    limit_V = max(setting_V, min(setting_V * 1.05, ceiling_V))
    instrument = {
        "amplitude_V": setting_V,
        "pulse_width_s": rx.pulse_width_s,
        "frequency_Hz": float(rx.pulse_rate_Hz),
        "pulses_per_burst": int(rx.pulses_per_train),
        "offset_V": 0.0,
        "limit_V": limit_V,
        "electrode_amplitude_V": float(rx.amplitude_V),
        "amplifier_gain": gain,
    }
    if rx.carrier_Hz is not None:
        instrument.pop("offset_V")
        instrument["carrier_Hz"] = _carrier_fits_bench(rx, bench, where)
    dummy_current = rx.amplitude_V / bench.dummy_load_ohms
    # one pulse fills the live view at a rate that resolves its edges (its integrals make the dose); the
    # dummy-load check adds a view of the whole train, every pulse with its own samples, for rate and count
    pulse_window_s = 2.5 * rx.pulse_width_s
    shape_needs = [per_pulse_need(rx.pulse_width_s, "pulse_width_ms", "pulse")]
    if rx.carrier_Hz is not None:
        shape_needs.append(per_pulse_need(0.5 / rx.carrier_Hz, "carrier_Hz", "carrier half-cycle"))
    edge = edge_need(bench)
    views = fit_view(bench, "pulse", pulse_window_s, shape_needs + ([edge] if edge is not None else []), where)
    train_window_s = train_s if rx.pulses_per_train >= 2 else 0.0
    if train_window_s:
        views.update(fit_view(bench, "train", train_window_s, shape_needs, where))
    return TreatmentPlan(
        modality="electroporation",
        arm_id=arm_id,
        side=side,
        role="stimulator",
        channel=bench.stimulator.channel,
        duration_s=rx.duration_s,
        ramp_up_s=0.0,
        ramp_down_s=0.0,
        trigger_interval_s=float(rx.train_interval_s),
        burst_on_s=train_s,
        pulses_per_burst=int(rx.pulses_per_train),
        flip_every_bursts=None,
        settings=instrument,
        expected_dummy=ExpectedSignal(current_on_A=dummy_current, voltage_on_V=float(rx.amplitude_V),
                                      pulse_width_s=rx.pulse_width_s, carrier_Hz=rx.carrier_Hz),
        expected_live=ExpectedSignal(voltage_on_V=float(rx.amplitude_V), pulse_width_s=rx.pulse_width_s,
                                     carrier_Hz=rx.carrier_Hz),
        scope={
            "live_window_s": pulse_window_s,
            "dummy_window_s": pulse_window_s,
            "train_window_s": train_window_s,
            "pulse_rate_Hz": float(rx.pulse_rate_Hz),
            "electrode_V": float(rx.amplitude_V),
            "current_A": dummy_current,
            **views,
        },
    )


def _carrier_fits_bench(rx: Any, bench: Any, where: str) -> float:
    """The carrier frequency the bench's generator realises for ``rx``, or a refusal naming the field."""
    from instruments.drivers import driver_class
    from instruments.errors import OutOfRange

    gen = driver_class(bench.stimulator.driver)
    if not getattr(gen, "supports_carrier", False):
        raise ConfigurationError(
            f"{where}: carrier_Hz {rx.carrier_Hz:g} Hz needs a generator that plays arbitrary waveforms; bench "
            f"{bench.name!r} uses driver {bench.stimulator.driver!r} (accepted: keysight33500b)"
        )
    try:
        arb = gen.carrier_waveform(pulse_width_s=rx.pulse_width_s, carrier_Hz=float(rx.carrier_Hz),
                                   frequency_Hz=float(rx.pulse_rate_Hz),
                                   resource=f"the {bench.stimulator.driver} generator")
    except OutOfRange as exc:
        raise ConfigurationError(f"{where}: carrier_Hz {rx.carrier_Hz:g} Hz: {exc}") from None
    return arb.carrier_Hz
