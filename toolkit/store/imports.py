"""Import clinician assessments and adverse events from CSV, checked against a data dictionary.

Every row is checked (column types, allowed values, required fields, known subjects, visits and scales,
duplicates within the file and against stored records) and every problem is reported at once with its line
number. Only a file without problems is imported, in one transaction: all rows or none.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from toolkit.errors import DataError, ToolkitError
from toolkit.store import models as m
from toolkit.store.safety import AE_RELATIONS, AE_SEVERITIES, ae_values

if TYPE_CHECKING:
    from toolkit.store.store import Store

__all__ = ["IMPORT_KINDS", "ColumnSpec", "ImportResult", "data_dictionary", "import_csv"]

#: what can be imported
IMPORT_KINDS = ("ae", "assessments")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a data dictionary."""

    column: str
    #: ``text``, ``number``, ``date`` (YYYY-MM-DD) or ``yes/no`` (Y/N)
    type: str
    required: bool
    #: allowed values (empty: any)
    allowed: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ImportResult:
    """What an import stored."""

    kind: str
    path: Path
    rows: int
    ids: tuple[int, ...]


def data_dictionary(store: Store, kind: str) -> list[ColumnSpec]:
    """The data dictionary of an import ``kind`` (``ae`` or ``assessments``) for this study."""
    if kind == "ae":
        return [
            ColumnSpec("subject_id", "text", True, description="enrolled subject, e.g. S-001"),
            ColumnSpec("term", "text", True, description="reported term (MedDRA preferred term if coded)"),
            ColumnSpec("soc", "text", True, description="system organ class"),
            ColumnSpec("severity", "text", True, AE_SEVERITIES),
            ColumnSpec("serious", "yes/no", True, ("Y", "N")),
            ColumnSpec("relation", "text", True, AE_RELATIONS),
            ColumnSpec("onset", "date", True, description="YYYY-MM-DD, not in the future"),
            ColumnSpec(
                "resolved", "date", False, description="YYYY-MM-DD, on or after onset; empty if ongoing"
            ),
        ]
    if kind == "assessments":
        return [
            ColumnSpec("subject_id", "text", True, description="enrolled subject, e.g. S-001"),
            ColumnSpec("visit_id", "text", True, tuple(v.id for v in store.info.visits)),
            ColumnSpec("scale", "text", True, store.info.scales),
            ColumnSpec("score", "number", True, description="inside the scale's range"),
            ColumnSpec("assessor", "text", True, description="who scored"),
            ColumnSpec("assessed_on", "date", True,
                       description="YYYY-MM-DD, the day the subject was assessed: at a visit the subject has "
                                   "reached, not in the future"),
            ColumnSpec("side", "text", False, ("left", "right"), description="split-face: side scored"),
        ]
    raise DataError(f"import kind {kind!r} is not supported; accepted: {', '.join(IMPORT_KINDS)}")


