"""SCPI over loopback TCP for one twin instrument (one port, several clients at once, like an LXI socket).

Each connection is served by its own thread; commands from all clients go through the device one at a time.
Faults for tests and fault campaigns: stop answering, drop connections, garble or truncate the next reply, and
hold replies back for a while (a slow instrument, a congested network) while the command itself has already run.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from typing import Literal

from instruments.twin.scpi import ScpiDevice

__all__ = ["ReplyDelay", "ScpiServer"]


@dataclass
class ReplyDelay:
    """Hold back replies: ``delay_s`` real seconds for each reply to a message containing ``match``.

    The command has run when its reply is held (as when the reply is slow on the wire), so an instrument's
    clock moves on meanwhile. ``skip`` matching replies pass first; then ``count`` are held (``None``: all).
    """

    delay_s: float
    match: str | None = None
    count: int | None = None
    skip: int = 0
    #: replies held so far
    held: int = 0

    def applies(self, message: str) -> bool:
        """Whether the reply to ``message`` is held (and count it)."""
        if self.match is not None and self.match.upper() not in message.upper():
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.count is not None and self.held >= self.count:
            return False
        self.held += 1
        return True


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
        device.wait_for_operations = self._wait_for_operations
        self._stopping = threading.Event()
        #: while set, the instrument reads commands but never answers
        self.silent = threading.Event()
        self._garble: tuple[str, str | None] | None = None
        #: commands received (for diagnostics)
        self.commands_seen = 0
        #: replies held back (see :meth:`delay_replies`)
        self.reply_delay: ReplyDelay | None = None

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

    def garble_next_reply(self, mode: Literal["garbage", "truncate", "short_block"] = "garbage", *,
                          match: str | None = None) -> None:
        """Corrupt the next reply (to a message containing ``match``, case-insensitive, when given).

        ``'garbage'`` replaces it; ``'truncate'`` cuts it (a binary block that stops before its announced
        length); ``'short_block'`` sends a well-formed definite-length block holding half the samples (a
        header that disagrees with the preamble's point count).
        """
        if mode not in ("garbage", "truncate", "short_block"):
            raise ValueError(f"garble mode must be 'garbage', 'truncate' or 'short_block', got {mode!r}")
        self._garble = (mode, None if match is None else match.upper())

    def delay_replies(self, delay_s: float, *, match: str | None = None, count: int | None = None,
                      skip: int = 0) -> ReplyDelay:
        """Hold replies back by ``delay_s`` real seconds after their command has run.

        Parameters
        ----------
        delay_s : float
            Real seconds each held reply waits (keep it inside the client's I/O timeout for a slow but alive
            instrument, above it for a stall).
        match : str, optional
            Only replies to messages containing this text (case-insensitive), e.g. ``'*OPC?'``.
        count : int, optional
            Hold this many replies, then answer normally (default: every matching reply).
        skip : int
            Matching replies that pass before the first one is held.

        Returns
        -------
        ReplyDelay
            The rule; its ``held`` counts the replies held so far.
        """
        if not delay_s >= 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
        self.reply_delay = ReplyDelay(float(delay_s), match, count, int(skip))
        return self.reply_delay

    def clear_faults(self) -> None:
        """Answer normally again."""
        self.silent.clear()
        self._garble = None
        self.reply_delay = None

    # ---- internals
    def _wait_for_operations(self) -> None:
        """Block ``*OPC?``/``*WAI`` until the device's overlapped operations end (in its simulated time).

        Called with the command lock held; it is released while waiting so other clients (another session's
        stop, a scope read) are served meanwhile, as on an instrument whose burst runs in hardware.
        """
        clock = getattr(self.device, "clock", None)
        if clock is None or self.device.operations_complete_at() is None:
            return
        self._lock.release()
        try:
            while not self._stopping.is_set():
                until = self.device.operations_complete_at()
                left = None if until is None else until - clock.now()
                if left is None or left <= 0:
                    return
                self._stopping.wait(min(left / clock.speed, 0.05))
        finally:
            self._lock.acquire()

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
            garble = None
            if self._garble is not None and (self._garble[1] is None or self._garble[1] in message.upper()):
                garble, self._garble = self._garble[0], None
            rule = self.reply_delay
            hold_s = rule.delay_s if rule is not None and rule.applies(message) else 0.0
        if hold_s > 0:
            # outside the lock: the instrument keeps serving other clients while this reply is on its way
            self._stopping.wait(hold_s)
        if garble == "garbage":
            return b"\x15?#garbled\xff" + reply[: len(reply) // 3][::-1] + b"\n"
        if garble == "truncate":
            return reply[: max(1, len(reply) // 2)]
        if garble == "short_block" and reply[:1] == b"#" and reply[1:2].isdigit():
            digits = int(reply[1:2])
            payload = reply[2 + digits:]
            half = payload[: len(payload) // 2]
            return b"#%d%s" % (digits, str(len(half)).zfill(digits).encode("ascii")) + half + b"\n"
        return reply + b"\n"
