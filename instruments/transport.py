"""Opening VISA resources: pyvisa-py (``@py``) through PyMeasure's adapter, errors named by resource."""

from __future__ import annotations

import threading

from instruments.errors import ConnectionFailed

__all__ = ["open_adapter"]

_rm_lock = threading.Lock()


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
            return VISAAdapter(resource, visa_library=visa_library, read_termination="\n",
                               write_termination="\n", timeout=int(timeout_s * 1000))
    except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
        raise ConnectionFailed(
            f"cannot open {resource}: {exc}. Check that the instrument is on, on the network, and that the "
            f"resource string (TCPIP0::<host>::<port>::SOCKET) is right", resource=resource
        ) from None