def _read(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    if not path.is_file():
        raise DataError(f"import file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = []
            for rec in reader:
                values = {str(k).strip(): (v or "").strip() for k, v in rec.items() if k is not None}
                extra = rec.get(None)  # more cells than header columns
                if extra:
                    values["__extra__"] = ",".join(extra)
                # csv line number of the record's last line (records may span lines when quoted)
                rows.append((reader.line_num, values))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    return header, rows


def _check_cell(spec: ColumnSpec, raw: str) -> tuple[Any, str | None]:
    if raw == "":
        return None, ("required, empty" if spec.required else None)
    if spec.type == "number":
        try:
            return float(raw), None
        except ValueError:
            return None, f"{raw!r} is not a number"
    if spec.type == "date":
        try:
            return date.fromisoformat(raw), None
        except ValueError:
            return None, f"{raw!r} is not a date (YYYY-MM-DD)"
    if spec.type == "yes/no":
        text = raw.upper()
        if text in ("Y", "YES", "TRUE", "1"):
            return True, None
        if text in ("N", "NO", "FALSE", "0"):
            return False, None
        return None, f"{raw!r} is not Y or N"
    if spec.allowed and raw.lower() not in {a.lower() for a in spec.allowed}:
        return None, f"{raw!r} is not accepted; accepted: {', '.join(spec.allowed)}"
    if spec.allowed:
        return next(a for a in spec.allowed if a.lower() == raw.lower()), None
    return raw, None


def import_csv(store: Store, kind: str, path: Path | str, *, reason: str | None = None) -> ImportResult:
    """Check and import a CSV file of adverse events (``kind="ae"``) or assessments (``"assessments"``).

    Parameters
    ----------
    store : Store
    kind : {'ae', 'assessments'}
    path : Path
        UTF-8 CSV with a header row naming the data dictionary's columns.
    reason : str, optional
        Recorded with each audit entry (default: ``"import <file name>"``).

    Returns
    -------
    ImportResult

    Raises
    ------
    DataError
        Listing every problem as ``line N: column: reason``; nothing is imported.
    """
    store._require("import", "import records from CSV")
    path = Path(path)
    specs = data_dictionary(store, kind)
    header, rows = _read(path)
    by_name = {s.column: s for s in specs}
    problems: list[str] = []
    missing = [s.column for s in specs if s.required and s.column not in header]
    unknown = [h for h in header if h not in by_name]
    if missing:
        problems.append(f"line 1: missing required column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(unknown)}; accepted: {', '.join(by_name)}")
    if problems:
        raise DataError(f"{path}: the header does not match the {kind} data dictionary", details=problems)
    if not rows:
        raise DataError(f"{path}: no data rows under the header")
    with store.reading() as s:
        subjects = {
            sid: pk
            for pk, sid in s.execute(
                select(m.SubjectRow.id, m.SubjectRow.subject_id).where(
                    m.SubjectRow.study_id == store.study_id
                )
            )
        }
        existing = _existing_keys(s, kind, store)
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: dict[tuple, int] = {}
    row_check: Callable[[dict[str, Any]], None] = _ae_check if kind == "ae" else _assessment_check(store)
    for line, raw in rows:
        errs = []
        if "__extra__" in raw:
            errs.append(f"more cells than header columns ({raw['__extra__']!r})")
        values: dict[str, Any] = {}
        for spec in specs:
            value, err = _check_cell(spec, raw.get(spec.column, ""))
            if err:
                errs.append(f"{spec.column}: {err}")
            values[spec.column] = value
        if values.get("subject_id") and values["subject_id"] not in subjects:
            errs.append(f"subject_id: {values['subject_id']!r} is not enrolled in study {store.study_id}")
        if not errs:
            try:
                row_check(values)
            except ToolkitError as exc:
                errs.append(exc.message)
        if not errs:
            key = _key(kind, values)
            if key in seen:
                errs.append(f"repeats line {seen[key]}")
            elif key in existing:
                table = "adverse_events" if kind == "ae" else kind
                errs.append(f"already stored ({kind} #{existing[key]}); to change it: toolkit data correct "
                            f"--study ... --table {table} --id {existing[key]} --set FIELD=VALUE --reason '...'")
            seen.setdefault(key, line)
        problems += [f"line {line}: {e}" for e in errs]
        parsed.append((line, values))
    if problems:
        raise DataError(
            f"{path}: {len(problems)} problem(s) in {len(rows)} row(s); nothing was imported",
            details=problems,
        )
    ids = _insert(store, kind, parsed, subjects, reason or f"import {path.name}")
    return ImportResult(kind, path, len(ids), tuple(ids))


def _ae_check(values: dict[str, Any]) -> None:
    ae_values(
        values["term"], values["soc"], values["severity"], values["serious"], values["relation"],
        values["onset"], values["resolved"],
    )  # fmt: skip


def _assessment_check(store: Store) -> Callable[[dict[str, Any]], None]:
    calendars: dict[int, Any] = {}

    def check(values: dict[str, Any]) -> None:
        store._check_score(values["scale"], values["score"])
        with store.reading() as s:
            subject = store._subject(s, values["subject_id"], write=False)
            store.check_assessment_day(s, subject, values["visit_id"], values["assessed_on"], calendars)

    return check


def _key(kind: str, v: dict[str, Any]) -> tuple:
    if kind == "ae":
        return (v["subject_id"], str(v["term"]).lower(), v["onset"])
    return (v["subject_id"], v["visit_id"], v["scale"], v.get("side"), v["assessor"])


def _existing_keys(s: Any, kind: str, store: Store) -> dict[tuple, int]:
    if kind == "ae":
        rows = s.execute(
            select(
                m.AdverseEventRow.id, m.SubjectRow.subject_id, m.AdverseEventRow.term, m.AdverseEventRow.onset
            )
            .join(m.SubjectRow, m.SubjectRow.id == m.AdverseEventRow.subject_pk)
            .where(m.SubjectRow.study_id == store.study_id)
        )
        return {(sid, term.lower(), onset): i for i, sid, term, onset in rows}
    rows = s.execute(
        select(
            m.AssessmentRow.id,
            m.SubjectRow.subject_id,
            m.VisitRow.visit_id,
            m.AssessmentRow.scale,
            m.AssessmentRow.side,
            m.AssessmentRow.assessor,
        )
        .join(m.SubjectRow, m.SubjectRow.id == m.AssessmentRow.subject_pk)
        .join(m.VisitRow, m.VisitRow.id == m.AssessmentRow.visit_pk)
        .where(m.SubjectRow.study_id == store.study_id)
    )
    return {(sid, vid, scale, side, who): i for i, sid, vid, scale, side, who in rows}


def _insert(store: Store, kind: str, parsed: list, subjects: dict[str, int], reason: str) -> list[int]:
    with store.session(reason=reason) as s:
        objs = []
        for _line, v in parsed:
            if kind == "ae":
                values = ae_values(
                    v["term"], v["soc"], v["severity"], v["serious"], v["relation"], v["onset"], v["resolved"]
                )
                obj = m.AdverseEventRow(subject_pk=subjects[v["subject_id"]], **values)
            else:
                subject = s.get(m.SubjectRow, subjects[v["subject_id"]])
                visit = store._visit(s, subject, v["visit_id"])
                obj = m.AssessmentRow(
                    subject_pk=subject.id,
                    visit_pk=visit.id,
                    scale=v["scale"],
                    side=v.get("side"),
                    score=float(v["score"]),
                    assessor=v["assessor"],
                    assessed_on=v["assessed_on"],
                )
            s.add(obj)
            objs.append(obj)
        s.flush()
        return [o.id for o in objs]
