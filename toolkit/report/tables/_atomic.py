"""Write a file under a temporary name and rename it, so a failure leaves no half-written table."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from toolkit.errors import DataError


def write_atomically(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path``; clean up on error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create folder {path.parent}: {exc.strerror}") from None
    tmp = path.with_name(f".{path.name}.part")
    try:
        writer(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
