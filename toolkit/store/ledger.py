"""The allocation list's consumption ledger: every randomisation number handed out, kept beside the list.

``data/<study-id>/allocation-ledger.jsonl`` gets one line per allocation *before* the allocation commits in
the database, so a number is never handed out twice, even when the database is lost or replaced by an older
copy: allocation skips every number the ledger names, and :func:`toolkit.store.audit.verify_audit` checks
the ledger and the database's allocations against each other. (A line without a database allocation is a
number given up by a write that did not commit: it stays used, never reissued.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from toolkit.errors import DataError
from toolkit.store.json_lines import append_line, read_lines

__all__ = ["LEDGER_FILE", "LedgerLine", "append_ledger", "read_ledger"]

#: file name of the ledger inside a study's data folder
LEDGER_FILE = "allocation-ledger.jsonl"


@dataclass(frozen=True)
class LedgerLine:
    """One randomisation number handed out."""

    line: int
    rand_no: int
    subject_id: str
    at: str
    user: str
    #: the subject's database key (a later correction of the subject id does not break the link)
    subject_pk: int | None = None


def read_ledger(path: Path) -> list[LedgerLine]:
    """The ledger's lines (``[]`` when it does not exist); a damaged line is a :class:`DataError`."""
    out = []
    for number, doc, _ in read_lines(path, "a ledger line"):
        try:
            pk = doc.get("subject_pk")
            out.append(LedgerLine(number, int(doc["rand_no"]), str(doc["subject"]), str(doc["at"]), str(doc["user"]),
                                  None if pk is None else int(pk)))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path} line {number} is not a ledger line ({exc}); the file was damaged") from None
    return out


def append_ledger(path: Path, *, rand_no: int, subject_id: str, subject_pk: int, user: str) -> None:
    """Record that ``rand_no`` goes to ``subject_id`` (flushed to disk before the caller commits)."""
    doc = {"rand_no": int(rand_no), "subject": subject_id, "subject_pk": int(subject_pk),
           "at": datetime.now(UTC).isoformat(), "user": user}
    append_line(path, lambda _last: json.dumps(doc, sort_keys=True))
