"""The :class:`Table` model: one numbered report table, independent of the file format it is written to."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from toolkit.errors import DataError

__all__ = ["HeaderCell", "Table"]

_NUMBER = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True)
class HeaderCell:
    """One cell of a header row: its text and how many body columns it spans."""

    text: str
    span: int = 1


@dataclass
class Table:
    """A report table with ICH E3 numbering.

    Sections: 14.1 demographic and baseline data, 14.2 efficacy, 14.3 safety, 16.2 subject data listings
    (numbers starting with ``16`` are labelled "Listing").

    Parameters
    ----------
    number : str
        ``"14.1.1"``; digits separated by dots.
    title : str
        Title without the number.
    body : DataFrame
        Cells as displayed (formatting is the builder's job; non-strings are shown with ``str``). Columns may be
        a two-level :class:`pandas.MultiIndex`: the top level becomes a spanning header row (equal adjacent
        labels merge).
    footnotes : sequence of str
        Lines printed under the table on every page.
    source : str
        Source data, printed with the program and run time.
    population : str, optional
        Analysis population, printed under the title (e.g. ``"Safety population"``).
    program : str, optional
        Program that made the table (default: the toolkit and its version).
    run_time : str, optional
        UTC time stamp (default: now).
    """

    number: str
    title: str
    body: pd.DataFrame
    footnotes: Sequence[str] = field(default_factory=tuple)
    source: str = ""
    population: str | None = None
    program: str | None = None
    run_time: str | None = None

    def __post_init__(self) -> None:
        if not _NUMBER.match(str(self.number)):
            raise DataError(f"table number {self.number!r} must be dotted digits in ICH E3 style, e.g. '14.1.1'")
        if not str(self.title).strip():
            raise DataError(f"table {self.number}: title must not be empty")
        if not isinstance(self.body, pd.DataFrame):
            raise DataError(f"table {self.number}: body must be a pandas DataFrame, got {type(self.body).__name__}")
        if self.body.columns.nlevels > 2:
            raise DataError(f"table {self.number}: at most two header levels, got {self.body.columns.nlevels}")
        if len(self.body.columns) == 0:
            raise DataError(f"table {self.number}: body has no columns")
        self.footnotes = tuple(str(f) for f in self.footnotes)
        if self.program is None:
            import toolkit

            self.program = f"toolkit.report (toolkit {toolkit.__version__})"
        if self.run_time is None:
            self.run_time = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    @property
    def kind(self) -> str:
        """``"Listing"`` for section 16 numbers, else ``"Table"``."""
        return "Listing" if str(self.number).startswith("16") else "Table"

    @property
    def full_title(self) -> str:
        """``"Table 14.1.1 Demographic characteristics"``."""
        return f"{self.kind} {self.number} {self.title}"

    @property
    def slug(self) -> str:
        """File-name stem, e.g. ``"table_14_1_1"``."""
        return f"{self.kind.lower()}_{str(self.number).replace('.', '_')}"

    @property
    def provenance(self) -> str:
        """``"Source: …; Program: …; run …"`` line."""
        parts = [f"Source: {self.source}" if self.source else None, f"Program: {self.program}", f"run {self.run_time}"]
        return "; ".join(p for p in parts if p)

    def header_rows(self) -> list[list[HeaderCell]]:
        """Header rows top to bottom; spanning cells merge equal adjacent top-level labels."""
        cols = self.body.columns
        if cols.nlevels == 1:
            return [[HeaderCell(str(c)) for c in cols]]
        top: list[HeaderCell] = []
        for label in cols.get_level_values(0):
            text = "" if label is None or str(label) == "nan" else str(label)
            if top and top[-1].text == text and text:
                top[-1] = HeaderCell(text, top[-1].span + 1)
            else:
                top.append(HeaderCell(text))
        bottom = [HeaderCell(str(c)) for c in cols.get_level_values(1)]
        return [top, bottom]

    def flat_columns(self) -> list[str]:
        """Column labels as one row (levels joined with ``" | "``)."""
        if self.body.columns.nlevels == 1:
            return [str(c) for c in self.body.columns]
        return [" | ".join(str(x) for x in c if str(x) not in ("", "nan")) for c in self.body.columns]

    def cell_text(self) -> list[list[str]]:
        """Body cells as strings (missing values blank)."""
        out = []
        for row in self.body.itertuples(index=False):
            out.append(["" if _is_missing(v) else str(v) for v in row])
        return out


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
