"""The safety layer every driver stands on: a PyMeasure ``Instrument`` with a lock, error mapping,
``*OPC?`` synchronisation, an error-queue drain and binary block reads.

PyMeasure instruments are not thread-safe (pymeasure#506): here every ``write``/``read``/``ask`` holds one
re-entrant lock per instrument, so a query's write and read can never interleave with another thread's.
Low-level PyVISA and socket errors become :class:`~instruments.errors.ConnectionFailed` naming the resource.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from typing import Any

from pymeasure.instruments import Instrument

from instruments.errors import (
    BlockFormatError,
    ConnectionFailed,
    GarbledReply,
    InstrumentReportedError,
    OutOfRange,
    ReadbackMismatch,
)

__all__ = ["ScpiSession", "check_range"]

_MAX_ERRORS = 64


def check_range(resource: str, name: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    """Return ``value`` as float, or raise :class:`OutOfRange` naming the resource, parameter and range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OutOfRange(f"{name}={value!r} for {resource} is not a number", resource=resource) from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise OutOfRange(
            f"{name}={v:g}{unit} is outside what {resource} accepts: [{lo:g}, {hi:g}]{unit}; nothing was sent",
            resource=resource,
        )
    return v


class ScpiSession(Instrument):
    """A thread-safe SCPI instrument on any PyMeasure adapter (VISA, or a replaying adapter in tests).

    Parameters
    ----------
    adapter : pymeasure Adapter
        The connection.
    name : str
        Human name used in messages (``'stimulator'``).
    resource : str
        Resource string used in messages.
    """

    #: attributes are read and set as on any object: PyMeasure's ``CommonBase`` checks every access against the
    #: reserved names of its dynamic properties, which costs more than the rest of an exchange's Python on the
    #: delivery hot path; the safety layer's drivers declare no dynamic property (refused in ``__init__``)
    __getattribute__ = object.__getattribute__
    __setattr__ = object.__setattr__

    def __init__(self, adapter: Any, name: str, resource: str = "") -> None:
        super().__init__(adapter, name, includeSCPI=False)
        if self._special_names:
            raise TypeError(
                f"{type(self).__name__} declares dynamic properties ({', '.join(sorted(self._special_names))}); "
                "a driver of the safety layer may not (its attributes are read without PyMeasure's reserved-name "
                "check)"
            )
        self.resource = resource or getattr(adapter, "resource_name", "") or repr(adapter)
        self.lock = threading.RLock()
        self._closed = False
        # set between a query's write and its read: a signal handler that interrupts a query (same thread, so
        # the re-entrant lock lets it in) must first consume that reply or it would read it as its own
        self._reply_pending = False

    # ---- guarded I/O
    def _guard(self, fn: Callable[[], Any], what: str) -> Any:
        import pyvisa

        if self._closed:
            raise ConnectionFailed(f"{self.name} at {self.resource} is closed", resource=self.resource)
        try:
            return fn()
        except pyvisa.errors.VisaIOError as exc:
            timeout = exc.error_code == pyvisa.constants.StatusCode.error_timeout
            reason = "did not answer in time" if timeout else f"failed ({exc.description})"
            raise ConnectionFailed(f"{self.name} at {self.resource} {reason} during {what}",
                                   resource=self.resource) from None
        except ConnectionRefusedError:
            raise ConnectionFailed(
                f"{self.name}: nothing is listening at {self.resource} (connection refused during {what}); "
                "check that the instrument is switched on, on the network, and that the bench file gives its "
                "address and port", resource=self.resource, refused=True) from None
        except (OSError, EOFError) as exc:
            raise ConnectionFailed(f"{self.name} at {self.resource}: connection lost during {what} ({exc})",
                                   resource=self.resource) from None
        except UnicodeDecodeError:
            raise GarbledReply(f"{self.name} at {self.resource} sent a reply that is not text during {what}",
                               resource=self.resource) from None

    def write(self, command: str, **kwargs: Any) -> None:
        """Send a command (holding the instrument lock)."""
        with self.lock:
            self._guard(lambda: self.adapter.write(command, **kwargs), repr(command))

    def read(self, **kwargs: Any) -> str:
        """Read one reply (holding the instrument lock)."""
        with self.lock:
            return self._guard(lambda: self.adapter.read(**kwargs), "a read")

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Write a query and read its reply as one atomic exchange."""
        adapter = self.adapter
        with self.lock:
            what = repr(command)
            self._guard(lambda: adapter.write(command), what)
            self._reply_pending = True
            reply = self._guard(adapter.read, what).strip()
            self._reply_pending = False
            return reply

    def resync(self) -> None:
        """Consume the reply of a query that was interrupted between its write and its read (if any)."""
        with self.lock:
            if self._reply_pending:
                self._reply_pending = False
                with contextlib.suppress(Exception):
                    self.adapter.read()

    def ask_float(self, command: str) -> float:
        """Query a number; a reply that is not a number raises :class:`GarbledReply`."""
        reply = self.ask(command)
        try:
            return float(reply)
        except ValueError:
            raise GarbledReply(f"{self.name} at {self.resource} answered {command!r} with {reply[:60]!r}, "
                               "expected a number", resource=self.resource) from None

    def ask_bool(self, command: str) -> bool:
        """Query a state (``1``/``0``/``ON``/``OFF``)."""
        reply = self.ask(command).upper()
        if reply in ("1", "ON", "+1"):
            return True
        if reply in ("0", "OFF", "+0"):
            return False
        raise GarbledReply(f"{self.name} at {self.resource} answered {command!r} with {reply[:60]!r}, "
                           "expected 1/0", resource=self.resource)

    # ---- standard sequences
    def identify(self) -> str:
        """``*IDN?``."""
        return self.ask("*IDN?")

    #: whether the instrument answers ``*TST?`` (its programming guide documents a self-test query)
    has_self_test = True

    def self_test(self) -> int:
        """``*TST?``; 0 means pass."""
        return int(self.ask_float("*TST?"))

    def opc(self) -> None:
        """Block until pending operations complete (``*OPC?``)."""
        reply = self.ask("*OPC?")
        if reply.lstrip("+") != "1":
            raise GarbledReply(f"{self.name} at {self.resource} answered *OPC? with {reply[:60]!r}",
                               resource=self.resource)

    def opc_after(self, command: str) -> None:
        """Send ``command`` and ``*OPC?`` in one program message and wait for the ``1``.

        One round trip instead of two: the instrument executes the joined commands in order, so the reply
        comes only after ``command`` has been executed, exactly as with a separate ``*OPC?``.
        """
        reply = self.ask(f"{command};*OPC?")
        if reply.lstrip("+") != "1":
            raise GarbledReply(f"{self.name} at {self.resource} answered {command!r};*OPC? with {reply[:60]!r}",
                               resource=self.resource)

    @staticmethod
    def error_code(entry: str) -> int | None:
        """The number of a ``SYST:ERR?`` entry (``-211,"Trigger ignored"`` → -211), or None if unreadable."""
        try:
            return int(entry.split(",", 1)[0].strip().lstrip("+"))
        except ValueError:
            return None

    def errors(self) -> list[str]:
        """Drain ``SYST:ERR?`` until ``0,"No error"`` and return the entries."""
        out: list[str] = []
        with self.lock:
            for _ in range(_MAX_ERRORS):
                entry = self.ask("SYST:ERR?")
                code = entry.split(",", 1)[0].strip().lstrip("+")
                try:
                    if int(code) == 0:
                        return out
                except ValueError:
                    raise GarbledReply(f"{self.name} at {self.resource} answered SYST:ERR? with "
                                       f"{entry[:60]!r}", resource=self.resource) from None
                out.append(entry)
        out.append(f"(error queue still not empty after {_MAX_ERRORS} reads)")
        return out

    def raise_errors(self, during: str) -> None:
        """Drain the error queue and raise :class:`InstrumentReportedError` if it held anything."""
        errs = self.errors()
        if errs:
            raise InstrumentReportedError(
                f"{self.name} at {self.resource} reported {len(errs)} error(s) during {during}",
                resource=self.resource, errors=errs)

    def compare(self, name: str, sent: float | str, got: float | str, rel: float = 1e-6, abs_: float = 1e-12
                ) -> None:
        """Raise :class:`ReadbackMismatch` unless a read-back setting equals what was sent."""
        if isinstance(sent, str) or isinstance(got, str):
            ok = str(sent).upper() == str(got).upper()
        else:
            ok = math.isclose(float(sent), float(got), rel_tol=rel, abs_tol=abs_)
        if not ok:
            raise ReadbackMismatch(f"{self.name} at {self.resource}: {name} read back as {got!r}, sent {sent!r}",
                                   resource=self.resource)

    def read_block(self, command: str) -> bytes:
        """Send a query answered by an IEEE-488.2 definite-length block and return its payload."""
        with self.lock:
            self.write(command)
            head = self._guard(lambda: self.adapter.read_bytes(2), repr(command))
            if len(head) != 2 or head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
                raise BlockFormatError(f"{self.name} at {self.resource} answered {command!r} with {head!r}, "
                                       "not a definite-length block '#<n><len>'", resource=self.resource)
            payload = self.read_block_body(command, int(head[1:2]))
            self.expect_block_end(command, (b"\n", b""))
            return payload

    def read_block_body(self, command: str, digits: int) -> bytes:
        """The rest of a definite-length block once ``#<digits>`` was read: its length field and payload."""
        length_field = self._guard(lambda: self.adapter.read_bytes(digits), repr(command))
        if not length_field.isdigit():
            raise BlockFormatError(f"{self.name} at {self.resource}: malformed block length {length_field!r}",
                                   resource=self.resource)
        n = int(length_field)
        try:
            payload = self._guard(lambda: self.adapter.read_bytes(n), repr(command)) if n else b""
        except ConnectionFailed:
            raise BlockFormatError(f"{self.name} at {self.resource}: truncated block, {n} bytes announced but the "
                                   "transfer stopped", resource=self.resource) from None
        if len(payload) != n:
            raise BlockFormatError(f"{self.name} at {self.resource}: truncated block, {len(payload)} of {n} bytes",
                                   resource=self.resource)
        return bytes(payload)

    def expect_block_end(self, command: str, accepted: tuple[bytes, ...]) -> None:
        """Read what follows a block (as long as the first accepted ending) and refuse anything else."""
        tail = self._guard(lambda: self.adapter.read_bytes(len(accepted[0])), repr(command))
        if tail not in accepted:
            ending = " or ".join(repr(a) for a in accepted if a)
            raise BlockFormatError(f"{self.name} at {self.resource}: block not followed by {ending} ({tail!r})",
                                   resource=self.resource)

    def abandon(self) -> None:
        """Close the connection without sending anything (the instrument is not the one expected)."""
        self.close_connection()

    def close_connection(self) -> None:
        """Close the adapter (idempotent)."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            try:
                self.adapter.close()
            except Exception:  # closing a dead socket must not mask the reason we are closing
                pass
