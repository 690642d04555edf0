"""Last-resort safety: every open stimulator is switched off at interpreter exit and on SIGINT/SIGTERM.

Drivers register themselves on creation (weakly, so a closed and forgotten driver does not linger). On exit
or on a terminating signal, each live stimulator's ``safe_shutdown()`` runs; then the previous signal
handler runs (so Ctrl+C still raises ``KeyboardInterrupt`` and SIGTERM still ends the process).
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
import weakref
from typing import Any, Protocol

__all__ = ["register_stimulator", "shutdown_all", "unregister_stimulator"]


class _Shutdownable(Protocol):
    def safe_shutdown(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False
_previous: dict[int, Any] = {}


def register_stimulator(inst: _Shutdownable) -> None:
    """Make sure ``inst.safe_shutdown()`` runs at exit and on SIGINT/SIGTERM."""
    global _installed
    with _lock:
        _live.add(inst)
        if _installed:
            return
        _installed = True
    atexit.register(shutdown_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                _previous[sig] = signal.signal(sig, _on_signal)


def unregister_stimulator(inst: _Shutdownable) -> None:
    """Forget a stimulator (after it was closed)."""
    with _lock:
        _live.discard(inst)


def shutdown_all() -> list[str]:
    """Switch off every registered stimulator; return the problems met (never raises)."""
    problems: list[str] = []
    with _lock:
        live = list(_live)
    for inst in live:
        try:
            inst.safe_shutdown()
        except Exception as exc:  # a failure on one instrument must not stop the others
            problems.append(f"{getattr(inst, 'resource', inst)}: {exc}")
    return problems


def _on_signal(signum: int, frame: Any) -> None:
    shutdown_all()
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        raise SystemExit(128 + signum)
