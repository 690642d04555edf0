"""One treatment (one arm on one side) on a connected bench: one store record, output safe on every path.

:func:`run_treatment` opens the record before any instrument is touched, then runs preflight, configure and
read back, dummy-load verification, the operator's electrode confirmation, ramped delivery as re-triggered
bursts with live captures and abort rules, and the final output-off read-back.

A microcurrent whose polarity reverses within each burst (:mod:`toolkit.delivery.alternating`) is verified half
by half: each capture records the burst's forward half from its start and the start of its reversed half;
each half's level, sign and direct part are checked, and the dose counts each half with the rates its own
part of the capture measured. Whatever happens — an abort
rule, an instrument error, a lost connection, Ctrl+C, a defect — every stimulating output of the bench is
then switched off and read back (reconnecting for a bounded time) and the record is closed with its dose,
verification results and raw captures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from instruments.units import format_quantity, format_setting
from toolkit.delivery.abort import Abort, AbortReason, AbortRules, RuleDebouncer, SessionAborted
from toolkit.delivery.captures import CaptureStore
from toolkit.delivery.clock import Clock
from toolkit.delivery.dose import WaveformRates, rates_from_arrays
from toolkit.delivery.eligibility import TreatmentTarget
from toolkit.delivery.envelope import Envelope, capture_envelope
from toolkit.delivery.guard import OutputGuard
from toolkit.delivery.live import CaptureMeasures, measure_capture, phase_levels
from toolkit.delivery.operator import ConfirmCallback, ConfirmRequest
from toolkit.delivery.pacing import BurstShape, Pacer
from toolkit.delivery.plan import ExpectedSignal, TreatmentPlan
from toolkit.delivery.progress import ProgressCallback, ProgressEvent
from toolkit.delivery.record import TreatmentResult
from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.state import SessionState, SessionStateMachine
from toolkit.delivery.stop import StopToken
from toolkit.delivery.views import check_resolution
from toolkit.errors import DataError, StoreError, ToolkitError

__all__ = ["SessionContext", "run_treatment"]

S = SessionState
#: relative slack when comparing a read-back setting with what was sent (instrument number formatting)
_READBACK_REL = 1e-3


def _classify(exc: BaseException) -> Abort:
    """Map an instrument-layer exception onto an abort reason."""
    from instruments import errors as ie

    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ie.ConnectionFailed):
        return Abort(AbortReason.CONNECTION_LOST, text)
    if isinstance(exc, ie.InstrumentError):
        return Abort(AbortReason.INSTRUMENT_ERROR, text)
    if isinstance(exc, OSError | EOFError):
        return Abort(AbortReason.CONNECTION_LOST, text)
    return Abort(AbortReason.INTERNAL_ERROR, text)


def _close_enough(sent: Any, got: Any) -> bool:
    if isinstance(sent, bool) or isinstance(got, bool) or isinstance(sent, str) or isinstance(got, str):
        return str(sent).lower() == str(got).lower()
    try:
        a, b = float(sent), float(got)
    except (TypeError, ValueError):
        return sent == got
    return abs(a - b) <= _READBACK_REL * max(abs(a), abs(b), 1e-12)


@dataclass
class SessionContext:
    """Everything the treatments of one session share (study, store, bench, clock, operator, stop token)."""

    study: Any
    store: Any
    bench: Any
    clock: Clock
    settings: DeliverySettings
    confirm: ConfirmCallback
    progress: ProgressCallback | None
    stop: StopToken
    subject_id: str
    session_number: int
    connected: Any = None
    identities: dict[str, str] = field(default_factory=dict)
    progress_errors: int = 0


class _TreatmentRun:
    """Delivers one treatment and writes its record; see the module docstring for the steps."""

    def __init__(self, ctx: SessionContext, target: TreatmentTarget, plan: TreatmentPlan, resumed_from: int | None) -> None:
        self.ctx = ctx
        self.target = target
        self.plan = plan
        self.resumed_from = resumed_from
        self.sm = SessionStateMachine()
        self.sm.advance(S.ELIGIBLE, t_s=ctx.clock.now_s())
        self.verification: list[dict[str, Any]] = []
        self.captures: CaptureStore | None = None
        tol = ctx.study.tolerances
        self.tol = tol
        self.rules = AbortRules(
            impedance_ohm_min=float(tol.impedance_ohm_min),
            impedance_ohm_max=float(tol.impedance_ohm_max),
            current_rel=float(tol.current_rel),
            amplitude_rel=float(tol.amplitude_rel),
            consecutive=ctx.settings.consecutive_breaks,
        )
        self.output_was_enabled = False
        self.t_delivery0: float | None = None
        self.bursts_done = 0
        shape = BurstShape(on_s=plan.burst_on_s, pulses=plan.pulses_per_burst, period_s=plan.pulse_period_s,
                           first_phase_s=plan.first_phase_s, interval_s=plan.trigger_interval_s)
        margin = ctx.settings.trigger_margin_s
        #: the treatment's bursts on the subject, and the verification bursts into the dummy load
        self.pacer = Pacer(ctx.clock, lambda: self.instrument.trigger(), shape, margin, self._check_stop)
        self.verify_pacer = Pacer(ctx.clock, lambda: self.instrument.trigger(), shape, margin, self._check_stop)
        self._active_pacer = self.verify_pacer
        self.live: list[dict[str, Any]] = []
        self._rates_full = WaveformRates.zero()
        #: polarity within the burst: the rates of the reversed half as measured (signed), full amplitude
        self._rates_reversed = WaveformRates.zero()
        self._captured_rates = WaveformRates.zero()
        self._last_measures: CaptureMeasures | None = None
        self._polarity = 1
        #: a generator driving a series resistor: the load it sets its voltage for (measured on the subject)
        bench = ctx.bench
        self._load_ohms = bench.dummy_load_ohms + bench.shunt_ohms
        self._programmed_load_ohms = self._load_ohms
        #: each load the generator measured, and whether it was set again for it
        self._load_history: list[dict[str, Any]] = []
        self._window_s = 0.0
        self._view = ""
        self._scope_trigger = (1.0, 1)
        #: an alternating burst's reversed half in the last capture: its measures and rates
        self._reversed: tuple[CaptureMeasures, WaveformRates] | None = None
        self._scope_ranges = (0.0, 0.0)
        #: the scope object last configured in full (a reconnected scope is configured again in full)
        self._scope_configured: Any = None
        #: the plan's view that the live captures and the dummy-load check look at
        self._live_view = "pulse" if plan.modality == "electroporation" else "cycles"

    # ---- helpers
    @property
    def instrument(self) -> Any:
        cb = self.ctx.connected
        if self.plan.role == "current_source":
            return cb.current_source
        return cb.stimulator

    def _now(self) -> float:
        return self.ctx.clock.now_s()

    def _advance(self, state: SessionState, note: str = "") -> None:
        self.sm.advance(state, t_s=self._now(), note=note)
        self._emit(state.value, message=note)

    def _emit(self, phase: str, *, message: str = "", measures: CaptureMeasures | None = None) -> None:
        cb = self.ctx.progress
        if cb is None:
            return
        t = 0.0 if self.t_delivery0 is None else self._now() - self.t_delivery0
        event = ProgressEvent(
            phase=phase,
            t_s=t,
            total_s=self.plan.duration_s,
            current_A=None if measures is None else measures.current_rms_A,
            impedance_ohm=None if measures is None else measures.impedance_ohm,
            message=message,
            measures={} if measures is None else measures.as_dict(),
        )
        try:
            cb(event)
        except Exception:
            # a broken display must never stop or prolong stimulation
            self.ctx.progress_errors += 1

    def _check_stop(self) -> None:
        if self.ctx.stop.stopped:
            raise SessionAborted(Abort(AbortReason.OPERATOR_STOP, self.ctx.stop.reason or "operator stop"))

    def _verify(self, step: str, passed: bool, **details: Any) -> None:
        self.verification.append({"step": step, "passed": bool(passed), "t_s": round(self._now(), 6), **details})

    # ---- steps
    def open_record(self) -> int:
        ctx = self.ctx
        bench = ctx.bench
        rx = self.target.prescription
        self.delivery_id = ctx.store.start_delivery(
            ctx.subject_id,
            session_number=ctx.session_number,
            arm_id=self.target.arm_id,
            side=self.target.side,
            prescription={**rx.model_dump(mode="json"), "figures": _figures(rx)},
            bench=bench.model_dump(mode="json"),
            instruments={role: {"driver": spec.driver, "resource": spec.resource, "idn_pattern": spec.idn}
                         for role, spec in bench.instruments()},
            settings={"plan": self.plan.as_dict(), "delivery": ctx.settings.as_dict(),
                      "clock": "simulated" if ctx.clock.simulated else "wall"},
            resumed_from=self.resumed_from,
            started_at=ctx.clock.utcnow(),
        )
        self.started_at = ctx.clock.utcnow()
        self.captures = CaptureStore(ctx.store.study_dir, ctx.subject_id, ctx.session_number, self.delivery_id)
        self._advance(S.RECORD_OPEN, f"record #{self.delivery_id} opened")
        return self.delivery_id

    def preflight(self) -> None:
        ctx = self.ctx
        if ctx.connected is None:
            from instruments.bench import connect_bench

            # open_adapter switches Nagle's algorithm off, so triggers are not held back by TCP
            ctx.connected = connect_bench(ctx.bench, timeout_s=ctx.settings.io_timeout_s)
            ctx.identities = {"stimulator": ctx.connected.stimulator.identify(),
                              "scope": ctx.connected.scope.identify()}
            if ctx.connected.current_source is not None:
                ctx.identities["current_source"] = ctx.connected.current_source.identify()
        today = ctx.clock.utcnow().date()
        problems: list[str] = []
        calibration: dict[str, str | None] = {}
        used = {"scope", self.plan.role or "stimulator"}
        for role, spec in ctx.bench.instruments():
            due = spec.calibration_due
            calibration[role] = None if due is None else due.isoformat()
            if role in used and due is None:
                problems.append(f"{role}: no calibration_due date in the bench file")
            elif role in used and due < today:
                problems.append(f"{role}: calibration was due on {due} (session date {today})")
        amp = ctx.bench.amplifier
        if amp is not None and self.plan.modality == "electroporation":
            calibration["amplifier"] = None if amp.calibration_due is None else amp.calibration_due.isoformat()
            if amp.calibration_due is not None and amp.calibration_due < today:
                problems.append(f"amplifier: calibration was due on {amp.calibration_due} (session date {today})")
        queues: dict[str, list[str]] = {}
        cb = ctx.connected
        for role, inst in (("stimulator", cb.stimulator), ("scope", cb.scope), ("current_source", cb.current_source)):
            if inst is None:
                continue
            entries = inst.errors()
            queues[role] = entries
            if entries:
                problems.append(f"{role} error queue not empty: {'; '.join(entries)}")
        outputs = {}
        for role, inst, channel in self._stimulating():
            on = bool(inst.output_state(channel))
            outputs[f"{role}:{channel}"] = on
            if on:
                problems.append(f"{role} output {channel} is ON before the session started")
        self._verify("preflight", not problems, identities=dict(ctx.identities), calibration=calibration,
                     error_queues=queues, outputs_on=outputs, problems=problems)
        if problems:
            raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR, "preflight failed: " + "; ".join(problems)))
        self._advance(S.PREFLIGHT_OK, "identities, calibration, error queues and outputs checked")

    def _stimulating(self) -> list[tuple[str, Any, int]]:
        cb = self.ctx.connected
        out = [("stimulator", cb.stimulator, self.ctx.bench.stimulator.channel)]
        if cb.current_source is not None and self.ctx.bench.current_source is not None:
            out.append(("current_source", cb.current_source, self.ctx.bench.current_source.channel))
        return out

    def _program(self, scale: float, polarity: int) -> dict[str, Any]:
        """Send the plan's settings at ``scale`` × amplitude and ``polarity``; compare the read-back."""
        plan = self.plan
        inst = self.instrument
        s = dict(plan.settings)
        if plan.alternating is not None:
            return self._program_alternating(scale)
        if plan.modality == "microcurrent":
            kwargs = {
                "amplitude_A": s["amplitude_A"] * scale,
                "waveform": s["waveform"],
                "frequency_Hz": s["frequency_Hz"],
                "compliance_V": s["compliance_V"],
                "cycles_per_burst": s["cycles_per_burst"],
                "polarity": polarity,
                "dc_offset_A": s.get("dc_offset_A", 0.0) * scale,
                "duty_cycle": s.get("duty_cycle", 0.5),
            }
            if s.get("driver") == "generator":
                # the generator's voltage follows the load the electrodes present (plus the shunt)
                kwargs["load_ohms"] = self._load_ohms
            readback = inst.configure_current(plan.channel, **kwargs)
        else:
            kwargs = {
                "amplitude_V": s["amplitude_V"] * scale,
                "pulse_width_s": s["pulse_width_s"],
                "frequency_Hz": s["frequency_Hz"],
                "pulses_per_burst": s["pulses_per_burst"],
                "limit_V": s["limit_V"],
            }
            if "carrier_Hz" in s:
                kwargs["carrier_Hz"] = s["carrier_Hz"]
                readback = inst.configure_carrier_train(plan.channel, **kwargs)
            else:
                kwargs["offset_V"] = s["offset_V"]
                readback = inst.configure_pulse_train(plan.channel, **kwargs)
        mismatches = [
            f"{k}: sent {format_setting(k, v)}, read back {format_setting(k, readback.get(k))}"
            for k, v in kwargs.items()
            if k in readback and not _close_enough(v, readback[k])
        ]
        if mismatches:
            raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR, "read-back differs: " + "; ".join(mismatches)))
        inst.arm(plan.channel)
        self._polarity = polarity if plan.modality == "microcurrent" else 1
        self._programmed_load_ohms = self._load_ohms
        return {"sent": kwargs, "readback": {k: _plain(v) for k, v in readback.items()}}

    def _program_alternating(self, scale: float) -> dict[str, Any]:
        """Send the waveform holding both polarities at ``scale`` × its peak; the driver reads it back.

        Checked before sending: its peak is the prescription's peak (current plus the direct part) at this
        scale, and one period carries no net charge.
        """
        plan = self.plan
        wave = plan.alternating
        s = plan.settings
        peak = wave.peak_A * scale
        want = (s["amplitude_A"] + abs(s.get("dc_offset_A", 0.0))) * scale
        net = wave.net_charge_C(scale)
        problems = []
        if not math.isclose(peak * max(abs(p) for p in wave.points), want, rel_tol=1e-9):
            problems.append(f"its peak {format_quantity(peak, 'A')} is not the prescribed "
                            f"{format_quantity(want, 'A')} (current_uA + |dc_offset_uA|)")
        if abs(net) > 1e-9 * wave.peak_A * wave.period_s:
            problems.append(f"one period carries {format_quantity(net, 'C')} net (polarity_period_s must balance it)")
        if problems:
            raise SessionAborted(Abort(AbortReason.INTERNAL_ERROR,
                                       "alternating waveform refused before sending: " + "; ".join(problems)))
        kwargs = {"amplitude_A": peak, "frequency_Hz": wave.frequency_Hz, "compliance_V": s["compliance_V"],
                  "cycles_per_burst": 1}
        readback = self.instrument.configure_arb_current(plan.channel, points=wave.points, **kwargs)
        self.instrument.arm(plan.channel)
        self._polarity = 1
        return {"sent": {**kwargs, "points": len(wave.points), "net_charge_C": net},
                "readback": {k: _plain(v) for k, v in readback.items()}}

    def _set_polarity(self, scale: float, polarity: int) -> None:
        """Reverse a microcurrent between bursts.

        A source that can reverse in place (the Keithley 6221: ``set_polarity``, one round trip that also
        reads back the offset, the burst length and the error queue) does; a generator through its series
        resistor is programmed again with the reversed pulses.
        """
        inst = self.instrument
        set_polarity = getattr(inst, "set_polarity", None)
        if set_polarity is None or self.plan.settings.get("driver") == "generator":
            self._program(scale, polarity)
            return
        set_polarity(self.plan.channel, polarity)
        self._polarity = polarity

    def _configure_scope(self, view: str, *, electrode_V: float, current_A: float, polarity: int = 1,
                         scale: float = 1.0) -> None:
        """Set the scope up for one of the plan's views (``'pulse'``, ``'train'``, ``'cycles'``).

        The record length is the view's (it samples fast enough for what the view measures); the edge trigger
        waits for the driven signal to pass 30 % of its level at the burst's amplitude ``scale`` (a ramp
        step), in the direction of the burst's polarity.
        """
        plan = self.plan
        bench = self.ctx.bench
        if plan.modality == "electroporation":
            trig_ch, level = bench.channels.electrode_voltage.channel, 0.3 * electrode_V
        else:
            trig_ch, level = bench.channels.current.channel, 0.3 * current_A * bench.shunt_ohms
        slope = "rising" if polarity > 0 else "falling"
        scope = self.ctx.connected.scope
        set_trigger = getattr(scope, "set_trigger", None)
        if (set_trigger is not None and scope is self._scope_configured and view == self._view
                and (electrode_V, current_A) == self._scope_ranges):
            # only the trigger moves (a ramp step, a reversed burst): the rest stays as it was read back
            set_trigger(trigger_level_V=level * polarity * scale, trigger_slope=slope)
            self._scope_trigger = (scale, polarity)
            return
        # the view's timebase as planned for this bench's scope (a step it offers), the trigger 4.5 divisions
        # before the screen centre
        timebase = plan.scope[f"{view}_timebase_s"]
        scope.configure(
            timebase_s_per_div=timebase, channels=bench.scope_channels(electrode_V=electrode_V, current_A=current_A),
            trigger_channel=trig_ch, trigger_level_V=level * polarity * scale, position_s=4.5 * timebase,
            record_points=int(plan.scope[f"{view}_points"]), trigger_slope=slope,
        )
        self._window_s = plan.scope[f"{view}_after_trigger_s"]
        self._view = view
        self._scope_trigger = (scale, polarity)
        self._scope_ranges = (electrode_V, current_A)
        self._scope_configured = scope

    def configure(self) -> None:
        plan = self.plan
        if plan.sham:
            # nothing is sent for a sham; the output of the mimicked instrument must read back off
            inst = self.instrument
            on = bool(inst.output_state(plan.channel))
            self._verify("sham_output_off", not on, channel=plan.channel, role=plan.role)
            if on:
                raise SessionAborted(Abort(AbortReason.SHAM_OUTPUT_ON, "sham session found the output ON"))
            self._advance(S.CONFIGURED, "sham: nothing configured, output off")
            return
        programmed = self._program(1.0, 1)
        self._verify("configure_readback", True, **programmed)
        dummy_V = (plan.scope["electrode_V"] if plan.modality == "electroporation"
                   else plan.settings["amplitude_A"] * self.ctx.bench.dummy_load_ohms)
        self._configure_scope(self._live_view, electrode_V=dummy_V, current_A=plan.scope["current_A"])
        self._advance(S.CONFIGURED, "settings read back as sent")

    def _ask(self, kind: str) -> None:
        rx = self.target.prescription
        pairs = [str(p) for p in getattr(getattr(rx, "placement", None), "pairs", [])] or [str(getattr(rx, "placement", ""))]
        if kind == "dummy_load":
            msg = (f"Connect the bench dummy load ({self.ctx.bench.dummy_load_ohms:g} ohm) for verification of "
                   f"subject {self.ctx.subject_id}, session {self.ctx.session_number}. Connected?")
        else:
            msg = (f"Place the electrodes on subject {self.ctx.subject_id}"
                   + (f" ({self.target.side} side)" if self.target.side else "")
                   + f": {', '.join(pairs)}. Electrodes placed and connected?")
        request = ConfirmRequest(kind, self.ctx.subject_id, self.target.arm_id, self.target.side, pairs, msg)
        ok = bool(self.ctx.confirm(request))
        self._verify(f"operator_{kind}", ok, message=msg)
        if not ok:
            raise SessionAborted(Abort(AbortReason.NOT_CONFIRMED, f"operator did not confirm: {msg}"))

    def _fire(self, scale: float, polarity: int) -> Any:
        """Start one burst through the active pacer (it waits until the previous burst has ended)."""
        pacer = self._active_pacer
        pacer.wait_idle()
        wave = self.plan.alternating
        split = None if wave is None else (wave.half_s, self._rates_reversed)
        return pacer.fire(scale=scale, polarity=polarity, rates=self._rates_full, split=split)

    def _capture(self, label: str, scale: float, *, keep_rates: bool = True, polarity: int = 1,
                 expected: ExpectedSignal | None = None, unchecked: str | None = None) -> CaptureMeasures:
        """Arm the scope, deliver one burst, wait for the acquisition, capture, measure and store it.

        A burst that reverses within it is seen in one record: its forward half from the trigger, and the
        start of its reversed half. Each part is measured on its own (the reversed part with its time counted
        from the reversal); the forward measures are returned, the reversed ones kept in
        ``self._reversed`` (measures, rates). The capture is stored with its envelope: the prescribed waveform
        and the band of ``expected`` (the live expectation by default) it is checked against, or, with
        ``unchecked``, why its level is not checked.
        """
        ctx = self.ctx
        bench = ctx.bench
        scope = ctx.connected.scope
        ev_ch, cur_ch = bench.channels.electrode_voltage.channel, bench.channels.current.channel
        wave = self.plan.alternating
        self._active_pacer.wait_idle()
        if (scale, polarity) != self._scope_trigger and scale > 0:
            # a ramp step crosses a lower level; a reversed burst crosses it the other way
            electrode_V, current_A = self._scope_ranges
            self._configure_scope(self._view, electrode_V=electrode_V, current_A=current_A, polarity=polarity,
                                  scale=scale)
        scope.single()
        entry = self._fire(scale, polarity)
        # the record ends one window after the trigger: nothing to read before that
        self._active_pacer.wait_until(entry.t_confirmed_s + self._window_s)
        forced = not self._wait_for_record(scope)
        if forced:
            # the signal never crossed the trigger level (no current through a lifted electrode, nothing across
            # shorted ones): record what is there, and judge the contact from the absence
            scope.force_trigger()
            # a query after the (unanswered) force: it has been executed before the session's time moves on
            scope.acquired()
            self._active_pacer.wait_until(self._now() + self._window_s)
            scope.wait_acquired(timeout_s=max(ctx.settings.io_timeout_s, 1.0))
        traces = scope.capture(channels=(ev_ch, cur_ch))
        v, i = traces[ev_ch], traces[cur_ch]
        coarse = check_resolution(v, self.plan.scope[f"{self._view}_interval_s"])
        if coarse is not None:
            raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR, f"{label} capture: {coarse}"))
        parts = {1: (v, i)}
        if wave is not None:
            part_s, at_s = self.plan.scope["cycles_part_s"], self.plan.scope["cycles_reversed_at_s"]
            lead_s = max(-float(v.time_s[0]), 0.0)
            parts = {1: _part(v, i, -lead_s, part_s, 0.0), -1: _part(v, i, at_s - lead_s, at_s + part_s, at_s)}
        measured = {half: self._measure(pv, pi, forced) for half, (pv, pi) in parts.items()}
        measures, rates = measured[1]
        envelope, envelope_meta = self._envelope(v, i, scale, polarity, expected or self.plan.expected_live,
                                                 unchecked)
        self.captures.save(
            label, v.time_s, v.values, i.values,
            {"scale": scale, "measures": measures.as_dict(), "session_t_s": self._now(), "forced_trigger": forced,
             "view": self._view, "voltage_meta": dict(v.meta), "current_meta": dict(i.meta),
             **({} if wave is None else {"reversed_at_s": wave.half_s,
                                         "reversed_measures": measured[-1][0].as_dict()}),
             **envelope_meta},
            arrays={} if envelope is None else {envelope.key: envelope.segments},
        )
        #: the captured burst's own rates (whole periods after the trigger), for the direct-current check
        self._captured_rates = rates
        if wave is not None:
            self._reversed = measured[-1]
        if scale > 0 and keep_rates:
            self._rates_full = rates.at_full_amplitude(scale, self._polarity)
            # the captured burst is accounted with what it showed
            entry.rates = self._rates_full
            if wave is not None:
                # the reversed half, as measured (its sign included)
                self._rates_reversed = measured[-1][1].at_full_amplitude(scale)
                entry.split = (wave.half_s, self._rates_reversed)
        self._last_measures = measures
        return measures

    def _envelope(self, v: Any, i: Any, scale: float, polarity: int, expected: ExpectedSignal,
                  unchecked: str | None) -> tuple[Envelope | None, dict[str, Any]]:
        """The capture's envelope and what its metadata says of it. None when there is nothing to check (a
        scale of zero) or when it cannot be drawn for this plan: the capture is then stored without it, saying
        why, and the session goes on (the checks themselves do not depend on it)."""
        try:
            envelope = capture_envelope(self.plan, expected, self.tol, v, i, scale=scale, polarity=polarity,
                                        unchecked=unchecked)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            return None, {"envelope_missing": f"the prescribed envelope could not be drawn: {exc!r}"}
        return envelope, ({} if envelope is None else {"envelope": envelope.describe})

    def _measure(self, v: Any, i: Any, forced: bool) -> tuple[CaptureMeasures, WaveformRates]:
        """Measures and rates of one capture (or one half of an alternating burst's capture)."""
        # what the output sets: the voltage (EP; microcurrent from a generator through its resistor, whose
        # current spikes at every edge while the skin charges) or the current (a current source)
        source = self.plan.modality == "microcurrent" and self.plan.settings.get("driver") != "generator"
        measures = measure_capture(v, i, drive="current" if source else "voltage")
        if self.plan.modality == "microcurrent" and not forced and (not source or self.plan.settings.get("dc_offset_A")):
            # a generator's current, or the two levels of DC + AC, from the waveform's known phases
            measures = self._steady_levels(v, i, measures)
        if forced:
            # the trigger's signal never reached its level at the load: no voltage across the electrodes (EP
            # triggers on it) means a short, no current through them (microcurrent triggers on it) an open
            measures = replace(measures, impedance_ohm=0.0 if self.plan.modality == "electroporation" else math.inf)
        return measures, self._burst_rates(v, i)

    def _steady_levels(self, v: Any, i: Any, m: CaptureMeasures) -> CaptureMeasures:
        """Current and impedance of a microcurrent from its known phases (see
        :func:`~toolkit.delivery.live.phase_levels`): through a generator's series resistor the current is far
        below the electrode voltage's range at low amplitude and spikes at every edge; DC + AC has two levels,
        and the phases' signed mean is its AC amplitude (the direct part is checked on its own)."""
        plan = self.plan
        kw = {"period_s": plan.pulse_period_s, "first_phase_s": plan.first_phase_s,
              "bipolar": plan.settings["waveform"] == "biphasic", "span_s": float(v.time_s[-1])}
        i_on = abs(phase_levels(v.time_s, i.values, **kw))
        v_on = abs(phase_levels(v.time_s, v.values, **kw))
        if not (math.isfinite(i_on) and math.isfinite(v_on)):
            return m
        # a lifted electrode lets no current trigger the scope at all (judged in _capture)
        impedance = v_on / i_on if i_on > 0 else math.inf
        return replace(m, current_on_A=i_on, voltage_on_V=v_on, impedance_ohm=impedance)

    def _wait_for_record(self, scope: Any, grace_s: float = 0.2) -> bool:
        """Whether the acquisition completes (polled briefly: the window has already passed).

        The grace and the polls run on the session clock: the scope's trigger comes a little after the
        confirmed start (its level is crossed on the rising edge), and on a simulated clock that time passes
        by advancing the clock, not by sleeping in the real world.
        """
        clock = self.ctx.clock
        deadline = clock.now_s() + grace_s
        while True:
            if scope.acquired():
                return True
            if clock.now_s() > deadline:
                return False
            clock.sleep(0.005)

    def _burst_rates(self, v: Any, i: Any) -> WaveformRates:
        """Rates over one burst's on-time, from a capture that starts at the trigger.

        Microcurrent: whole waveform periods after the trigger. Electroporation: the capture resolves one
        pulse; its integrals (:func:`instruments.measures.pulse_integrals`: the charge while it is on, and the
        net charge, i² and energy including what flows back after it) times the pulses of a burst, over the
        burst's on-time.
        """
        import numpy as np

        from instruments.measures import CaptureTooCoarse, pulse_integrals

        plan = self.plan
        if plan.modality == "electroporation":
            try:
                p = pulse_integrals(v, i)
            except (CaptureTooCoarse, ValueError):
                # the view samples fast enough (checked before): a "pulse" this short is noise, i.e. no pulse
                # reached the electrodes (shorted electrodes show none)
                return WaveformRates.zero()
            k = plan.pulses_per_burst / plan.burst_on_s
            return WaveformRates(abs_current_A=p.charge_C * k, mean_current_A=p.net_charge_C * k,
                                 square_current_A2=p.i2t_A2s * k, power_W=p.energy_J * k)
        t = np.asarray(v.time_s, dtype=float)
        vv = np.asarray(v.values, dtype=float)
        ii = np.asarray(i.values, dtype=float)
        period = plan.burst_on_s / max(plan.pulses_per_burst, 1)
        span = min(float(t[-1]), plan.burst_on_s)
        whole = math.floor(span / period + 1e-9) * period if period > 0 else span
        if whole <= 0:
            whole = span
        mask = (t >= 0) & (t < whole)
        if mask.sum() < 2:
            mask = t >= 0
        return rates_from_arrays(vv[mask], ii[mask])

    def _expect(self, expected: ExpectedSignal, m: CaptureMeasures, scale: float, polarity: int = 1,
                rates: WaveformRates | None = None) -> list[Abort]:
        """What ``m`` breaks of ``expected`` at ``scale`` and ``polarity``; ``rates`` are the captured burst's
        (its direct part), the last capture's by default."""
        tol = self.tol
        out: list[Abort] = []
        rates = self._captured_rates if rates is None else rates
        if self.plan.alternating is not None and self.plan.settings.get("waveform") in ("square", "dc"):
            # each half of a burst that reverses within it flows its own way (faradic pulses, galvanic)
            got = rates.mean_current_A
            if not got * polarity > 0:
                half = "reversed" if polarity < 0 else "forward"
                out.append(Abort(AbortReason.DEVIATION,
                                 f"the {half} half of the burst carried a mean current of {format_quantity(got, 'A')}, "
                                 f"expected {'negative' if polarity < 0 else 'positive'}"))
        if expected.current_peak_A is not None:
            a = self.rules.check_deviation("peak current", m.current_peak_A, expected.current_peak_A * scale,
                                           float(tol.current_rel), unit="A")
            out += [a] if a else []
        if expected.current_mean_A is not None:
            # the direct part: off by more than the tolerance of the peak current
            want = expected.current_mean_A * scale * polarity
            got = rates.mean_current_A
            limit = float(tol.current_rel) * abs(expected.current_peak_A or expected.current_mean_A) * scale
            if not abs(got - want) <= limit:
                out.append(Abort(AbortReason.DEVIATION, f"direct current measured {format_quantity(got, 'A')}, "
                                 f"expected {format_quantity(want, 'A')} (± {format_quantity(limit, 'A', 3)})"))
        if expected.current_on_A is not None:
            a = self.rules.check_deviation("current", _on_level(m, "current"), expected.current_on_A * scale,
                                           float(tol.current_rel), unit="A")
            out += [a] if a else []
        if expected.voltage_on_V is not None:
            a = self.rules.check_deviation("electrode voltage", _on_level(m, "voltage"),
                                           expected.voltage_on_V * scale, float(tol.amplitude_rel), unit="V")
            out += [a] if a else []
        if expected.pulse_width_s is not None:
            a = self.rules.check_deviation("pulse width", m.pulse_width_s, expected.pulse_width_s,
                                           float(tol.pulse_width_rel), unit="s")
            out += [a] if a else []
        if expected.frequency_Hz is not None:
            a = self.rules.check_deviation("pulse rate", m.frequency_Hz, expected.frequency_Hz,
                                           float(tol.frequency_rel), unit="Hz")
            out += [a] if a else []
        if expected.carrier_Hz is not None:
            a = self.rules.check_deviation("carrier frequency", m.carrier_Hz if m.carrier_Hz is not None
                                           else math.nan, expected.carrier_Hz, float(tol.frequency_rel), unit="Hz")
            out += [a] if a else []
        if expected.pulses is not None and m.pulses != expected.pulses:
            out.append(Abort(AbortReason.DEVIATION,
                             f"{m.pulses} whole pulses in the train, expected {expected.pulses} pulses"))
        return out

    def _check_each_pulse(self, m: CaptureMeasures, expected: ExpectedSignal) -> list[Abort]:
        """Every whole pulse of a train view on its own: width, carrier and height within tolerance."""
        tol = self.tol
        out: list[Abort] = []
        for k, p in enumerate(m.shapes):
            if not p.complete:
                continue
            checks = [("width", p.width_s, expected.pulse_width_s, float(tol.pulse_width_rel), "s"),
                      ("carrier", p.carrier_Hz if p.carrier_Hz is not None else math.nan, expected.carrier_Hz,
                       float(tol.frequency_rel), "Hz"),
                      ("height", p.height_V, expected.voltage_on_V, float(tol.amplitude_rel), "V")]
            for what, got, want, rel, unit in checks:
                if want is not None:
                    a = self.rules.check_deviation(f"pulse {k + 1} {what}", got, want, rel, unit=unit)
                    out += [a] if a else []
        return out

    def _halves(self, expected: ExpectedSignal, m: CaptureMeasures, scale: float,
                polarity: int) -> list[tuple[str | None, CaptureMeasures, list[Abort]]]:
        """The last capture checked against ``expected``: as a whole, or each half of an alternating burst
        (``'forward'``, ``'reversed'``: its own level, sign and direct part)."""
        if self.plan.alternating is None or self._reversed is None:
            return [(None, m, self._expect(expected, m, scale, polarity))]
        back, rates = self._reversed
        reversed_breaks = [Abort(a.reason, f"reversed half: {a.message}")
                           for a in self._expect(expected, back, scale, -1, rates=rates)]
        return [("forward", m, self._expect(expected, m, scale, 1)), ("reversed", back, reversed_breaks)]

    def verify(self) -> None:
        plan = self.plan
        self._ask("dummy_load")
        self._advance(S.VERIFYING, "dummy load")
        if plan.sham:
            on = bool(self.instrument.output_state(plan.channel))
            self._verify("sham_dummy_load", not on, output_on=on)
            if on:
                raise SessionAborted(Abort(AbortReason.SHAM_OUTPUT_ON, "sham session found the output ON"))
            self._advance(S.VERIFIED, "sham: output stays off")
            return
        inst = self.instrument
        self.output_was_enabled = True
        inst.output_on(plan.channel)
        results = []
        failures: list[Abort] = []
        expected = plan.expected_dummy
        if plan.modality == "microcurrent" and expected.current_on_A is not None:
            expected = replace(expected, voltage_on_V=plan.settings["amplitude_A"] * self.ctx.bench.dummy_load_ohms)
        self._active_pacer = self.verify_pacer
        for n in range(self.ctx.settings.verify_bursts):
            self._check_stop()
            m = self._capture(f"verify-{n + 1}", 1.0, expected=expected)
            for half, hm, breaks in self._halves(expected, m, 1.0, 1):
                results.append({"view": "pulse" if plan.modality == "electroporation" else "cycles",
                                **({} if half is None else {"half": half}),
                                "measures": hm.as_dict(), "breaks": [str(b) for b in breaks]})
                failures += breaks
        if plan.modality == "electroporation" and plan.scope.get("train_window_s"):
            # several pulses of a train: the pulse rate
            self._configure_scope("train", electrode_V=plan.scope["electrode_V"], current_A=plan.scope["current_A"])
            m = self._capture("verify-train", 1.0, keep_rates=False, expected=expected)
            # the whole train: the pulse rate, every pulse there, and each one as prescribed
            rate = ExpectedSignal(frequency_Hz=plan.scope["pulse_rate_Hz"], pulses=plan.pulses_per_burst)
            breaks = self._expect(rate, m, 1.0) + self._check_each_pulse(m, expected)
            results.append({"view": "train", "measures": m.as_dict(), "breaks": [str(b) for b in breaks]})
            failures += breaks
        # the last verification burst ends before the output goes off (never cut)
        self.verify_pacer.wait_idle()
        inst.output_off(plan.channel)
        if inst.output_state(plan.channel):
            raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR, "output reads back ON after verification"))
        self._verify("dummy_load", not failures, expected=_expected_dict(expected),
                     load_ohms=self.ctx.bench.dummy_load_ohms, bursts=results)
        if failures:
            raise SessionAborted(Abort(AbortReason.VERIFICATION_FAILED,
                                       "dummy-load verification failed: " + "; ".join(f.message for f in failures)))
        self._advance(S.VERIFIED, "dummy load measured within tolerance")

    def confirm_electrodes(self) -> None:
        self._ask("electrodes")
        self._advance(S.ELECTRODES_CONFIRMED, "operator confirmed electrode placement")

    def deliver(self) -> None:
        plan = self.plan
        ctx = self.ctx
        settings = ctx.settings
        clock = ctx.clock
        if not plan.sham:
            # the skin needs the voltage range of the compliance (MC) and a current range between the
            # impedance limits (EP), so a short or a lifted electrode is still measurable
            if plan.modality == "microcurrent":
                self._configure_scope(self._live_view, electrode_V=plan.settings["compliance_V"],
                                      current_A=plan.scope["current_A"])
            else:
                # the current range reaches the lowest accepted impedance, so a short is measured, not clipped
                self._configure_scope(self._live_view, electrode_V=plan.scope["electrode_V"],
                                      current_A=plan.scope["electrode_V"] / self.rules.impedance_ohm_min)
        debouncer = RuleDebouncer(self.rules.consecutive)
        generator = plan.settings.get("driver") == "generator"
        # a generator through its series resistor starts for the lowest accepted load (the current can only
        # fall short, never overshoot) and follows the load the electrodes present from the first capture on
        load_known = not generator
        programmed_blind = generator
        reprogram = False
        if generator:
            self._load_ohms = self.rules.impedance_ohm_min + ctx.bench.shunt_ohms
        n_bursts = plan.bursts
        interval = plan.trigger_interval_s
        pacer = self.pacer
        self._active_pacer = pacer
        current: tuple[float, int] | None = None
        if plan.sham:
            current = (0.0, 1)
        state = S.RAMPING_UP if plan.ramp_up_s > 0 else S.DELIVERING
        self.t_delivery0 = clock.now_s()
        # a session that falls behind goes on at its own rhythm (never firing missed bursts back to back),
        # up to this point; beyond it the rest is not delivered and the record says how much was
        deadline = self.t_delivery0 + plan.duration_s * (1.0 + settings.max_extension_rel) + settings.max_extension_s
        self._advance(state, "ramping up" if state is S.RAMPING_UP else "delivering")
        next_capture_s = 0.0
        sham_checks = 0
        steps = settings.ramp_steps
        slot = self.t_delivery0
        for k in range(n_bursts):
            self._check_stop()
            t_rel = k * interval
            mid = t_rel + plan.burst_on_s / 2
            raw_scale = plan.amplitude_scale(mid)
            scale = 1.0 if raw_scale >= 1.0 else max(math.ceil(raw_scale * steps - 1e-9), 1) / steps
            wanted_state = S.RAMPING_UP if (plan.ramp_up_s > 0 and mid < plan.ramp_up_s) else (
                S.RAMPING_DOWN if (plan.ramp_down_s > 0 and plan.duration_s - mid < plan.ramp_down_s) else S.DELIVERING)
            if wanted_state is not self.sm.state and wanted_state is not S.RAMPING_UP:
                self._advance(wanted_state, wanted_state.value)
            capture_now = t_rel + 1e-9 >= next_capture_s or k == n_bursts - 1
            # this burst's slot: its nominal place after the previous one, or later if that one ran late
            slot = max(slot, pacer.idle_at_s())
            if slot > deadline:
                self._shortfall(k, n_bursts)
            pacer.wait_until(slot)
            if plan.sham:
                if capture_now:
                    on = bool(self.instrument.output_state(plan.channel))
                    sham_checks += 1
                    if on:
                        raise SessionAborted(Abort(AbortReason.SHAM_OUTPUT_ON,
                                                   f"sham output read back ON at {t_rel:.0f} s"))
                    next_capture_s += settings.capture_every_s
                    self._emit("capture", message="sham: output off")
                pacer.record_idle()
            else:
                polarity = plan.polarity(k)
                if current is None or current[0] != scale or reprogram:
                    programmed_blind = not load_known
                    self._program(scale, polarity)
                    reprogram = False
                    if current is None:
                        self.output_was_enabled = True
                        self.instrument.output_on(plan.channel)
                elif current[1] != polarity:
                    self._set_polarity(scale, polarity)
                current = (scale, polarity)
                if capture_now:
                    blind = generator and programmed_blind
                    m = self._capture("live", scale, polarity=polarity, unchecked=_BLIND if blind else None)
                    self._record_live(t_rel, scale, m, polarity)
                    breaks = []
                    z = self.rules.check_impedance(m.impedance_ohm)
                    if z:
                        breaks.append(z)
                    if plan.alternating is not None and self._reversed is not None:
                        back = self._reversed[0]
                        self._record_live(t_rel + plan.alternating.half_s, scale, back, -1)
                        z = self.rules.check_impedance(back.impedance_ohm)
                        if z:
                            breaks.append(Abort(z.reason, f"reversed half: {z.message}"))
                    if not generator or not programmed_blind:
                        breaks += [a for _, _, found in self._halves(plan.expected_live, m, scale, polarity)
                                   for a in found]
                    if generator and math.isfinite(m.impedance_ohm) and m.impedance_ohm > 0:
                        # a current of a few steps of the scope's range (the first burst, set for the lowest
                        # load, into a high one) gives a rough load: set again and measured again at once,
                        # judged only once a well-resolved capture has confirmed the setting
                        resolved = m.current_on_A >= _RESOLVED_FRACTION * plan.scope["current_A"]
                        if resolved or not load_known:
                            reprogram = self._follow_load(m, scale) or not resolved
                            load_known = resolved
                            programmed_blind = programmed_blind and reprogram
                    errors = self.instrument.errors()
                    if errors:
                        raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR,
                                                   "stimulator error queue: " + "; ".join(errors)))
                    hit = debouncer.feed(breaks)
                    self._emit("capture", measures=m)
                    if hit is not None:
                        raise SessionAborted(hit)
                    # a generator set again for a new load is measured again at once (its dose, its current)
                    next_capture_s = t_rel + interval if reprogram else next_capture_s + settings.capture_every_s
                else:
                    self._fire(scale, polarity)
            self.bursts_done = k + 1
            slot += interval
        # the session's time runs out with the last slot (a sham), or when the last burst has ended
        pacer.wait_until(max(slot, pacer.idle_at_s()) if plan.sham else pacer.idle_at_s())
        self._verify("live", True, captures=len(self.live), summary=_live_summary(self.live),
                     generator_load=self._load_history or None,
                     sham_output_checks=sham_checks if plan.sham else None,
                     progress_display_errors=self.ctx.progress_errors)

    def _follow_load(self, m: CaptureMeasures, scale: float) -> bool:
        """Set the generator's load from what the last capture measured; True when the current would now be
        off by more than half the study's tolerance, so the generator must be set again.

        The circuit's whole resistance is the voltage programmed over the current measured on the shunt (the
        current channel is ranged for it; the electrode voltage may be a few steps of its range at low
        amplitude); the load is that minus the generator's output and the series resistor.
        """
        s = self.plan.settings
        fixed = float(s.get("series_resistor_ohm", 0.0)) + 50.0
        target_A = s["amplitude_A"] * scale
        programmed_V = target_A * (fixed + self._programmed_load_ohms)
        if not (m.current_on_A > 0 and math.isfinite(m.current_on_A)):
            return False
        load = max(programmed_V / m.current_on_A - fixed, 0.0)
        self._load_ohms = load
        drift = abs(load - self._programmed_load_ohms) / (fixed + load)
        again = drift > 0.5 * float(self.tol.current_rel)
        self._load_history.append({"t_s": round(self._now(), 6), "programmed_load_ohm": self._programmed_load_ohms,
                                   "measured_load_ohm": load, "set_again": again})
        return again

    def _shortfall(self, k: int, n_bursts: int) -> None:
        """Stop a session that fell too far behind: the rest is not delivered, and the record says so."""
        plan = self.plan
        settings = self.ctx.settings
        # the burst that runs is not cut short: it ends, and counts, before the output goes off
        self.pacer.wait_idle()
        done = self.pacer.timeline.delivered("low")
        allowed = plan.duration_s * settings.max_extension_rel + settings.max_extension_s
        raise SessionAborted(Abort(
            AbortReason.UNDER_DELIVERED,
            f"under-delivered ({done.pulses} of {plan.bursts * plan.pulses_per_burst} "
            f"{'pulses' if plan.modality == 'electroporation' else 'cycles'}, {k} of {n_bursts} bursts): the bench "
            f"answered too slowly to finish within {allowed:.1f} s of the prescribed {plan.duration_s:.0f} s",
        ))

    def _record_live(self, t_rel: float, scale: float, m: CaptureMeasures, polarity: int = 1) -> None:
        self.live.append({
            "t_s": round(t_rel, 6), "scale": scale, "polarity": polarity,
            "current_rms_A": _num(m.current_rms_A), "current_on_A": _num(_on_level(m, "current")),
            "voltage_on_V": _num(_on_level(m, "voltage")), "impedance_ohm": _num(m.impedance_ohm),
            "charge_balance": _num(m.charge_balance), "resistance_drop_index": _num(m.resistance_drop_index),
        })

    def final_off(self) -> None:
        plan = self.plan
        if plan.sham:
            on = bool(self.instrument.output_state(plan.channel))
            self._verify("sham_output_off_end", not on)
            if on:
                raise SessionAborted(Abort(AbortReason.SHAM_OUTPUT_ON, "sham output read back ON at the end"))
        else:
            # the last burst has ended (deliver waited for it); switching off now cuts nothing
            self.pacer.wait_idle()
            self._switch_off_timed(self.pacer)
            if self.instrument.output_state(plan.channel):
                raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR, "output reads back ON after the session"))
            errors = self.instrument.errors()
            if errors:
                raise SessionAborted(Abort(AbortReason.INSTRUMENT_ERROR,
                                           "stimulator error queue at the end: " + "; ".join(errors)))
        self._advance(S.OUTPUT_OFF, "output off and read back off")

    def _switch_off_timed(self, pacer: Pacer) -> None:
        t_sent = self._now()
        try:
            self.instrument.output_off(self.plan.channel)
        finally:
            pacer.cut(t_sent, self._now())

    def switch_everything_off(self) -> dict[str, Any]:
        """Switch off every stimulating output of the bench (reconnecting if needed); never raises."""
        cb = self.ctx.connected
        if cb is None:
            # nothing was reached, so nothing was enabled by this session
            return {"state": "never_enabled", "note": "no instrument was reached; no command was sent"}
        results: dict[str, Any] = {}
        state = "off"
        for role, inst, channel in self._stimulating():
            spec = getattr(self.ctx.bench, role)
            guard = OutputGuard(
                inst, (channel,), reconnect=_reconnector(spec, role, self.ctx.settings.io_timeout_s),
                retry_for_s=self.ctx.settings.off_retry_s,
            )
            t_sent = self._now()
            off = guard.switch_off()
            if role == (self.plan.role or "stimulator"):
                # a burst still running was cut here: its share of the dose ends here
                t_done = self._now()
                self.pacer.cut(t_sent, t_done)
                self.verify_pacer.cut(t_sent, t_done)
            if guard.stimulator is not inst:
                # keep the fresh connection so later treatments and the final close use it
                setattr(cb, role, guard.stimulator)
            results[role] = off.as_dict()
            if not off.off:
                state = "unknown"
        results["state"] = state
        return results

    def timeline_summary(self) -> dict[str, Any]:
        """Planned vs delivered bursts, on-time and pulses, from the trigger timeline."""
        plan = self.plan
        return self.pacer.timeline.summary(planned_bursts=plan.bursts,
                                           planned_pulses=0 if plan.sham else plan.bursts * plan.pulses_per_burst,
                                           planned_on_s=0.0 if plan.sham else plan.bursts * plan.burst_on_s)

    def completed_as_prescribed(self) -> tuple[bool, str]:
        """Whether the bench certainly delivered the prescription within the study's duration tolerance.

        Judged from the trigger timeline's lower bounds (on-time and whole pulses), never from the number of
        triggers sent.
        """
        plan = self.plan
        tol = float(self.tol.duration_rel)
        if self.bursts_done < plan.bursts:
            return False, f"{self.bursts_done} of {plan.bursts} bursts delivered"
        if plan.sham:
            covered = self.pacer.timeline.dose().duration_s
            if covered < plan.duration_s * (1 - tol):
                return False, f"covered {covered:.1f} s of {plan.duration_s:.1f} s"
            return True, ""
        low = self.pacer.timeline.delivered("low")
        pulses = plan.bursts * plan.pulses_per_burst
        on_s = plan.bursts * plan.burst_on_s
        unit = "pulses" if plan.modality == "electroporation" else "cycles"
        if low.pulses < pulses * (1 - tol) - 1e-9 or low.on_s < on_s * (1 - tol) - 1e-9:
            return False, (f"under-delivered ({low.pulses} of {pulses} {unit}, {low.on_s:.2f} s of {on_s:.2f} s "
                           "on-time)")
        return True, ""


