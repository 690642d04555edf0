"""Operator stop: a token any thread (a notebook button, a signal handler) can set.

The session polls the token between bursts and during waits; setting it aborts the session with the
reason ``operator_stop`` and the usual output-off sequence. Ctrl+C in a terminal is routed to the token by
:func:`sigint_stops`, so the first Ctrl+C stops stimulation cleanly instead of tearing the process down
mid-command; a second Ctrl+C raises :class:`KeyboardInterrupt` as usual (the output guard still runs).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["StopToken", "sigint_stops"]


class StopToken:
    """A thread-safe request to stop a session.

    Examples
    --------
    >>> token = StopToken()
    >>> token.stopped
    False
    >>> token.stop("operator pressed Stop")
    >>> token.stopped, token.reason
    (True, 'operator pressed Stop')
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: str | None = None
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._shield = 0
        self._deferred_interrupt = False

    @property
    def stopped(self) -> bool:
        """Whether a stop was requested."""
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        """Why the stop was requested (first request wins)."""
        return self._reason

    def stop(self, reason: str = "operator stop") -> None:
        """Request a stop; safe to call from any thread or a signal handler, more than once."""
        with self._lock:
            if not self._event.is_set():
                self._reason = reason
                self._event.set()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when the token is stopped (e.g. to wake a sleeping clock)."""
        with self._lock:
            self._listeners.append(listener)
            already = self._event.is_set()
        if already:
            listener()

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Defer a second Ctrl+C while the block runs (switching the output off must not be interrupted).

        A deferred interrupt is raised as :class:`KeyboardInterrupt` when the outermost block ends.
        """
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1
        if self._shield == 0 and self._deferred_interrupt:
            self._deferred_interrupt = False
            raise KeyboardInterrupt

    def _insist(self) -> None:
        # a second Ctrl+C: the operator insists
        if self._shield:
            self._deferred_interrupt = True
            return
        raise KeyboardInterrupt

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until stopped or ``timeout_s`` passes; return :attr:`stopped`."""
        return self._event.wait(timeout_s)


@contextmanager
def sigint_stops(token: StopToken) -> Iterator[StopToken]:
    """Route the first SIGINT (Ctrl+C) to ``token`` while the block runs.

    Outside the main thread signal handlers cannot be installed; the block then runs unchanged (a notebook
    uses its Stop button instead).
    """
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum: int, frame: object) -> None:
        if token.stopped:
            token._insist()
            return
        token.stop("operator stop (Ctrl+C)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)
