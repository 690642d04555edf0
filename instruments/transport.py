"""Opening VISA resources: pyvisa-py (``@py``) through PyMeasure's adapter, errors named by resource.

Socket resources are opened with Nagle's algorithm off. A driver sends small commands back to back; with
Nagle on, a segment sent while the previous one is unacknowledged waits for the instrument's delayed
acknowledgement (≈ 40 ms on Linux), so one exchange costs tens of milliseconds instead of a fraction of one.
pyvisa-py declares ``VI_ATTR_TCPIP_NODELAY`` but refuses to set it, so the option is set on its socket.

They also read in pieces of up to 64 KiB (:data:`RECEIVE_BYTES`) instead of pyvisa-py's 4 KiB socket reads
and PyVISA's 20 KiB chunks: a scope's data block (a 60 000-point record is 60 kB) then arrives in one read
instead of fifteen, each with its own ``select``. Replies are the same bytes.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from instruments.errors import ConnectionFailed

__all__ = ["RECEIVE_BYTES", "listening", "no_delay", "open_adapter", "receive_in_large_reads", "socket_address"]

_rm_lock = threading.Lock()
#: largest read from a socket resource: a deep scope record's block in one piece, still an allocation far below
#: what would cost the process fresh memory pages per read (a 1 MiB read buffer for every short reply does)
RECEIVE_BYTES = 64 * 1024


def open_adapter(resource: str, *, timeout_s: float = 2.0, visa_library: str = "@py"):
    """Open a message-based VISA resource with ``\\n`` terminations and return a PyMeasure ``VISAAdapter``.

    Parameters
    ----------
    resource : str
        VISA resource string, e.g. ``TCPIP0::127.0.0.1::5025::SOCKET``.
    timeout_s : float
        I/O timeout in seconds.
    visa_library : str
        PyVISA backend (``'@py'``: pyvisa-py, no vendor library needed).

    Raises
    ------
    ConnectionFailed
        If the resource cannot be opened (closed port, unknown host, bad resource string).
    """
    import pyvisa
    from pymeasure.adapters import VISAAdapter

    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    try:
        with _rm_lock:
            adapter = VISAAdapter(resource, visa_library=visa_library, read_termination="\n",
                                  write_termination="\n", timeout=int(timeout_s * 1000))
    except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
        raise ConnectionFailed(
            f"cannot open {resource}: {exc}. Check that the instrument is on, on the network, and that the "
            f"resource string (TCPIP0::<host>::<port>::SOCKET) is right", resource=resource
        ) from None
    no_delay(adapter)
    receive_in_large_reads(adapter)
    return adapter


def no_delay(adapter: Any) -> bool:
    """Disable Nagle's algorithm on a PyMeasure VISA adapter's pyvisa-py TCP socket.

    Parameters
    ----------
    adapter : pymeasure.adapters.VISAAdapter
        An open adapter.

    Returns
    -------
    bool
        Whether the option was applied; anything but a pyvisa-py TCP socket (a serial port, a vendor VISA
        library) is left alone.
    """
    resource = getattr(adapter, "connection", None)
    try:
        sock = resource.visalib.sessions[resource.session].interface
        if not isinstance(sock, socket.socket):
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    except (AttributeError, KeyError, OSError, TypeError):
        return False


def receive_in_large_reads(adapter: Any, size: int = RECEIVE_BYTES) -> bool:
    """Read up to ``size`` bytes at a time from a PyMeasure VISA adapter's pyvisa-py TCP socket.

    PyVISA reads a block in chunks of its resource's ``chunk_size`` (20 KiB), and pyvisa-py's socket session
    receives at most ``max_recv_size`` (4 KiB) per ``recv``; both are raised to ``size``.

    Returns
    -------
    bool
        Whether it applied; anything but a pyvisa-py TCP socket session is left alone.
    """
    resource = getattr(adapter, "connection", None)
    try:
        session = resource.visalib.sessions[resource.session]
        if not isinstance(session.interface, socket.socket) or not isinstance(session.max_recv_size, int):
            return False
        session.max_recv_size = max(session.max_recv_size, int(size))
        resource.chunk_size = max(resource.chunk_size, int(size))
        return True
    except (AttributeError, KeyError, TypeError):
        return False


def socket_address(resource: str) -> tuple[str, int] | None:
    """``(host, port)`` of a raw-socket resource (``TCPIP0::<host>::<port>::SOCKET``), else None."""
    parts = resource.split("::")
    if len(parts) < 4 or not parts[0].upper().startswith("TCPIP") or parts[-1].upper() != "SOCKET":
        return None
    try:
        return parts[1], int(parts[2])
    except ValueError:
        return None


def listening(resource: str, timeout_s: float = 0.2) -> bool:
    """Whether something accepts a TCP connection at a raw-socket resource's address.

    Resources that are not raw sockets (VXI-11 ``INSTR``, USB, GPIB) answer True: their driver reports what
    it finds when it opens them.
    """
    address = socket_address(resource)
    if address is None:
        return True
    try:
        with socket.create_connection(address, timeout=timeout_s):
            return True
    except OSError:
        return False
