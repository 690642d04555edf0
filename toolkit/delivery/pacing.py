"""When the next burst may start: never before the previous one has certainly ended, never to catch up.

A :class:`Pacer` starts the bursts of one treatment and keeps their :class:`~toolkit.delivery.timeline.BurstTimeline`.
Before a start, and before any command that would end a running burst (a new amplitude, a polarity reversal,
the final switch-off), it waits until the timeline says no burst can still be running, plus a margin for the
instrument's own start latency and clock-rate difference. The host's latency needs no margin: the wait counts
from the moment the instrument confirmed the previous start.

A session that falls behind (a slow reply, a capture that took long) therefore does not fire missed triggers
back to back — an instrument ignores a trigger during a burst, and a polarity change or switch-off would cut
it. It goes on at its own rhythm from where it is, which extends the session; the caller bounds how far.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolkit.delivery.abort import Abort, AbortReason, SessionAborted
from toolkit.delivery.clock import Clock
from toolkit.delivery.dose import WaveformRates
from toolkit.delivery.timeline import BurstEntry, BurstTimeline

__all__ = ["BurstShape", "Pacer"]

#: starts in a row an instrument may ignore (it still delivers its previous burst) before the session aborts
_MAX_IGNORED_STARTS = 3


class BurstShape:
    """What one burst is: its length, its pulses or cycles and their period, and the share of session time it
    stands for (its trigger interval)."""

    __slots__ = ("first_phase_s", "interval_s", "on_s", "period_s", "pulses")

    def __init__(self, *, on_s: float, pulses: int, period_s: float, first_phase_s: float, interval_s: float):
        self.on_s = on_s
        self.pulses = pulses
        self.period_s = period_s
        self.first_phase_s = first_phase_s
        self.interval_s = interval_s


class Pacer:
    """Starts bursts through ``trigger`` and dates them on ``clock`` (see the module docstring).

    Parameters
    ----------
    clock : Clock
        The session clock (wall or simulated).
    trigger : callable
        Starts one burst; returns False when the instrument ignored the start (a burst still running).
    shape : BurstShape
        The bursts this pacer starts.
    margin_s : float
        Added to the end of a burst before the next start or output change.
    after_wait : callable, optional
        Called after every wait (a stop check: a stop wakes a sleeping session, which must then not go on to
        start a burst early).
    """

    def __init__(self, clock: Clock, trigger: Callable[[], Any], shape: BurstShape, margin_s: float,
                 after_wait: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.trigger = trigger
        self.shape = shape
        self.margin_s = float(margin_s)
        self.after_wait = after_wait
        self.timeline = BurstTimeline()

    def idle_at_s(self) -> float:
        """Session time from which the output may be started or changed without cutting a burst."""
        return self.timeline.idle_at_s() + self.margin_s

    def wait_until(self, t_s: float) -> None:
        """Sleep on the session clock until ``t_s`` (at once when it has passed)."""
        left = t_s - self.clock.now_s()
        if left > 0:
            self.clock.sleep(left)
        if self.after_wait is not None:
            self.after_wait()

    def wait_idle(self) -> None:
        """Wait until no burst can still be running (plus the margin)."""
        self.wait_until(self.idle_at_s())

    def record_idle(self, *, scale: float = 0.0, rates: WaveformRates | None = None) -> BurstEntry:
        """Account one burst slot in which nothing is delivered (sham): session time without output."""
        now = self.clock.now_s()
        s = self.shape
        return self.timeline.started(t_sent_s=now, t_confirmed_s=now, on_s=0.0, pulses=0, period_s=s.period_s,
                                     first_phase_s=0.0, interval_s=s.interval_s, scale=scale, polarity=1,
                                     rates=rates or WaveformRates.zero())

    def fire(self, *, scale: float, polarity: int, rates: WaveformRates,
             split: tuple[float, WaveformRates] | None = None) -> BurstEntry:
        """Start one burst now and record it; retries a start the instrument ignored, a few times.

        ``split`` — (seconds, rates) — is a burst whose polarity reverses after that time into a part with
        those (signed) rates (see :class:`~toolkit.delivery.timeline.BurstEntry`).

        Raises
        ------
        SessionAborted
            When the instrument ignored several starts in a row.
        Exception
            Whatever the trigger raised (the burst is then recorded as possibly started, unconfirmed).
        """
        s = self.shape
        fields = {"on_s": s.on_s, "pulses": s.pulses, "period_s": s.period_s, "first_phase_s": s.first_phase_s,
                  "interval_s": s.interval_s, "scale": scale, "polarity": polarity, "rates": rates, "split": split}
        for _ in range(_MAX_IGNORED_STARTS):
            t_sent = self.clock.now_s()
            try:
                accepted = self.trigger()
            except BaseException:
                # the start may have been executed before the connection failed: bound it as possible
                self.timeline.started(t_sent_s=t_sent, t_confirmed_s=self.clock.now_s(), confirmed=False,
                                      **fields)
                raise
            t_confirmed = self.clock.now_s()
            entry = self.timeline.started(t_sent_s=t_sent, t_confirmed_s=t_confirmed,
                                          accepted=accepted is not False, **fields)
            if entry.accepted:
                return entry
            # the instrument still delivers its previous burst by its own clock: give it a little longer
            self.wait_until(self.clock.now_s() + self.margin_s + 0.01 * s.on_s)
        raise SessionAborted(Abort(
            AbortReason.INSTRUMENT_ERROR,
            f"the stimulator ignored {_MAX_IGNORED_STARTS} burst starts in a row (a burst still running by its "
            "own clock): check its trigger settings",
        ))

    def cut(self, t_sent_s: float, t_confirmed_s: float) -> bool:
        """The output was ended between these times (switch-off): bound the running burst's share."""
        return self.timeline.cut(t_sent_s, t_confirmed_s)
