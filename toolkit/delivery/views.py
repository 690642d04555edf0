"""What the scope must resolve in each view of a treatment, and whether the bench's scope can.

A measure is only as good as its samples: a pulse integrated from a handful of samples, or a microsecond
transient sampled every few microseconds, gives a dose that breaks physics. Each view of a treatment (one
pulse at high rate, a whole train, a few microcurrent cycles) states the longest time between samples it
accepts and why — 20 samples per pulse, per carrier half-cycle or per waveform phase, and two per time
constant of the amplifier that shapes the edges. :func:`fit_view` picks the scope's record length for it, or
refuses the prescription before anything is sent, naming the field and the limit. A capture that comes back
coarser than its view asked for is refused too (never interpolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ConfigurationError

__all__ = ["MIN_SAMPLES_PER_PULSE", "Need", "check_resolution", "edge_need", "fit_view", "format_duration", "per_pulse_need",
           "scope_timebase"]

#: samples a pulse (or a carrier half-cycle, or a waveform phase) must have for its integrals to hold
MIN_SAMPLES_PER_PULSE = 20


@dataclass(frozen=True)
class Need:
    """One reason a view must sample at least every ``interval_s``: what, and which prescription field."""

    interval_s: float
    field: str
    why: str


def scope_timebase(window_s: float, scope: Any = None) -> tuple[float, float]:
    """Timebase (s/div) and trigger position (s) that show at least ``window_s`` after the trigger.

    The trigger sits 4.5 divisions before the screen centre: half a division from the left edge of a
    10-division screen (1.5 divisions on a 12-division one, 2.5 on a 14-division one), so the window after it
    is at least 9.5 divisions long. A scope class with fixed timebase steps (``timebase_at_least``) gets the
    smallest step that still shows the window.
    """
    timebase = window_s / 9.0
    if scope is not None:
        timebase = scope.timebase_at_least(timebase)
    return timebase, 4.5 * timebase


def _scope_class(bench: Any) -> type:
    from instruments.drivers import driver_class

    return driver_class(bench.scope.driver)


def fit_view(bench: Any, name: str, window_s: float, needs: list[Need], where: str) -> dict[str, float]:
    """The scope settings of one view, or a refusal.

    Parameters
    ----------
    bench : instruments.bench.Bench
        The bench (its scope driver and declared limits).
    name : str
        The view (``'pulse'``, ``'train'``, ``'cycles'``): prefix of the returned keys.
    window_s : float
        Time to show after the trigger.
    needs : list of Need
        The sampling requirements; the strictest decides.
    where : str
        ``"arm 'EP'"``: who asks, for the message.

    Returns
    -------
    dict
        ``<name>_window_s``, ``<name>_interval_s`` (longest accepted time between samples),
        ``<name>_points`` (record length), ``<name>_timebase_s`` and ``<name>_after_trigger_s`` (how long the
        record runs after its trigger).

    Raises
    ------
    ConfigurationError
        When the bench's scope cannot sample that fast over the window, naming the prescription field, the
        requirement and the scope's limits.
    """
    from instruments.errors import OutOfRange

    strict = min(needs, key=lambda n: n.interval_s)
    scope = _scope_class(bench)
    timebase, position = scope_timebase(window_s, scope)
    try:
        points = scope.record_points_for(timebase, strict.interval_s, 2, **bench.scope_limits())
    except OutOfRange as exc:
        reasons = "; ".join(f"{n.why} ({n.field})" for n in needs)
        raise ConfigurationError(
            f"{where}: the {name} view needs a sample at least every {strict.interval_s:.3g} s over "
            f"{window_s:.3g} s — {reasons} — and {exc}; accepted: a longer {strict.field} or a faster scope "
            "(bench file scope)"
        ) from None
    return {
        f"{name}_window_s": window_s,
        f"{name}_interval_s": strict.interval_s,
        f"{name}_points": float(points),
        f"{name}_timebase_s": timebase,
        # the record is complete once the screen right of the trigger has passed
        f"{name}_after_trigger_s": scope.divisions / 2 * timebase + position,
    }


def edge_need(bench: Any) -> Need | None:
    """Two samples per time constant of the amplifier that shapes the pulse edges (None without one)."""
    tau = bench.amplifier_time_constant_s
    if tau is None:
        return None
    return Need(tau / 2, "amplifier.bandwidth_Hz", f"resolve the amplifier's {tau * 1e6:.3g} µs time constant")


def per_pulse_need(duration_s: float, field: str, what: str) -> Need:
    """:data:`MIN_SAMPLES_PER_PULSE` samples in ``duration_s`` (a pulse, a half-cycle, a phase)."""
    return Need(duration_s / MIN_SAMPLES_PER_PULSE, field,
                f"{MIN_SAMPLES_PER_PULSE} samples per {format_duration(duration_s)} {what}")


def format_duration(t: float) -> str:
    """A duration in s, ms, µs or ns, three significant digits."""
    if t >= 1 or t == 0:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    if t >= 1e-6:
        return f"{t * 1e6:.3g} µs"
    return f"{t * 1e9:.3g} ns"


def check_resolution(trace: Any, max_interval_s: float) -> str | None:
    """Why a capture is too coarse for its view (None when it is fine)."""
    dt = float(trace.sample_interval_s)
    if math.isfinite(dt) and dt <= max_interval_s * (1 + 1e-6):
        return None
    return (f"the capture samples every {format_duration(dt)}, coarser than the {format_duration(max_interval_s)} its "
            "measures need; "
            "it is refused, not interpolated")
