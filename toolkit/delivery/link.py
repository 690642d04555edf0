"""Socket tuning of an already-open instrument connection, so a burst trigger is not held back by TCP.

Connections opened through :func:`instruments.transport.open_adapter` already have Nagle's algorithm off;
this applies the same option to a driver built on some other adapter that still uses a pyvisa-py socket.
"""

from __future__ import annotations

from typing import Any

__all__ = ["tcp_no_delay"]


def tcp_no_delay(instrument: Any) -> bool:
    """Disable Nagle's algorithm on a driver's pyvisa-py socket; return whether it was applied.

    Parameters
    ----------
    instrument : driver
        A driver whose ``adapter`` is a PyMeasure ``VISAAdapter``. Anything else (a serial port, a vendor
        VISA library) is left alone and ``False`` returned.
    """
    from instruments.transport import no_delay

    return no_delay(getattr(instrument, "adapter", None))
