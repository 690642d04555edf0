"""The audit trail's head, anchored outside the database: an append-only, signed file in the data folder.

After each committed write the store appends one line to ``data/<study-id>/audit-anchors.jsonl``: the
sequence number and hash of the newest audit entry, when, by whom, the SHA-256 of the previous line, and the
writer's Ed25519 signature over all of it. A database whose trail ends before an anchored entry has lost its
tail; one whose entry at an anchored number has another hash was replaced by an older or different copy.
A restore from backup writes a signed ``restore`` line that names the backup and the entries it gives up, so
nothing is lost silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit.errors import DataError
from toolkit.store.canonical import canonical_json
from toolkit.store.json_lines import append_line_at, read_lines

__all__ = ["ANCHOR_FILE", "Anchor", "anchor_problems", "append_anchor", "effective_head", "read_anchors"]

#: file name of the anchor file inside a study's data folder
ANCHOR_FILE = "audit-anchors.jsonl"
_GENESIS = "0" * 64


@dataclass(frozen=True)
class Anchor:
    """One line of the anchor file."""

    line: int
    #: ``anchor`` (a committed head) or ``restore`` (the database was restored to ``seq``)
    kind: str
    seq: int
    hash: str
    at: str
    user: str
    key: str
    prev: str
    sig: str
    extra: dict[str, Any]
    #: the line's text as written (its SHA-256 links the next line)
    text: str
    #: byte offset of the line in the file, when it was just appended (else -1)
    offset: int = -1

    def signed_content(self) -> bytes:
        """The bytes the signature covers: the line's canonical JSON without ``sig``."""
        doc = json.loads(self.text)
        doc.pop("sig", None)
        return canonical_json(doc).encode("utf-8")


def read_anchors(path: Path, *, text: str | None = None, first_line: int = 1) -> list[Anchor]:
    """The lines of an anchor file (``[]`` when it does not exist); a damaged line is a :class:`DataError`.

    ``text`` and ``first_line`` parse only a part read since an earlier read (see
    :func:`toolkit.store.json_lines.complete_part`).
    """
    out = []
    for number, doc, line in read_lines(path, "an audit anchor", text=text, first_line=first_line):
        try:
            out.append(
                Anchor(
                    line=number, kind=str(doc.get("kind", "anchor")), seq=int(doc["seq"]), hash=str(doc["hash"]),
                    at=str(doc["at"]), user=str(doc["user"]), key=str(doc["key"]), prev=str(doc["prev"]),
                    sig=str(doc["sig"]), extra=dict(doc.get("extra") or {}), text=line,
                )
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path} line {number} is not an audit anchor ({exc}); the file was damaged") from None
    return out


def append_anchor(
    path: Path,
    *,
    study_id: str,
    seq: int,
    head_hash: str,
    user: str,
    key: str,
    sign: Callable[[bytes], str],
    kind: str = "anchor",
    extra: Mapping[str, Any] | None = None,
) -> Anchor:
    """Append one signed line, linked to the line before it, and return it."""
    doc: dict[str, Any] = {}

    def make(last: str) -> str:
        doc.update({
            "kind": kind, "study": study_id, "seq": int(seq), "hash": head_hash,
            "at": datetime.now(UTC).isoformat(timespec="microseconds"), "user": user, "key": key,
            "prev": hashlib.sha256(last.encode("utf-8")).hexdigest() if last else _GENESIS,
        })  # fmt: skip
        if extra:
            doc["extra"] = dict(extra)
        doc["sig"] = sign(canonical_json(doc).encode("utf-8"))
        return canonical_json(doc)

    # not fsync'd: a line lost to a power cut only leaves the database ahead of its anchor, which is allowed
    text, offset = append_line_at(path, make, sync=kind == "restore")
    return Anchor(
        0, kind, int(seq), head_hash, doc["at"], user, key, doc["prev"], doc["sig"], dict(extra or {}), text, offset
    )


def effective_head(anchors: list[Anchor], start: Anchor | None = None) -> Anchor | None:
    """The newest anchored head the database must still contain (the last restore resets it).

    ``start`` is the effective head of the lines before ``anchors`` (when reading on from an earlier read).
    """
    best: Anchor | None = start
    for a in anchors:
        if a.kind == "restore" or best is None or a.seq >= best.seq:
            best = a
    return best


def anchor_problems(
    path: Path,
    anchors: list[Anchor],
    chain: Mapping[int, str],
    head_seq: int,
    public_keys: Mapping[str, str],
    *,
    linked: bool = True,
) -> list[str]:
    """Check the anchor file against the database's chain.

    Parameters
    ----------
    path : Path
        The anchor file (named in messages).
    anchors : list of Anchor
    chain : mapping
        Sequence number -> hash of the database's audit entries (at least those the anchors name).
    head_seq : int
        The newest sequence number in the database.
    public_keys : mapping
        User name -> Ed25519 public key (hex) from the ``users`` table.
    linked : bool
        Check that each line links to the one before (``False`` when checking a single line).
    """
    from toolkit.store.identity import key_fingerprint, verify_signature

    problems: list[str] = []
    prev = _GENESIS
    restores = [a for a in anchors if a.kind == "restore"]
    for a in anchors:
        where = f"{path.name} line {a.line}"
        if linked and a.prev != prev:
            problems.append(f"{where}: does not link to the line before it (lines removed, reordered or edited)")
        prev = hashlib.sha256(a.text.encode("utf-8")).hexdigest()
        public = public_keys.get(a.user)
        if public is None:
            problems.append(f"{where}: signed by {a.user!r}, who is not a user of this database")
        elif key_fingerprint(bytes.fromhex(public)) != a.key or not verify_signature(public, a.sig, a.signed_content()):
            problems.append(f"{where}: the signature of {a.user} does not verify (the line was altered)")
        # a later restore gave up the entries after the head it restored: their anchors no longer apply
        if any(r.line > a.line and a.seq > r.seq for r in restores):
            continue
        if a.seq > head_seq:
            problems.append(
                f"{where}: anchors audit entry #{a.seq} (written {a.at} by {a.user}) but the database ends at "
                f"#{head_seq}: its newest entries were removed or an older copy of the database is in use"
            )
        elif a.seq > 0 and chain.get(a.seq) != a.hash:
            problems.append(
                f"{where}: audit entry #{a.seq} has another hash than anchored on {a.at}: the database was "
                "replaced by a different or older copy"
            )
    return problems