#: a generator's load is taken as measured once the current fills this fraction of the scope's current range
_RESOLVED_FRACTION = 0.1


#: why the level of a generator's first live bursts is not checked
_BLIND = ("the generator's setting rested on a load not yet well measured (at first the lowest accepted one); "
          "this burst measured the skin's load, and the generator was set again for it")


def _part(v: Any, i: Any, t0_s: float, t1_s: float, origin_s: float) -> tuple[Any, Any]:
    """The samples of a voltage/current capture from ``t0_s`` to ``t1_s``, their time counted from
    ``origin_s``."""
    keep = (v.time_s >= t0_s - 1e-12) & (v.time_s < t1_s)
    return tuple(replace(tr, time_s=tr.time_s[keep] - origin_s, values=tr.values[keep]) for tr in (v, i))


def _on_level(m: CaptureMeasures, what: str) -> float:
    return m.current_on_A if what == "current" else m.voltage_on_V


def _num(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return None
    return float(x)


def _plain(v: Any) -> Any:
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def _expected_dict(e: ExpectedSignal) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(e)


def _figures(rx: Any) -> dict[str, Any]:
    try:
        return {k: _plain(v) for k, v in rx.figures().as_dict().items()}
    except (AttributeError, ValueError, ZeroDivisionError):
        return {}


def _live_summary(live: list[dict[str, Any]]) -> dict[str, Any]:
    if not live:
        return {}
    imp = [x["impedance_ohm"] for x in live if x["impedance_ohm"] is not None]
    cur = [x["current_on_A"] for x in live if x["current_on_A"] is not None]
    drop = [x["resistance_drop_index"] for x in live if x["resistance_drop_index"] is not None]
    summary: dict[str, Any] = {"captures": len(live)}
    if imp:
        summary.update(impedance_first_ohm=imp[0], impedance_last_ohm=imp[-1], impedance_min_ohm=min(imp),
                       impedance_max_ohm=max(imp))
        if len(imp) >= 2:
            ts = [x["t_s"] for x in live if x["impedance_ohm"] is not None]
            summary["impedance_trend_ohm_per_min"] = (imp[-1] - imp[0]) / max(ts[-1] - ts[0], 1e-9) * 60
    if cur:
        summary.update(current_on_min_A=min(cur), current_on_max_A=max(cur))
    if drop:
        summary.update(resistance_drop_index_mean=sum(drop) / len(drop))
    summary["series"] = live
    return summary


def _reconnector(spec: Any, role: str, timeout_s: float) -> Callable[[], Any]:
    def reconnect() -> Any:
        from instruments.drivers import open_driver

        return open_driver(spec.driver, spec.resource, timeout_s=timeout_s, name=role)

    return reconnect


def run_treatment(
    ctx: SessionContext, target: TreatmentTarget, plan: TreatmentPlan, resumed: int | None
) -> TreatmentResult:
    """Deliver one treatment and write its record; see the module docstring.

    Raises only after the outputs were switched off and the record closed: ``KeyboardInterrupt`` (a second
    Ctrl+C), defects, and :class:`~toolkit.errors.StoreError` when the record cannot be closed.
    """
    run = _TreatmentRun(ctx, target, plan, resumed)
    run.open_record()
    abort: Abort | None = None
    reraise: BaseException | None = None
    try:
        run.preflight()
        run.configure()
        run.verify()
        run.confirm_electrodes()
        run.deliver()
        run.final_off()
    except SessionAborted as exc:
        abort = exc.abort
    except KeyboardInterrupt as exc:
        abort = Abort(AbortReason.OPERATOR_STOP, "interrupted (Ctrl+C twice)")
        reraise = exc
    except ToolkitError as exc:
        abort = Abort(AbortReason.INTERNAL_ERROR, str(exc))
        reraise = exc
    except Exception as exc:
        abort = _classify(exc)
        if abort.reason is AbortReason.INTERNAL_ERROR:
            reraise = exc
    except BaseException as exc:  # SystemExit and the like: still switch off and record
        abort = Abort(AbortReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        reraise = exc
    with ctx.stop.shielded():
        off = run.switch_everything_off()
        outcome, reason, abort_reason = _outcome(run, abort, off)
        if outcome != "completed" and run.sm.can_abort():
            run.sm.advance(S.ABORTING, t_s=ctx.clock.now_s(), note=reason or "")
        if outcome == "output_state_unknown":
            run.sm.advance(S.OUTPUT_STATE_UNKNOWN, t_s=ctx.clock.now_s(), note=reason or "")
        elif outcome == "aborted":
            run.sm.advance(S.ABORTED, t_s=ctx.clock.now_s(), note=reason or "")
        else:
            run.sm.advance(S.COMPLETED, t_s=ctx.clock.now_s())
        run._verify("output_off", off.get("state") in ("off", "never_enabled"), **off)
        schedule = run.timeline_summary()
        run._verify("schedule", run.completed_as_prescribed()[0], **schedule)
        run.verification.append({"step": "states", "passed": True, "history": run.sm.as_list()})
        dose = run.pacer.timeline.dose()
        ended = ctx.clock.utcnow()
        waves = [(str(c.absolute), c.sha256) for c in (run.captures.stored if run.captures else [])]
        _finish(ctx, run, outcome, reason, dose, waves, ended)
        run._emit(outcome, message=reason or "completed")
    result = TreatmentResult(
        delivery_id=run.delivery_id, arm_id=target.arm_id, side=target.side, modality=plan.modality,
        outcome=outcome, reason=reason, abort_reason=abort_reason, dose=dose,
        verification=run.verification, waveforms=[(c.path, c.sha256) for c in run.captures.stored],
        started_at=run.started_at, ended_at=ended, resumed_from=resumed, output_off=off,
    )
    if reraise is not None:
        raise reraise
    return result


def _outcome(run: _TreatmentRun, abort: Abort | None,
             off: dict[str, Any]) -> tuple[str, str | None, AbortReason | None]:
    if off.get("state") not in ("off", "never_enabled"):
        why = f"OUTPUT STATE UNKNOWN — check the instrument by hand; could not read the output back off within " \
              f"{run.ctx.settings.off_retry_s:g} s"
        if abort is not None:
            why += f" (session ended by {abort})"
        return "output_state_unknown", why, None if abort is None else abort.reason
    if abort is not None:
        return "aborted", str(abort), abort.reason
    ok, why = run.completed_as_prescribed()
    if not ok:
        return "aborted", f"{AbortReason.UNDER_DELIVERED.value}: {why}", AbortReason.UNDER_DELIVERED
    if run.sm.state is not S.OUTPUT_OFF:
        return ("aborted", f"{AbortReason.INTERNAL_ERROR.value}: not delivered as prescribed ({run.sm.state})",
                AbortReason.INTERNAL_ERROR)
    return "completed", None, None


def _finish(ctx: SessionContext, run: _TreatmentRun, outcome: str, reason: str | None, dose: Any,
            waves: list[tuple[str, str]], ended: Any) -> None:
    """Close the record; a failing store is retried, then the record is written beside the data and raised.

    A record the store refuses for its content (:class:`~toolkit.errors.DataError`: a capture file that no
    longer matches its checksum, i.e. modified on disk since it was written) is refused the same way on every
    attempt: it goes beside the data at once, without retrying.
    """
    import json
    import time

    last: Exception | None = None
    for attempt in range(3):
        try:
            ctx.store.finish_delivery(
                run.delivery_id, outcome=outcome, reason=reason, dose=dose.as_dict(),
                verification=run.verification, waveforms=[(Path(p), h) for p, h in waves], ended_at=ended,
            )
            return
        except DataError as exc:
            last = exc
            break
        except ToolkitError as exc:
            last = exc
            if attempt < 2:
                time.sleep(0.2 * (attempt + 1))
    fallback = ctx.store.study_dir / "deliveries-unrecorded" / f"delivery-{run.delivery_id}.json"
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text(json.dumps({
        "delivery_id": run.delivery_id, "outcome": outcome, "reason": reason, "dose": dose.as_dict(),
        "verification": run.verification, "waveforms": waves, "ended_at": str(ended),
    }, default=str, indent=1), encoding="utf-8")
    raise StoreError(
        f"delivery #{run.delivery_id} ended '{outcome}' but the store refused to record it ({last}); the record "
        f"was written to {fallback} — enter it once the store is reachable"
    )
