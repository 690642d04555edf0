"""The process heap during sessions: memory freed after one capture is kept for the next.

Every live capture allocates and frees arrays the size of a scope record (0.5 MB for the 60 000 points of a
pulse view, up to 8 MB for a deep record): the scaled samples and their times, the masks, products and sums of
the measures, the stored file. With glibc's defaults such a block goes back to the system when it is freed
(a block from 128 kB up is mapped on its own until the threshold adapts, and the top of the heap is given back
once twice that is free), so the next capture maps fresh pages and touches each of them: one page fault every
4 kB, about 3 µs each in a virtual machine. A 20-minute EP session of the demo took 2 500-7 700 of them (up to
a tenth of its time on the twin); with freed blocks of up to 32 MB kept in the heap and up to 64 MB of free
heap kept mapped, a few to a few hundred.

Nothing else changes: the same arrays hold the same values; the process keeps up to 64 MB of freed memory for
its next use instead of giving it back. Elsewhere than on glibc (macOS, Windows, musl) nothing is done.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["keep_freed_memory"]

#: mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks below this are taken from the heap (glibc's largest accepted value on 64-bit systems)
MMAP_THRESHOLD_BYTES = 32 << 20
#: free memory at the top of the heap is given back to the system only beyond this
TRIM_THRESHOLD_BYTES = 64 << 20

_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed record-sized blocks in the process heap for later allocations (see the module docstring).

    Called at the start of every session; the first call sets it for the process, later ones return at once.

    Returns
    -------
    bool
        Whether glibc accepted both settings (False on other C libraries, where nothing is changed).
    """
    global _kept
    if _kept is None:
        _kept = _set_thresholds()
    return _kept


def _set_thresholds() -> bool:
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):  # no confstr, or no such name on this system
        libc = ""
    if not libc.startswith("glibc"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # the mmap threshold first: setting either one ends glibc's own adjustment of both
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                 TRIM_THRESHOLD_BYTES))
