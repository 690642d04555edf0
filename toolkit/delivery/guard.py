"""The output guard: every path out of a session ends with the output off and read back off.

:meth:`OutputGuard.switch_off` sends ``output_off`` to every channel the session used and reads each one back.
When the stimulator does not answer it reconnects and tries again, for a bounded wall time; if the output
still cannot be read back off, the result is ``unknown`` and the session is recorded loudly as
"output state unknown" (the operator must check the instrument by hand). The retry budget is wall time
even on the twin: reconnecting is real network work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["OffResult", "OutputGuard", "OutputSwitch"]


class OutputSwitch(Protocol):
    """What the guard needs from a stimulator."""

    def output_off(self, channel: int) -> None:
        """Switch one output off."""
        ...

    def output_state(self, channel: int) -> bool:
        """Read one output's state back (True = on)."""
        ...


@dataclass
class OffResult:
    """Outcome of a switch-off: ``state`` is ``"off"`` (read back off on every channel) or ``"unknown"``."""

    state: str
    attempts: int
    readback: dict[int, bool | None]
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def off(self) -> bool:
        """Whether every channel was read back off."""
        return self.state == "off"

    def as_dict(self) -> dict[str, object]:
        """Plain dictionary for the record."""
        return {
            "state": self.state,
            "attempts": self.attempts,
            "readback": {str(k): v for k, v in self.readback.items()},
            "errors": list(self.errors),
            "elapsed_s": round(self.elapsed_s, 3),
        }


class OutputGuard:
    """Switches outputs off and proves it, reconnecting when needed.

    Parameters
    ----------
    stimulator : OutputSwitch
        The connected stimulator.
    channels : sequence of int
        Channels to switch off and read back.
    reconnect : callable, optional
        Returns a freshly connected stimulator (called after a failed attempt); ``None``: no reconnection.
    retry_for_s : float
        Wall-time budget for attempts after the first one fails.
    retry_interval_s : float
        Wall-time pause between attempts.
    """

    def __init__(
        self,
        stimulator: OutputSwitch,
        channels: Sequence[int],
        *,
        reconnect: Callable[[], OutputSwitch] | None = None,
        retry_for_s: float = 10.0,
        retry_interval_s: float = 0.2,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not channels:
            raise ValueError("the output guard needs at least one channel")
        self.stimulator = stimulator
        self.channels = tuple(dict.fromkeys(int(c) for c in channels))
        self._reconnect = reconnect
        self.retry_for_s = float(retry_for_s)
        self.retry_interval_s = float(retry_interval_s)
        self._monotonic = monotonic
        self._sleep = sleep

    def _attempt(self, stim: OutputSwitch, readback: dict[int, bool | None]) -> None:
        # every channel is switched off before any is read back: the first command matters most
        first_error: BaseException | None = None
        for ch in self.channels:
            try:
                stim.output_off(ch)
            except Exception as exc:
                first_error = first_error or exc
        for ch in self.channels:
            readback[ch] = None
            readback[ch] = bool(stim.output_state(ch))
        if first_error is not None and any(readback.values()):
            raise first_error

    def switch_off(self) -> OffResult:
        """Switch every channel off and read it back; never raises for instrument failures."""
        start = self._monotonic()
        readback: dict[int, bool | None] = dict.fromkeys(self.channels)
        errors: list[str] = []
        attempts = 0
        stim = self.stimulator
        while True:
            attempts += 1
            try:
                self._attempt(stim, readback)
                if not any(readback.values()):
                    return OffResult("off", attempts, dict(readback), errors, self._monotonic() - start)
                errors.append(f"attempt {attempts}: output read back ON on channel(s) "
                              f"{[c for c, v in readback.items() if v]}")
            except Exception as exc:
                errors.append(f"attempt {attempts}: {type(exc).__name__}: {exc}")
            if self._monotonic() - start >= self.retry_for_s:
                return OffResult("unknown", attempts, dict(readback), errors, self._monotonic() - start)
            self._sleep(self.retry_interval_s)
            if self._reconnect is not None:
                try:
                    stim = self._reconnect()
                    self.stimulator = stim
                except Exception as exc:
                    errors.append(f"reconnect after attempt {attempts}: {type(exc).__name__}: {exc}")
