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

__all__ = ["append_line", "append_line_at", "complete_part", "read_lines"]


def complete_part(path: Path, offset: int = 0) -> tuple[str, int]:
    """The text from byte ``offset`` up to the last newline, and the offset after it (a line being appended
    right now is left for the next read)."""
    if not path.is_file():
        return "", offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8"), offset + end


def read_lines(
    path: Path, what: str, *, text: str | None = None, first_line: int = 1
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(line number, parsed object, text) of each non-empty line; a line that is not JSON is a DataError.

    ``text`` is a part of the file already read (see :func:`complete_part`), its lines numbered from
    ``first_line``; by default the whole file is read.
    """
    if text is None:
        if not path.is_file():
            return
        text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=first_line):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path} line {number} is not {what} ({exc}); the file was damaged") from None
        yield number, doc, line


def _last_line(fh: Any, chunk: int = 8192) -> str:
    """The last non-empty line of an open text file, read from its end (the file may be long)."""
    raw = fh.buffer
    end = raw.seek(0, os.SEEK_END)
    start, tail = end, b""
    while start > 0:
        start = max(0, start - chunk)
        raw.seek(start)
        tail = raw.read(end - start)
        if tail.rstrip(b"\n").count(b"\n") >= 1:
            break
    lines = [x for x in tail.decode("utf-8").splitlines() if x.strip()]
    return lines[-1] if lines else ""


def append_line(path: Path, make: Callable[[str], str], *, sync: bool = True) -> str:
    """Append the line ``make(last line text)`` under an exclusive lock (fsync'd with ``sync``); return it."""
    return append_line_at(path, make, sync=sync)[0]


def append_line_at(path: Path, make: Callable[[str], str], *, sync: bool = True) -> tuple[str, int]:
    """As :func:`append_line`; also return the byte offset the line starts at (the file's size before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            line = make(_last_line(fh))
            start = fh.seek(0, os.SEEK_END)
            fh.write(line + "\n")
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return line, start
