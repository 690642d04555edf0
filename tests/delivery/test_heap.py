"""Memory freed after a capture stays in the process for the next one (glibc): no fresh pages to fault in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: what a capture's measures do to memory: several record-sized arrays alive at once, then freed; prints the page
#: faults of 50 such captures after 5 first ones
_CAPTURES = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from toolkit.delivery.heap import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()
def capture():
    arrays = [np.full(60_000, float(k)) for k in range(8)]
    return sum(float(a[-1]) for a in arrays)
for _ in range(5):
    capture()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    capture()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CAPTURES, mode], capture_output=True, text=True, timeout=60,
                          check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not _glibc(), reason="the heap settings are glibc's")
def test_captures_reuse_freed_memory_instead_of_faulting_in_new_pages() -> None:
    # glibc's defaults give the 3.8 MB back after each capture and fault them in again at the next (~900 pages)
    assert _page_faults("default") > 50 * 500
    assert _page_faults("keep") < 50


def test_on_another_c_library_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.delivery import heap

    monkeypatch.setattr(heap, "_kept", None)
    monkeypatch.setattr(heap.os, "confstr", lambda name: "musl")
    assert heap.keep_freed_memory() is False
    # decided once per process
    monkeypatch.setattr(heap.os, "confstr", lambda name: "glibc 2.36")
    assert heap.keep_freed_memory() is False
