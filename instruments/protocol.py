"""Recording and replaying adapters: pin the exact SCPI exchanges of a driver without hardware.

A protocol test lists the command/reply pairs an operation must produce and runs the driver on a
:class:`ReplayAdapter`; any other command, a missing one, or an unread reply fails the test. A
:class:`RecordingAdapter` wraps a live adapter (e.g. to the twin) and records the pairs it sees, which is how a
new expectation list is drafted before it is checked by hand against the instrument's manual.

Pairs are ``(command, reply)``: ``reply`` is ``None`` for a command without an answer, text for a query, or
bytes for a binary block (sent as is, followed by ``\\n``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymeasure.adapters import Adapter

__all__ = ["ProtocolMismatch", "RecordingAdapter", "ReplayAdapter"]

Pair = tuple[str, "str | bytes | None"]


class ProtocolMismatch(AssertionError):
    """The driver did not send what the protocol expects (a test failure, not a user error)."""


class ReplayAdapter(Adapter):
    """Replay a fixed list of ``(command, reply)`` pairs and check every command sent against it.

    Parameters
    ----------
    pairs : iterable of (str, str | bytes | None)
        The expected exchange, in order.
    resource_name : str
        Name reported in error messages.
    """

    def __init__(self, pairs: Iterable[Pair], resource_name: str = "REPLAY::INSTR") -> None:
        super().__init__()
        self.pairs: list[Pair] = list(pairs)
        self.resource_name = resource_name
        self.index = 0
        self._buffer = b""
        #: every command actually received
        self.sent: list[str] = []

    def _write(self, command: str, **kwargs: Any) -> None:
        self.sent.append(command)
        if self._buffer:
            raise ProtocolMismatch(f"command {command!r} sent while reply {self._buffer[:40]!r} was not read")
        if self.index >= len(self.pairs):
            raise ProtocolMismatch(f"unexpected command {command!r} after the end of the protocol")
        expected, reply = self.pairs[self.index]
        if command != expected:
            raise ProtocolMismatch(f"step {self.index}: expected {expected!r}, got {command!r}")
        self.index += 1
        if reply is not None:
            self._buffer = (reply if isinstance(reply, bytes) else reply.encode("ascii")) + b"\n"

    def _write_bytes(self, content: bytes, **kwargs: Any) -> None:
        self._write(content.decode("ascii", errors="replace"))

    def _read(self, **kwargs: Any) -> str:
        if not self._buffer:
            raise TimeoutError("replay: nothing to read (the protocol has no reply here)")
        line, sep, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        return line.decode("ascii")

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs: Any) -> bytes:
        if count < 0:
            out, self._buffer = self._buffer, b""
            return out
        if len(self._buffer) < count:
            self._buffer = b""
            raise TimeoutError(f"replay: {count} bytes requested, fewer available")
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        return out

    def flush_read_buffer(self) -> None:
        self._buffer = b""

    def close(self) -> None:
        """Nothing to close."""

    def assert_done(self) -> None:
        """Raise :class:`ProtocolMismatch` unless every expected command was sent and every reply read."""
        if self.index != len(self.pairs):
            missing = [c for c, _ in self.pairs[self.index:]]
            raise ProtocolMismatch(f"protocol incomplete, still expected: {missing}")
        if self._buffer:
            raise ProtocolMismatch(f"reply {self._buffer[:40]!r} was never read")


class RecordingAdapter(Adapter):
    """Wrap a live adapter and record ``(command, reply)`` pairs as they happen."""

    def __init__(self, inner: Adapter) -> None:
        super().__init__()
        self.inner = inner
        self.resource_name = getattr(inner, "resource_name", "")
        self.pairs: list[list[Any]] = []

    def _write(self, command: str, **kwargs: Any) -> None:
        self.inner.write(command, **kwargs)
        self.pairs.append([command, None])

    def _append_reply(self, data: str | bytes) -> None:
        if self.pairs and self.pairs[-1][1] is None:
            self.pairs[-1][1] = data
        elif self.pairs:
            self.pairs[-1][1] = self.pairs[-1][1] + data

    def _read(self, **kwargs: Any) -> str:
        text = self.inner.read(**kwargs)
        self._append_reply(text)
        return text

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs: Any) -> bytes:
        data = self.inner.read_bytes(count, break_on_termchar, **kwargs)
        if data != b"\n":
            prev = self.pairs[-1][1] if self.pairs else None
            self._append_reply(data if prev is None or isinstance(prev, bytes) else data.decode("latin-1"))
        return data

    def close(self) -> None:
        """Close the wrapped adapter."""
        self.inner.close()
