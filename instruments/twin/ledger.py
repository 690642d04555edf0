"""What the twin's outputs truly delivered: every burst with its start, its planned length and where it ended.

The ledger is the twin's ground truth, independent of any client: a burst cut short (switched off, aborted, or
replaced) ends where it was cut, and a trigger the instrument ignored never appears. Tests and fault campaigns
compare a session's record with it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["BurstTruth", "DeliveryLedger", "DeliveredTotals"]


@dataclass
class BurstTruth:
    """One burst as the output delivered it (simulated seconds)."""

    #: sequence number (1, 2, …) over the twin's lifetime
    seq: int
    #: ``'voltage'`` (generator, through the amplifier) or ``'current'`` (current source)
    source: str
    t0_s: float
    period_s: float
    cycles: int
    #: length of the first phase of a period (the pulse of a pulse train)
    first_phase_s: float
    end_s: float
    #: what the burst went into: ``'dummy'`` (the bench resistor) or ``'skin'``
    load: str = "dummy"
    cut: bool = False

    @property
    def planned_s(self) -> float:
        """Length the burst would have had uncut."""
        return self.cycles * self.period_s

    @property
    def on_s(self) -> float:
        """Time the burst delivered."""
        return max(self.end_s - self.t0_s, 0.0)

    @property
    def pulses(self) -> int:
        """Pulses (periods) whose first phase was delivered whole."""
        if self.period_s <= 0:
            return self.cycles if not self.cut else 0
        n = math.floor((self.on_s - self.first_phase_s) / self.period_s + 1e-9) + 1
        return int(min(max(n, 0), self.cycles))


@dataclass(frozen=True)
class DeliveredTotals:
    """Sums over a stretch of the ledger."""

    bursts: int
    bursts_cut: int
    on_s: float
    pulses: int


class DeliveryLedger:
    """Bursts delivered by the twin's outputs, oldest first (the most recent ``maxlen`` are kept)."""

    def __init__(self, maxlen: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._bursts: deque[BurstTruth] = deque(maxlen=maxlen)
        self._seq = 0

    def start(self, source: str, t0_s: float, *, period_s: float, cycles: int, first_phase_s: float,
              load: str = "dummy") -> BurstTruth:
        """Record a burst starting at ``t0_s``; a burst still running then is cut there."""
        with self._lock:
            self._cut_locked(t0_s)
            self._seq += 1
            burst = BurstTruth(self._seq, source, t0_s, period_s, int(cycles), first_phase_s,
                               t0_s + int(cycles) * period_s, load)
            self._bursts.append(burst)
            return burst

    def cut(self, t_s: float) -> bool:
        """End the running burst at ``t_s`` (output off, abort); True if one was running."""
        with self._lock:
            return self._cut_locked(t_s)

    def _cut_locked(self, t_s: float) -> bool:
        if not self._bursts:
            return False
        last = self._bursts[-1]
        if last.t0_s <= t_s < last.end_s:
            last.end_s = t_s
            last.cut = True
            return True
        return False

    def running(self, t_s: float) -> bool:
        """Whether a burst is being delivered at ``t_s``."""
        with self._lock:
            return bool(self._bursts) and self._bursts[-1].t0_s <= t_s < self._bursts[-1].end_s

    def mark(self) -> int:
        """A bookmark: pass it to :meth:`since` to get what was delivered after this call."""
        with self._lock:
            return self._seq

    def since(self, mark: int = 0) -> list[BurstTruth]:
        """The bursts started after ``mark``."""
        with self._lock:
            return [b for b in self._bursts if b.seq > mark]

    def totals(self, mark: int = 0, *, source: str | None = None, load: str | None = None) -> DeliveredTotals:
        """Bursts, cut bursts, on-time and whole pulses delivered after ``mark`` (of ``source`` into ``load``
        when given)."""
        bursts = [b for b in self.since(mark) if (source is None or b.source == source)
                  and (load is None or b.load == load)]
        return DeliveredTotals(len(bursts), sum(b.cut for b in bursts), sum(b.on_s for b in bursts),
                               sum(b.pulses for b in bursts))
