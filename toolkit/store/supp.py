"""SDTM's rule for long text: a character value over 200 bytes keeps its first part in the parent variable and
continues in the supplemental qualifiers dataset SUPP-- (QNAM ``<VAR>1``, ``<VAR>2`` …), never truncated.

Values are split between words where possible, and never inside a UTF-8 character.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from toolkit.store.datasets import Dataset, Variable

__all__ = ["MAX_BYTES", "split_long_text", "split_text"]

#: SAS XPORT v5 limit of a character value
MAX_BYTES = 200


def split_text(text: str, limit: int = MAX_BYTES) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut before a space where one is near, so that
    concatenating the pieces gives ``text`` back even after SAS strips trailing blanks."""
    parts: list[str] = []
    rest = str(text)
    while len(rest.encode("utf-8")) > limit:
        cut, size = 0, 0
        for k, ch in enumerate(rest):
            size += len(ch.encode("utf-8"))
            if size > limit:
                break
            cut = k + 1
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:  # a word boundary in the second half of the piece; the next piece starts with
            cut = space       # the space, because SAS strips trailing blanks but keeps leading ones
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return parts


def split_long_text(ds: Dataset, qualifiers: Iterable[dict] = ()) -> tuple[Dataset, Dataset | None]:
    """Move the part of every character value over 200 bytes into ``SUPP<domain>``.

    Parameters
    ----------
    ds : Dataset
        An SDTM domain with ``STUDYID``, ``USUBJID`` and a ``<domain>SEQ`` key.
    qualifiers : iterable of dict
        Further supplemental qualifiers of the domain (keys ``USUBJID``, ``IDVAR``, ``IDVARVAL``, ``QNAM``,
        ``QLABEL``, ``QVAL``, ``QORIG``), written after the continued text.

    Returns
    -------
    (Dataset, Dataset or None)
        The domain with each long value cut to its first piece, and the SUPP-- dataset (``None`` when no value
        was too long).
    """
    seq = f"{ds.name}SEQ"
    frame = ds.frame.copy()
    labels = ds.labels
    rows = []
    for v in ds.variables:
        if v.type != "Char" or v.name not in frame.columns:
            continue
        for idx, value in frame[v.name].items():
            if not isinstance(value, str) or len(value.encode("utf-8")) <= MAX_BYTES:
                continue
            pieces = split_text(value)
            frame.at[idx, v.name] = pieces[0]
            for k, piece in enumerate(pieces[1:], start=1):
                rows.append({
                    "STUDYID": frame.at[idx, "STUDYID"],
                    "RDOMAIN": ds.name,
                    "USUBJID": frame.at[idx, "USUBJID"],
                    "IDVAR": seq if seq in frame.columns else "",
                    "IDVARVAL": str(int(frame.at[idx, seq])) if seq in frame.columns else "",
                    "QNAM": f"{v.name[:7]}{k}",
                    "QLABEL": f"{labels.get(v.name, v.name)[:36]} {k}",
                    "QVAL": piece,
                    "QORIG": v.origin.split(":")[0][:20],
                })
    study = str(frame["STUDYID"].iloc[0]) if len(frame) else ""
    rows += [{"STUDYID": study, "RDOMAIN": ds.name, **q} for q in qualifiers]
    if not rows:
        return ds, None
    parent = Dataset(ds.name, ds.label, frame, list(ds.variables))
    variables = [
        Variable("STUDYID", "Study Identifier", origin="Assigned"),
        Variable("RDOMAIN", "Related Domain Abbreviation", codelist=ds.name, origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", origin="Derived"),
        Variable("IDVAR", "Identifying Variable", origin="Assigned"),
        Variable("IDVARVAL", "Identifying Variable Value", origin="Assigned"),
        Variable("QNAM", "Qualifier Variable Name", origin="Assigned"),
        Variable("QLABEL", "Qualifier Variable Label", origin="Assigned"),
        Variable("QVAL", "Data Value", origin="Derived"),
        Variable("QORIG", "Origin", origin="Assigned"),
    ]
    return parent, Dataset(f"SUPP{ds.name}", f"Supplemental Qualifiers for {ds.name}", pd.DataFrame(rows), variables)


def split_long_variables(ds: Dataset) -> Dataset:
    """ADaM has no SUPP--: a character variable with values over 200 bytes continues in numbered variables
    (``AETERM`` → ``AETERM1``, ``AETERM2`` … placed right after it), never truncated."""
    frame = ds.frame.copy()
    variables: list[Variable] = []
    changed = False
    for v in ds.variables:
        variables.append(v)
        if v.type != "Char" or v.name not in frame.columns:
            continue
        pieces = frame[v.name].map(lambda x: split_text(x) if isinstance(x, str) and
                                   len(x.encode("utf-8")) > MAX_BYTES else None)
        extra = max((len(p) for p in pieces.dropna()), default=1) - 1
        if extra <= 0:
            continue
        changed = True
        frame[v.name] = [p[0] if p else x for p, x in zip(pieces, frame[v.name], strict=True)]
        for k in range(1, extra + 1):
            name = f"{v.name[:7]}{k}"
            frame[name] = [p[k] if p and len(p) > k else None for p in pieces]
            variables.append(Variable(name, f"{v.label[:25].rstrip()} (continued {k})", "Char", "", v.origin))
    return Dataset(ds.name, ds.label, frame, variables) if changed else ds
