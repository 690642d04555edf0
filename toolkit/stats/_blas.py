"""Run the REML fit with single-threaded OpenBLAS.

A REML fit makes thousands of products of matrices a few rows wide. OpenBLAS wakes its thread pool for
them, and on a shared machine the waiting threads cost more than the arithmetic (measured here: 6x the CPU
time and up to 8x the wall time for a 2,000-subject MMRM on two busy cores). The context manager below sets
the thread count of every OpenBLAS loaded in the process (numpy's and scipy's) to one and restores it
afterwards; where no OpenBLAS can be found (another BLAS, another OS) it does nothing. The setting is
process-wide: other threads of the same process run single-threaded BLAS while a fit is in progress.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
from collections.abc import Iterator

_NAMES = (
    ("openblas_get_num_threads", "openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
)
_lock = threading.Lock()
_handles: list[tuple[object, object]] | None = None


def _openblas_handles() -> list[tuple[object, object]]:
    global _handles
    if _handles is not None:
        return _handles
    found: list[tuple[object, object]] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())))
    except OSError:
        paths = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _NAMES:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                found.append((getattr(lib, get_name), getattr(lib, set_name)))
                break
    _handles = found
    return found


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Context in which OpenBLAS uses one thread (nested uses are harmless)."""
    with _lock:
        handles = _openblas_handles()
        previous = [int(get()) for get, _ in handles]
        for _, setter in handles:
            setter(1)
    try:
        yield
    finally:
        with _lock:
            for (_, setter), n in zip(handles, previous, strict=True):
                setter(n)


def limit_blas_threads(n: int = 1) -> None:
    """Set every loaded OpenBLAS to ``n`` threads for the rest of the process (worker processes)."""
    with _lock:
        for _, setter in _openblas_handles():
            setter(int(n))
