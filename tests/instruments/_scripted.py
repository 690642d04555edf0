"""A scripted instrument on a loopback TCP port: it answers a fixed transcript, line by line, so a driver can be
run through the real pyvisa-py socket stack (``TCPIP0::127.0.0.1::<port>::SOCKET``) against an instrument we
have no twin of. Any other command ends the conversation and is reported by :meth:`ScriptedInstrument.check`.
"""

from __future__ import annotations

import socket
import threading

__all__ = ["ScriptedInstrument"]

Pair = tuple[str, "str | bytes | None"]


class ScriptedInstrument:
    """Serve ``pairs`` (command, reply) to one client: ``None`` no reply, text a line, bytes sent as they are."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = list(pairs)
        self.received: list[str] = []
        self.problem: str | None = None
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="scripted-instrument", daemon=True)
        self._thread.start()

    @property
    def resource(self) -> str:
        """The VISA resource string of this instrument."""
        return f"TCPIP0::127.0.0.1::{self.port}::SOCKET"

    def _serve(self) -> None:
        self._server.settimeout(10.0)
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10.0)
            buffer = b""
            for expected, reply in self.pairs:
                while b"\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        self.problem = f"connection closed while {expected!r} was expected"
                        return
                    buffer += chunk
                line, _, buffer = buffer.partition(b"\n")
                command = line.decode("ascii", errors="replace").strip()
                self.received.append(command)
                if command != expected:
                    self.problem = f"step {len(self.received) - 1}: expected {expected!r}, got {command!r}"
                    return
                if reply is not None:
                    conn.sendall(reply if isinstance(reply, bytes) else reply.encode("ascii") + b"\n")
            # anything after the transcript is a command the test did not expect
            conn.settimeout(0.2)
            try:
                extra = conn.recv(65536)
            except OSError:
                extra = b""
            if extra:
                self.problem = f"unexpected command(s) after the transcript: {extra[:80]!r}"

    def check(self) -> None:
        """Raise AssertionError unless the whole transcript was followed, and nothing else sent."""
        self._thread.join(timeout=5.0)
        self._server.close()
        assert self.problem is None, self.problem
        assert len(self.received) == len(self.pairs), f"only {len(self.received)} of {len(self.pairs)} steps"
