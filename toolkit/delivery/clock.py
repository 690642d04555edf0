"""Injected time for delivery sessions.

A session never calls :func:`time.time` or :func:`time.sleep` itself: it asks a clock. On real instruments the
clock is a :class:`WallClock`; on the digital twin it is a :class:`SimulatedClock`, whose time only moves when
the session waits, so a 30-minute session runs in a fraction of a second of wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "PacedClock", "SimulatedClock", "WallClock"]


class _TimeSource(Protocol):
    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class _RunningSource(Protocol):
    speed: float

    def now(self) -> float: ...


@runtime_checkable
class Clock(Protocol):
    """What a delivery session needs from time.

    ``now_s`` is a monotonic session time in seconds; ``sleep`` waits (or pretends to wait) for a duration;
    ``utcnow`` gives the calendar timestamp written to records; ``simulated`` says whether waiting is real.
    """

    simulated: bool

    def now_s(self) -> float:
        """Monotonic time in seconds."""
        ...

    def sleep(self, duration_s: float) -> None:
        """Wait ``duration_s`` seconds of this clock's time."""
        ...

    def utcnow(self) -> datetime:
        """Timezone-aware UTC timestamp of :meth:`now_s`."""
        ...


class WallClock:
    """The real clock: monotonic time, real sleeps.

    Sleeping is interruptible: :meth:`interrupt` (called from another thread, e.g. by a stop token) wakes a
    sleeping session at once so an operator stop never waits for the end of a burst interval.
    """

    #: waiting takes real time
    simulated = False

    def __init__(self) -> None:
        self._wake = threading.Event()

    def now_s(self) -> float:
        """Monotonic time in seconds (:func:`time.monotonic`)."""
        return time.monotonic()

    def sleep(self, duration_s: float) -> None:
        """Wait up to ``duration_s`` seconds; return early when :meth:`interrupt` is called."""
        if duration_s > 0:
            self._wake.wait(duration_s)
        self._wake.clear()

    def interrupt(self) -> None:
        """Wake the current (or next) :meth:`sleep`."""
        self._wake.set()

    def utcnow(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class SimulatedClock:
    """A clock whose time moves only when the session sleeps.

    Parameters
    ----------
    start : datetime, optional
        Calendar time at ``now_s() == 0`` (default: the wall time at creation, UTC).
    on_advance : callable, optional
        Called as ``on_advance(duration_s)`` every time the clock moves forward, e.g. to advance a digital
        twin's own simulated time in step with the session.
    wall_fraction : float
        Fraction of each simulated wait spent really sleeping (default 0: none). A small value lets a
        watchdog or a plot refresh keep up in a demo.
    source : object, optional
        A clock with ``now()`` and ``advance(seconds)`` (the digital twin's clock). Time is then read from
        it and sleeping advances it, so session and twin share one time line (which may also run on its
        own, faster than real time).

    Examples
    --------
    >>> clock = SimulatedClock()
    >>> clock.sleep(1800.0)
    >>> clock.now_s()
    1800.0
    """

    #: waiting takes no real time
    simulated = True

    def __init__(
        self,
        start: datetime | None = None,
        *,
        on_advance: Callable[[float], None] | None = None,
        wall_fraction: float = 0.0,
        source: _TimeSource | None = None,
    ) -> None:
        if wall_fraction < 0 or wall_fraction > 1:
            raise ValueError(f"wall_fraction must be within [0, 1], got {wall_fraction!r}")
        self._start = start if start is not None else datetime.now(UTC)
        if self._start.tzinfo is None:
            raise ValueError("SimulatedClock start must be timezone-aware (UTC)")
        self._now_s = 0.0
        self._on_advance = on_advance
        self._wall_fraction = wall_fraction
        self._lock = threading.Lock()
        self._source = source
        self._source0 = source.now() if source is not None else 0.0

    def now_s(self) -> float:
        """Simulated seconds since the clock was created."""
        if self._source is not None:
            return self._source.now() - self._source0
        return self._now_s

    def sleep(self, duration_s: float) -> None:
        """Advance simulated time by ``duration_s`` (negative or zero durations do nothing)."""
        if duration_s <= 0:
            return
        with self._lock:
            self._now_s += duration_s
        if self._source is not None:
            self._source.advance(duration_s)
        if self._on_advance is not None:
            self._on_advance(duration_s)
        if self._wall_fraction:
            time.sleep(duration_s * self._wall_fraction)

    def advance(self, duration_s: float) -> None:
        """Alias of :meth:`sleep`, for tests that move time explicitly."""
        self.sleep(duration_s)

    def interrupt(self) -> None:
        """Nothing to wake: a simulated sleep returns immediately."""

    def utcnow(self) -> datetime:
        """Calendar time: the start time plus the simulated seconds."""
        return self._start + timedelta(seconds=self.now_s())


class PacedClock:
    """Time read from a running source clock (a digital twin faster than real time); waiting really waits.

    Like a :class:`WallClock`, a session on it cannot make time jump: sleeping waits ``duration / speed``
    real seconds while the source runs on, so everything the host does takes its share of the time line —
    which is how a session behaves on real instruments, at a fraction of the wall time.

    Parameters
    ----------
    source : object
        A clock with ``now()`` (seconds) and ``speed`` (its seconds per real second), e.g. a twin's clock.
    start : datetime, optional
        Calendar time at ``now_s() == 0`` (default: the wall time at creation, UTC).
    """

    #: waiting takes (scaled) real time
    simulated = False

    def __init__(self, source: _RunningSource, start: datetime | None = None) -> None:
        if not getattr(source, "speed", 0) > 0:
            raise ValueError("PacedClock needs a source clock with a positive speed")
        self._source = source
        self._source0 = source.now()
        self._start = start if start is not None else datetime.now(UTC)
        if self._start.tzinfo is None:
            raise ValueError("PacedClock start must be timezone-aware (UTC)")
        self._wake = threading.Event()

    def now_s(self) -> float:
        """Seconds of the source clock since this clock was made."""
        return self._source.now() - self._source0

    def sleep(self, duration_s: float) -> None:
        """Wait until ``duration_s`` of the source's time has passed; return early on :meth:`interrupt`."""
        if duration_s > 0:
            self._wake.wait(duration_s / self._source.speed)
        self._wake.clear()

    def interrupt(self) -> None:
        """Wake the current (or next) :meth:`sleep`."""
        self._wake.set()

    def utcnow(self) -> datetime:
        """Calendar time: the start time plus the elapsed source seconds."""
        return self._start + timedelta(seconds=self.now_s())
