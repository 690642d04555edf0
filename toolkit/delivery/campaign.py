"""A seeded fault campaign: many short sessions on the digital twin, each with one injected fault.

Faults: instrument timeouts (transient and lasting), replies slowed to just inside the I/O timeout (every reply
of one instrument, or a single stalled one), dropped connections, garbled replies, errors pushed into an
instrument's queue, impedance steps, a lifted electrode, shorted electrodes, Ctrl+C (SIGINT) and a
notebook-style stop — injected at a random point of the session (a progress event, or a random wall-clock
delay). After every run the campaign checks the invariants the delivery layer promises:

* every run ends with every output of the twin TRULY off (the twin's own state, not a read-back) or with an
  ``output_state_unknown`` record;
* no run is recorded as completed unless the twin's output TRULY delivered the prescription (its ledger of
  bursts into the skin: whole pulses and on-time within the study's duration tolerance);
* the delivered pulses the twin's ledger counts lie within the bounds the record gives;
* no record is lost: one closed record per run, none left ``in_progress``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from toolkit.delivery.settings import DeliverySettings

__all__ = ["CampaignResult", "FAULTS", "run_fault_campaign"]

#: fault kinds drawn by the campaign (``none`` keeps a share of clean runs)
FAULTS = (
    "none", "timeout_transient", "timeout_lasting", "slow", "stall", "drop", "garble", "truncate", "error",
    "impedance_step", "lift", "short", "sigint", "stop",
)


@dataclass
class CampaignResult:
    """Counts and invariant checks of a campaign."""

    runs: int = 0
    completed: int = 0
    aborted: Counter = field(default_factory=Counter)
    unknown: int = 0
    records: int = 0
    open_records: int = 0
    faults: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return not self.violations and self.records == self.runs and self.open_records == 0

    def table(self) -> str:
        """The counts as a small text table."""
        lines = [f"fault campaign: {self.runs} runs in {self.wall_s:.1f} s wall", "",
                 f"{'outcome':<34}{'runs':>6}", f"{'-' * 40}", f"{'completed':<34}{self.completed:>6}"]
        for reason, n in sorted(self.aborted.items()):
            lines.append(f"{'aborted: ' + reason:<34}{n:>6}")
        lines.append(f"{'output state unknown':<34}{self.unknown:>6}")
        lines += ["", f"records {self.records} (runs {self.runs}), left open {self.open_records}",
                  "faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
                  f"invariant violations: {len(self.violations)}"]
        lines += [f"  ! {v}" for v in self.violations[:20]]
        return "\n".join(lines)


def _enrol(store: Any, n: int) -> list[str]:
    """Enrol ``n`` consented, patch-tested, randomised subjects (each receives up to a full course)."""
    from toolkit.study.allocation import randomize, write_allocation

    study = store.study
    if not (store.study_dir / "allocation.csv").exists():
        write_allocation(study, randomize(study, n + 10, per_stratum=True), store.study_dir)
    factor = study.randomization.factors[0] if study.randomization.factors else None
    ids = []
    for k in range(n):
        sid = f"FC-{k + 1:04d}"
        strata = {factor.name: factor.levels[0]} if factor else {}
        store.enroll_subject(sid, age=40, sex="F", fitzpatrick="II", strata=strata)
        store.record_consent(sid, signed_on=date.today() - timedelta(days=10))
        store.record_checklist(sid, store.info.eligibility.all_met(), checked_on=date.today() - timedelta(days=10))
        store.record_patch_test(sid, passed=True, read_on=date.today() - timedelta(days=8))
        store.allocate(sid)
        ids.append(sid)
    return ids


def run_fault_campaign(
    store: Any,
    runs: int = 200,
    *,
    seed: int = 0,
    minutes: float = 0.25,
    settings: DeliverySettings | None = None,
    twin: Any = None,
    echo: Any = None,
) -> CampaignResult:
    """Run ``runs`` short sessions on the twin, one fault each, and check the invariants.

    Parameters
    ----------
    store : toolkit.store.Store
        An empty store of a parallel-design study (one record per run); subjects are enrolled here and each
        receives the sessions of its course in turn, on their scheduled days.
    runs : int
        Number of sessions.
    seed : int
        Seed of the fault draws (same seed, same campaign).
    minutes : float
        Session length used for every arm (shortened so a campaign runs in about a minute).
    settings : DeliverySettings, optional
        Default: 2 s bursts, a capture every 4 s, 0.3 s I/O timeout, 0.5 s switch-off budget.
    twin : instruments.twin.TwinBench, optional
        A running twin; default: one is started for the campaign, ten times faster than real time. Half the
        runs use a :class:`~toolkit.delivery.clock.PacedClock` on it (waits take their share of the time
        line, as on a real bench), half a :class:`~toolkit.delivery.clock.SimulatedClock`.
    echo : callable, optional
        Receives one line per run.

    Returns
    -------
    CampaignResult
    """
    from instruments.twin import TwinBench
    from toolkit.delivery.clock import PacedClock
    from toolkit.delivery.runner import run_session
    from toolkit.delivery.stop import StopToken

    study = _shortened(store.study, minutes)
    settings = settings or DeliverySettings(burst_interval_s=2.0, capture_every_s=4.0, io_timeout_s=0.3,
                                            off_retry_s=0.5, consecutive_breaks=1)
    rng = random.Random(seed)
    # each subject receives the sessions of its course in turn, each on its scheduled day
    course = study.schedule.sessions
    subjects = _enrol(store, -(-runs // course))
    plan = [(subjects[k // course], k % course + 1) for k in range(runs)]
    day1 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    own_twin = twin is None
    if own_twin:
        # ten times real time: a session on the paced clock (waits as on a wall clock) lasts a tenth
        twin = TwinBench(speed=10.0, seed=seed)
        twin.start()
        twin.model.max_simulated_pulses = 1
    result = CampaignResult()
    t_start = time.perf_counter()
    try:
        for n, (sid, session) in enumerate(plan):
            kind = rng.choice(FAULTS)
            at_event = rng.randint(1, 9)
            use_timer = kind not in ("sigint", "stop") and rng.random() < 0.3
            delay_s = rng.uniform(0.0, 0.25)
            instrument = rng.choice(("stimulator", "current_source", "scope"))
            factor = rng.choice((0.02, 0.5, 1.5, 3.0, 20.0))
            # slow replies stay inside the I/O timeout: the session must go on and still tell the truth
            slow_s = settings.io_timeout_s * rng.uniform(0.5, 0.95)
            slow_n = rng.randint(2, 6)
            # half the runs wait as on a wall clock (a late reply costs session time, as on a real bench),
            # half on the simulated clock that jumps over waits
            paced = rng.random() < 0.5
            token = StopToken()
            result.faults[kind] += 1

            def inject(kind: str = kind, instrument: str = instrument, factor: float = factor,
                       token: StopToken = token, slow_s: float = slow_s, slow_n: int = slow_n) -> None:
                if kind == "slow":
                    twin.delay_replies(instrument, slow_s, count=slow_n)
                elif kind == "stall":
                    twin.delay_replies(instrument, settings.io_timeout_s * 0.95, count=1)
                elif kind == "timeout_transient":
                    twin.inject_timeout(instrument)
                    threading.Timer(0.4, lambda: twin.servers[instrument].silent.clear()).start()
                elif kind == "timeout_lasting":
                    twin.inject_timeout(instrument)
                elif kind == "drop":
                    twin.drop_connection(instrument)
                elif kind in ("garble", "truncate"):
                    twin.garble_next_reply(instrument, "garbage" if kind == "garble" else "truncate")
                elif kind == "error":
                    twin.push_error(instrument, -222, "campaign fault")
                elif kind == "impedance_step":
                    twin.impedance_step(factor)
                elif kind == "lift":
                    twin.lift_electrode()
                elif kind == "short":
                    twin.short_electrodes()
                elif kind == "sigint":
                    os.kill(os.getpid(), signal.SIGINT)
                elif kind == "stop":
                    token.stop("campaign stop")

            seen = {"n": 0, "done": False}

            def progress(event: Any, inject: Any = inject, seen: dict = seen,
                         armed: bool = not use_timer and kind != "none", at_event: int = at_event) -> None:
                seen["n"] += 1
                if armed and not seen["done"] and seen["n"] >= at_event:
                    seen["done"] = True
                    inject()

            timer = threading.Timer(delay_s, inject) if use_timer and kind != "none" else None
            if timer is not None:
                timer.start()
            outcome = "error"
            mark = twin.model.ledger.mark()
            try:
                start = day1 + timedelta(days=study.schedule.session_day(session) - 1)
                timing = {"clock": PacedClock(twin.clock, start=start)} if paced else {"session_start": start}
                rec = run_session(study, sid, session, store=store, twin=twin, settings=settings, stop=token,
                                  progress=progress, **timing)
                t = rec.treatments[0]
                outcome = t.outcome
                truth = twin.model.ledger.totals(mark, load="skin")
                for why in _disagreements(t, study, truth):
                    result.violations.append(f"run {n} ({sid}, {kind}): {why}")
                if t.outcome == "completed":
                    result.completed += 1
                    ok, why = _delivered_as_prescribed(t, study)
                    if not ok:
                        result.violations.append(f"run {n} ({sid}, {kind}): completed but {why}")
                elif t.outcome == "aborted":
                    result.aborted[t.abort_reason.value if t.abort_reason else "unknown"] += 1
                else:
                    result.unknown += 1
            except KeyboardInterrupt:
                result.violations.append(f"run {n} ({sid} s{session}, {kind}): KeyboardInterrupt escaped the session")
            except Exception as exc:  # every other escape is a finding, the campaign goes on
                result.violations.append(f"run {n} ({sid} s{session}, {kind}): {type(exc).__name__}: {exc}")
            finally:
                if timer is not None:
                    timer.cancel()
                    timer.join()
            result.runs += 1
            truly_on = twin.any_output_on()
            if truly_on and outcome != "output_state_unknown":
                result.violations.append(f"run {n} ({sid}, {kind}): output TRULY on after '{outcome}'")
            twin.clear_faults()
            if truly_on:
                # leave the next run a safe bench, as the operator would
                for dev in (twin.devices["stimulator"], twin.devices["current_source"]):
                    dev.reset()
            twin.model.set_load("dummy")
            if echo is not None:
                echo(f"run {n + 1:4d} {sid} session {session:2d} {kind:<18} {'paced' if paced else 'sim':<6}"
                     f"-> {outcome}")
    finally:
        if own_twin:
            twin.stop()
    frame = store.deliveries()
    result.records = int(len(frame))
    result.open_records = int((frame["status"] == "in_progress").sum()) if len(frame) else 0
    counts = frame.groupby(["subject_id", "session_number"]).size().to_dict() if len(frame) else {}
    for sid, session in plan:
        count = int(counts.get((sid, session), 0))
        if count != 1:
            result.violations.append(f"{sid} session {session}: {count} records (expected 1)")
    result.wall_s = time.perf_counter() - t_start
    return result


def _shortened(study: Any, minutes: float) -> Any:
    """The study with every session ``minutes`` long; ramps shrink to a quarter of the session at most."""
    arms = []
    for arm in study.arms:
        rx = arm.prescription
        update: dict[str, float] = {"duration_min": minutes}
        for ramp in ("ramp_up_s", "ramp_down_s"):
            if hasattr(rx, ramp):
                update[ramp] = min(getattr(rx, ramp), minutes * 60 / 4)
        arms.append(arm.model_copy(update={"prescription": rx.model_copy(update=update)}))
    return study.model_copy(update={"arms": tuple(arms)})


def _prescribed_pulses(rx: Any) -> int:
    """Pulses (EP) or waveform cycles (MC) a prescription delivers in its session."""
    if rx.modality == "electroporation":
        return round(rx.duration_s / rx.train_interval_s) * rx.pulses_per_train
    if rx.modality == "microcurrent" and rx.frequency_Hz:
        return round(rx.duration_s * rx.frequency_Hz)
    return 0


def _disagreements(t: Any, study: Any, truth: Any) -> list[str]:
    """Where a record disagrees with what the twin's output truly delivered into the skin."""
    rx = study.arm(t.arm_id).prescription
    rel = float(study.tolerances.duration_rel)
    out = []
    schedule = next((v for v in t.verification if v.get("step") == "schedule"), None)
    if schedule is not None and truth.bursts:
        low, high = schedule.get("pulses_low"), schedule.get("pulses_high")
        if low is not None and high is not None and not low <= truth.pulses <= high:
            out.append(f"the twin delivered {truth.pulses} pulses/cycles, outside the recorded bounds {low}..{high}")
    if t.outcome == "completed" and rx.modality != "sham":
        wanted = _prescribed_pulses(rx)
        if wanted and truth.pulses < wanted * (1 - rel):
            out.append(f"recorded completed but the twin delivered {truth.pulses} of {wanted} pulses/cycles")
        if truth.bursts_cut:
            out.append(f"recorded completed but {truth.bursts_cut} burst(s) were cut short")
        if t.dose.pulse_count != truth.pulses:
            out.append(f"recorded {t.dose.pulse_count} pulses/cycles, the twin delivered {truth.pulses}")
    return out


def _delivered_as_prescribed(t: Any, study: Any) -> tuple[bool, str]:
    rx = study.arm(t.arm_id).prescription
    rel = float(study.tolerances.duration_rel)
    if t.dose.duration_s < rx.duration_s * (1 - rel):
        return False, f"delivered {t.dose.duration_s:.1f} s of {rx.duration_s:.1f} s"
    if rx.modality == "sham":
        return (t.dose.charge_C == 0 and t.dose.pulse_count == 0), "sham with a dose"
    if rx.modality == "electroporation":
        trains = round(rx.duration_s / rx.train_interval_s)
        if t.dose.pulse_count != trains * rx.pulses_per_train:
            return False, f"{t.dose.pulse_count} pulses, expected {trains * rx.pulses_per_train}"
    return True, ""
