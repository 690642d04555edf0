"""The twin's simulated clock, which may run faster than real time."""

from __future__ import annotations

import threading
import time

__all__ = ["SimClock"]


class SimClock:
    """Simulated time in seconds: ``speed`` simulated seconds pass per real second, plus manual advances.

    Parameters
    ----------
    speed : float
        Ratio of simulated to real time (1 = real time, 60 = one simulated minute per real second).

    Examples
    --------
    >>> clock = SimClock(speed=1000.0)
    >>> t0 = clock.now()
    >>> clock.advance(5.0)
    >>> clock.now() - t0 >= 5.0
    True
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"SimClock speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self._lock = threading.Lock()
        self._real0 = time.monotonic()
        self._offset_s = 0.0

    def now(self) -> float:
        """Return the simulated time in seconds since the clock was made."""
        with self._lock:
            return (time.monotonic() - self._real0) * self.speed + self._offset_s

    def advance(self, seconds: float) -> None:
        """Jump the simulated time forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError(f"SimClock.advance needs seconds >= 0, got {seconds!r}")
        with self._lock:
            self._offset_s += float(seconds)

    def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` of simulated time have passed (``seconds / speed`` real seconds)."""
        if seconds > 0:
            time.sleep(seconds / self.speed)
