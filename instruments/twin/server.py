"""SCPI over loopback TCP for one twin instrument (one port, several clients at once, like an LXI socket).

Each connection is served by its own thread; commands from all clients go through the device one at a time.
Faults for tests and fault campaigns: stop answering, drop connections, garble or truncate the next reply.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

from instruments.twin.scpi import ScpiDevice

__all__ = ["ScpiServer"]


class ScpiServer:
    """Serve a :class:`ScpiDevice` on ``127.0.0.1:port`` (``port=0`` picks a free port)."""

    def __init__(self, device: ScpiDevice, name: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.device = device
        self.name = name
        self.host = host
        self._requested_port = port
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()  # serialises commands from all clients
        self._stopping = threading.Event()
        #: while set, the instrument reads commands but never answers
        self.silent = threading.Event()
        self._garble: Literal["garbage", "truncate"] | None = None
        #: commands received (for diagnostics)
        self.commands_seen = 0

    @property
    def resource(self) -> str:
        """VISA resource string of this instrument."""
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    def start(self) -> None:
        """Listen and accept clients in a background thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,), name=f"twin-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and every client connection."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every open client connection (the instrument keeps listening)."""
        with self._lock:
            clients = list(self._clients)
            self._clients.clear()
        for c in clients:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()

    def garble_next_reply(self, mode: Literal["garbage", "truncate"] = "garbage") -> None:
        """Corrupt the next reply: replace it by garbage, or cut it (a truncated binary block)."""
        if mode not in ("garbage", "truncate"):
            raise ValueError(f"garble mode must be 'garbage' or 'truncate', got {mode!r}")
        self._garble = mode

    def clear_faults(self) -> None:
        """Answer normally again."""
        self.silent.clear()
        self._garble = None

    # ---- internals
    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name=f"twin-{self.name}-client",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        conn.settimeout(0.5)
        try:
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    message = line.decode("ascii", errors="replace").strip()
                    if not message:
                        continue
                    reply = self._handle(message)
                    if reply is not None:
                        conn.sendall(reply)
        except OSError:
            pass
        finally:
            with self._lock:
                self._clients.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _handle(self, message: str) -> bytes | None:
        with self._lock:
            self.commands_seen += 1
            reply = self.device.execute(message)
            if reply is None or self.silent.is_set():
                return None
            garble, self._garble = self._garble, None
        if garble == "garbage":
            return b"\x15?#garbled\xff" + reply[: len(reply) // 3][::-1] + b"\n"
        if garble == "truncate":
            return reply[: max(1, len(reply) // 2)]
        return reply + b"\n"
