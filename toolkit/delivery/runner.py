"""One treatment session on the bench: check, configure, verify, deliver, record — output safe on every path.

:func:`run_session` is the one entry point (the ``toolkit deliver`` command and the notebooks call it). The
order of a treatment never changes (:mod:`toolkit.delivery.state` enforces it):

1. eligibility and allocation, safety envelope, mapping onto the bench — refused before anything is sent
   or recorded;
2. the store record is opened (``start_delivery``) before any instrument is touched, and closed
   (``finish_delivery``) in a ``finally``, so no attempt goes unrecorded;
3. preflight: identities (on connect), calibration dates, empty error queues, outputs off;
4. configure and read back; verify on the dummy load; the operator confirms the electrodes;
5. ramp up, deliver as re-triggered finite bursts with periodic captures and abort rules, ramp down;
6. output off and read back — on every path, with reconnects for a bounded time, else the record says
   "output state unknown" loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from instruments.transport import listening
from toolkit.delivery.clock import Clock, SimulatedClock, WallClock
from toolkit.delivery.deliverable import SafetyRefusal, plan_arm
from toolkit.delivery.eligibility import NotEligible, check_eligibility
from toolkit.delivery.heap import keep_freed_memory
from toolkit.delivery.operator import ConfirmCallback, ConfirmRequest, TwinOperator
from toolkit.delivery.plan import TreatmentPlan
from toolkit.delivery.progress import ProgressCallback
from toolkit.delivery.record import DeliveryRecord
from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.stop import StopToken, sigint_stops
from toolkit.delivery.treatment import SessionContext, run_treatment
from toolkit.errors import ConfigurationError

__all__ = ["SafetyRefusal", "run_session", "start_twin_for"]


# ---------------------------------------------------------------------------------------------------------------
# resolving the inputs


def _resolve_study(study: Any) -> Any:
    if isinstance(study, str | Path):
        from toolkit.study import load_study

        return load_study(study)
    return study


def _resolve_bench(bench: Any, twin: Any) -> Any:
    from instruments.bench import Bench, default_bench_path, load_bench

    if twin is not None:
        if bench is not None and not isinstance(bench, Bench):
            raise ConfigurationError("pass either twin= (a running TwinBench) or bench=, not a bench file with it")
        return bench if bench is not None else twin.bench
    if bench is None:
        return load_bench(default_bench_path("twin"))
    if isinstance(bench, Bench):
        return bench
    return load_bench(bench)


def start_twin_for(bench: Any, *, speed: float = 1.0, seed: int = 0, segments_per_phase: int | None = None) -> Any:
    """Start an in-process digital twin serving the ports of a loopback twin bench file.

    Parameters
    ----------
    bench : instruments.bench.Bench
        A bench named ``twin`` whose resources are on 127.0.0.1.
    speed : float
        Twin clock speed (simulated seconds per real second).
    seed : int
        Scope noise seed.
    segments_per_phase : int, optional
        Time steps of the twin's circuit and pore model per pulse phase (default: the twin's own, 12);
        4 simulates a burst about four times faster with a coarser electroporation onset, for large demos.

    Returns
    -------
    instruments.twin.TwinBench
        Started; call ``stop()`` when done.
    """
    from instruments.twin import TwinBench

    ports = {}
    for role, spec in bench.instruments():
        parts = spec.resource.split("::")
        ports[role] = int(parts[2])
    twin = TwinBench(speed=speed, seed=seed, ports=ports, bench=bench)
    twin.start()
    # the twin resolves every pulse of a burst; a few periods are enough for what the scope sees
    twin.model.max_simulated_pulses = min(twin.model.max_simulated_pulses, 1)
    if segments_per_phase is not None:
        if segments_per_phase < 2:
            raise ConfigurationError(f"segments_per_phase must be at least 2, got {segments_per_phase}")
        twin.model.segments_per_phase = int(segments_per_phase)
    return twin


# ---------------------------------------------------------------------------------------------------------------
# the session


def run_session(
    study: Any,
    subject_id: str,
    session_number: int,
    *,
    bench: Any = None,
    store: Any = None,
    clock: Clock | None = None,
    confirm: ConfirmCallback | None = None,
    progress: ProgressCallback | None = None,
    twin: Any = None,
    stop: StopToken | None = None,
    settings: DeliverySettings | None = None,
    repeat: bool = False,
    on_note: Callable[[str], None] | None = None,
    session_start: datetime | None = None,
) -> DeliveryRecord:
    """Deliver and verify one treatment session (both sides of a split-face visit) and record it.

    Parameters
    ----------
    study : Study or path
        The study model, or the path of its folder / ``study.yaml``.
    subject_id : str
        An enrolled, consented, patch-tested and randomised subject.
    session_number : int
        Session of the course (1-based); it must fall in its window.
    bench : Bench or path, optional
        Bench configuration (default ``instruments/benches/twin.yaml``). With the default twin bench, an
        in-process twin is started when nothing listens at its ports.
    store : Store, optional
        The study's store (default: :func:`toolkit.store.open_store` of the study, closed afterwards).
    clock : Clock, optional
        Default: a :class:`~toolkit.delivery.clock.SimulatedClock` on the twin's clock for a twin, else a
        :class:`~toolkit.delivery.clock.WallClock`.
    confirm : callable, optional
        Operator confirmation (:class:`~toolkit.delivery.operator.ConfirmRequest` -> bool). Default on a twin:
        :class:`~toolkit.delivery.operator.TwinOperator`; required on real instruments.
    progress : callable, optional
        Receives :class:`~toolkit.delivery.progress.ProgressEvent` objects.
    twin : instruments.twin.TwinBench, optional
        A running twin to deliver to (its bench is used).
    stop : StopToken, optional
        Set it (e.g. from a notebook button) to abort; Ctrl+C sets it too when running in the main thread.
    settings : DeliverySettings, optional
        Burst interval, capture cadence, retry budgets.
    repeat : bool
        Deliver a session that was already completed again (a new record linked to the first).
    on_note : callable, optional
        Receives notes for the operator (e.g. that an in-process twin was started).
    session_start : datetime, optional
        Simulation only (twin, no ``clock`` given): the calendar time the simulated session starts at, e.g.
        to deliver session 3 on its scheduled day in a demo. Refused with real instruments.

    Returns
    -------
    DeliveryRecord
        One :class:`~toolkit.delivery.record.TreatmentResult` per record written.

    Raises
    ------
    NotEligible, SafetyRefusal
        Before anything is sent or recorded (exit code 1 on the command line).
    ConfigurationError, InstrumentError, StoreError
        Bad bench or study files, unreachable instruments before the record opened, store failures.
    KeyboardInterrupt
        A second Ctrl+C, after the outputs were switched off and the record closed.
    """
    settings = settings or DeliverySettings()
    # captures allocate and free record-sized arrays: keep the freed memory for the next one (no new pages)
    keep_freed_memory()
    study = _resolve_study(study)
    bench_cfg = _resolve_bench(bench, twin)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if on_note is not None:
            on_note(text)

    own_twin = None
    if twin is None and bench_cfg.is_loopback_twin and not listening(bench_cfg.stimulator.resource):
        own_twin = start_twin_for(bench_cfg)
        twin = own_twin
        note(f"no twin was listening at {bench_cfg.stimulator.resource}: started an in-process digital twin")
    if session_start is not None and (twin is None or clock is not None):
        raise ConfigurationError("a session start time can be given only for a simulated session on the digital twin, "
                                 "whose clock it sets")
    if clock is None:
        clock = SimulatedClock(session_start, source=twin.clock) if twin is not None else WallClock()
    external_twin = twin is None and bench_cfg.is_loopback_twin
    if external_twin:
        note(f"a digital twin is already answering at {bench_cfg.stimulator.resource}: the session runs on the "
             "wall clock and cannot move that twin's load")
    if confirm is None and external_twin:
        confirm = TwinOperator(None)
    if confirm is None:
        if twin is None:
            raise ConfigurationError(
                "delivering on real instruments needs an operator confirmation callback (confirm=...); "
                "the command line prompts, notebooks use a button"
            )
        confirm = TwinOperator(twin)
    elif twin is not None and not isinstance(confirm, TwinOperator):
        confirm = _on_twin(confirm, twin)
    own_store = store is None
    token = stop or StopToken()
    token.add_listener(getattr(clock, "interrupt", lambda: None))
    record = DeliveryRecord(study.id, subject_id, int(session_number), notes=notes)
    ctx: SessionContext | None = None
    try:
        if own_store:
            from toolkit.store import open_store

            store = open_store(study)
        with sigint_stops(token):
            target = check_eligibility(study, store, subject_id, int(session_number), today=clock.utcnow().date())
            todo = [t for t in target.treatments if repeat or not t.completed_before]
            if not todo:
                done = ", ".join(f"#{i}" for t in target.treatments for i in t.earlier_ids)
                raise NotEligible(
                    f"session {session_number} of subject {subject_id} was already completed ({done}); "
                    "to deliver it again as a new linked record, ask for a repeat (command line: --repeat; "
                    "session panel: Repeat)"
                )
            plans = []
            for t in todo:
                plan = plan_arm(study, t.arm_id, bench_cfg, settings, side=t.side)
                if t.earlier_ids and not repeat and not t.completed_before:
                    plan = _remaining(plan, t.delivered_s, subject_id, session_number)
                plans.append((t, plan))
            ctx = SessionContext(study, store, bench_cfg, clock, settings, confirm, progress, token, subject_id,
                           int(session_number))
            for t, plan in plans:
                resumed = t.first_id if t.earlier_ids else None
                result = run_treatment(ctx, t, plan, resumed)
                record.treatments.append(result)
                if not result.completed:
                    break
    finally:
        if ctx is not None and ctx.connected is not None:
            try:
                ctx.connected.close()
            except Exception as exc:  # closing never hides the session's outcome
                note(f"closing the bench connections reported: {exc}")
        if own_store and store is not None:
            store.close()
        if own_twin is not None:
            own_twin.stop()
    return record


def _on_twin(confirm: ConfirmCallback, twin: Any) -> ConfirmCallback:
    """A person confirms; the twin's load follows what they confirmed (dummy resistor or skin)."""
    mover = TwinOperator(twin)

    def ask(request: ConfirmRequest) -> bool:
        return bool(confirm(request)) and mover(request)

    return ask


def _remaining(plan: TreatmentPlan, delivered_s: float, subject_id: str, session_number: int) -> TreatmentPlan:
    """Shorten a resumed treatment to what is left of its prescribed time (whole bursts: less than half a
    burst left is nothing to resume)."""
    left = plan.duration_s - delivered_s
    if left < 0.5 * plan.trigger_interval_s:
        raise NotEligible(
            f"session {session_number} of subject {subject_id}: earlier records already delivered "
            f"{delivered_s:.0f} s of {plan.duration_s:.0f} s; nothing is left to resume "
            "(ask for a repeat to deliver the full session again: --repeat on the command line, Repeat in the "
            "session panel)"
        )
    ramps = plan.ramp_up_s + plan.ramp_down_s
    shrink = min(1.0, left / ramps) if ramps > 0 else 1.0
    return replace(plan, duration_s=left, ramp_up_s=plan.ramp_up_s * shrink, ramp_down_s=plan.ramp_down_s * shrink)


