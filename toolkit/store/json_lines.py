"""Append-only JSON-lines files beside the database (audit anchors, the allocation ledger).

Lines are read with their numbers so that a damaged line is named; appends hold an exclusive ``flock`` and
are flushed to disk (``fsync``) before returning, so concurrent writers never interleave half lines.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from toolkit.errors import DataError

__all__ = ["append_line", "read_lines"]


def read_lines(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(line number, parsed object, text) of each non-empty line; a line that is not JSON is a DataError."""
    if not path.is_file():
        return
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path} line {number} is not {what} ({exc}); the file was damaged") from None
        yield number, doc, text


def append_line(path: Path, make: Callable[[str], str]) -> str:
    """Append the line ``make(last line text)`` under an exclusive lock, fsync it, and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.seek(0)
            last = ""
            for text in fh:
                if text.strip():
                    last = text.rstrip("\n")
            line = make(last)
            fh.seek(0, os.SEEK_END)
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return line
