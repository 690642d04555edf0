"""What the bench did, burst by burst: the trigger timeline a session's dose and completion are judged from.

Every burst start is dated by two readings of the session clock: just before the start command was sent and
just after the instrument confirmed executing it. The burst began somewhere in between, so it has certainly
ended ``on_s`` after the confirmation — that is when the next burst may be started, or the output changed,
without cutting it (:meth:`BurstTimeline.idle_at_s`). A command that ends the output (switch-off on an abort)
cuts the running burst; its share is bounded the same way.

The recorded dose uses the best estimate of each burst's delivered time (the middle of its bounds); whether a
session was delivered as prescribed uses the lower bound, so a session is never called complete on time it
may not have had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from toolkit.delivery.dose import Dose, DoseAccumulator, WaveformRates

__all__ = ["BurstEntry", "BurstTimeline", "Delivered"]

Bound = Literal["low", "estimate", "high"]


@dataclass
class BurstEntry:
    """One burst start: when it was sent and confirmed, what it was to deliver, and whether it was cut.

    Times are session-clock seconds; ``rates`` are the full-amplitude rates of the latest capture when the
    burst was started (scaled by ``scale`` and signed by ``polarity`` in the dose). A burst whose polarity
    reverses within it has ``split`` — (seconds, rates): after that time it delivers with those rates (full
    amplitude, signed as measured) — so a burst cut in its first part has delivered nothing reversed.
    """

    index: int
    t_sent_s: float
    t_confirmed_s: float
    on_s: float
    pulses: int
    period_s: float
    first_phase_s: float
    interval_s: float
    scale: float
    polarity: int
    rates: WaveformRates
    accepted: bool = True
    #: False when the start command failed (a lost connection): the burst may or may not have started
    confirmed: bool = True
    cut_sent_s: float | None = None
    cut_confirmed_s: float | None = None
    split: tuple[float, WaveformRates] | None = None

    @property
    def end_bound_s(self) -> float:
        """Latest time the burst can still be delivering (its confirmed start plus its length, or its cut)."""
        end = self.t_confirmed_s + self.on_s
        if self.cut_confirmed_s is not None:
            end = min(end, self.cut_confirmed_s)
        return end

    def delivered_s(self, bound: Bound = "estimate") -> float:
        """Time the burst delivered: certainly at least ``'low'``, at most ``'high'``; ``'estimate'`` between."""
        if not self.accepted or (bound == "low" and not self.confirmed):
            return 0.0
        if self.cut_sent_s is None:
            return self.on_s
        low = self.cut_sent_s - self.t_confirmed_s if self.confirmed else 0.0
        high = (self.cut_confirmed_s if self.cut_confirmed_s is not None else self.cut_sent_s) - self.t_sent_s
        value = {"low": low, "high": high, "estimate": (low + high) / 2}[bound]
        return min(max(value, 0.0), self.on_s)

    def pulses_delivered(self, bound: Bound = "estimate") -> int:
        """Pulses (EP) or cycles (MC) whose first phase the burst delivered whole."""
        d = self.delivered_s(bound)
        if d >= self.on_s:
            return self.pulses if self.accepted else 0
        if self.period_s <= 0:
            return 0
        n = math.floor((d - self.first_phase_s) / self.period_s + 1e-9) + 1
        return int(min(max(n, 0), self.pulses))

    @property
    def complete(self) -> bool:
        """Started and certainly not cut."""
        return self.accepted and self.delivered_s("low") >= self.on_s


@dataclass(frozen=True)
class Delivered:
    """Totals of a timeline under one bound."""

    bursts: int
    bursts_complete: int
    on_s: float
    pulses: int


@dataclass
class BurstTimeline:
    """The bursts of one treatment, in order (see the module docstring)."""

    entries: list[BurstEntry] = field(default_factory=list)
    #: starts the instrument ignored because its previous burst was still running
    ignored: int = 0

    def started(self, **kwargs: Any) -> BurstEntry:
        """Record a burst start (see :class:`BurstEntry` for the fields); returns the entry."""
        entry = BurstEntry(index=len(self.entries), **kwargs)
        self.entries.append(entry)
        if not entry.accepted:
            self.ignored += 1
        return entry

    @property
    def last(self) -> BurstEntry | None:
        """The latest accepted burst, or None."""
        for entry in reversed(self.entries):
            if entry.accepted:
                return entry
        return None

    def idle_at_s(self) -> float:
        """Session time from which no burst can still be running (``-inf`` before the first)."""
        last = self.last
        return -math.inf if last is None else last.end_bound_s

    def cut(self, t_sent_s: float, t_confirmed_s: float) -> bool:
        """The output was ended by a command sent at ``t_sent_s`` and confirmed at ``t_confirmed_s``.

        Returns True if the latest burst may have been running then (its share is bounded accordingly).
        """
        last = self.last
        if last is None or last.cut_sent_s is not None or t_sent_s >= last.end_bound_s:
            return False
        last.cut_sent_s = t_sent_s
        last.cut_confirmed_s = t_confirmed_s
        return True

    def delivered(self, bound: Bound = "estimate") -> Delivered:
        """Bursts, complete bursts, on-time and pulses under ``bound``."""
        accepted = [e for e in self.entries if e.accepted]
        return Delivered(
            bursts=len(accepted),
            bursts_complete=sum(e.complete for e in accepted),
            on_s=sum(e.delivered_s(bound) for e in accepted),
            pulses=sum(e.pulses_delivered(bound) for e in accepted),
        )

    def dose(self) -> Dose:
        """The dose the bursts delivered (best estimates), from each burst's rates, scale and polarity.

        ``duration_s`` is the prescribed session time the delivered bursts account for (each burst its
        trigger interval, in proportion to the share it delivered), so a session stretched by late replies
        still records the time it was prescribed, and a cut one only the time it had.
        """
        acc = DoseAccumulator()
        for e in self.entries:
            if not e.accepted:
                continue
            on = e.delivered_s("estimate")
            share = on / e.on_s if e.on_s > 0 else 1.0
            acc.add_burst(on_s=on, period_s=e.interval_s * share, rates=e.rates,
                          pulses=e.pulses_delivered("estimate"), scale=e.scale, polarity=e.polarity, split=e.split)
        return acc.dose()

    def summary(self, *, planned_bursts: int, planned_pulses: int, planned_on_s: float) -> dict[str, Any]:
        """The timeline in a few numbers for the record (planned vs delivered, bounds, lateness)."""
        low, high = self.delivered("low"), self.delivered("high")
        accepted = [e for e in self.entries if e.accepted]
        gaps = [b.t_sent_s - a.end_bound_s for a, b in zip(accepted, accepted[1:], strict=False)]
        latency = [e.t_confirmed_s - e.t_sent_s for e in accepted]
        first = accepted[0].t_sent_s if accepted else None
        end = accepted[-1].end_bound_s if accepted else None
        return {
            "planned_bursts": planned_bursts,
            "planned_pulses": planned_pulses,
            "planned_on_s": round(planned_on_s, 6),
            "bursts_started": len(accepted),
            "bursts_complete": low.bursts_complete,
            "starts_ignored": self.ignored,
            "on_s_low": round(low.on_s, 6),
            "on_s_high": round(high.on_s, 6),
            "pulses_low": low.pulses,
            "pulses_high": high.pulses,
            "span_s": None if first is None or end is None else round(end - first, 6),
            "start_latency_max_s": round(max(latency), 6) if latency else None,
            "gap_min_s": round(min(gaps), 6) if gaps else None,
            "gap_max_s": round(max(gaps), 6) if gaps else None,
        }
