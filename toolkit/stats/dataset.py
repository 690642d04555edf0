"""Analysis datasets in CDISC BDS long form and the analysis populations of a study.

A BDS dataset has one record per subject, parameter and visit: ``USUBJID, TRTP, PARAMCD, AVISIT, AVISITN,
AVAL, BASE, CHG, PCHG`` and population flags (``ITTFL, SAFFL, PPROTFL``, ``EFFFL`` ...). The functions here
select what one analysis uses and refuse, with a message naming the column, anything that would make the
analysis silently wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from toolkit.errors import DataError
from toolkit.stats import _checks

__all__ = ["POPULATION_FLAGS", "analysis_records", "population_flag", "select_population"]

#: population codes of the analysis plan and their ADaM flag variables
POPULATION_FLAGS: dict[str, str] = {
    "ITT": "ITTFL",
    "SAFETY": "SAFFL",
    "SAF": "SAFFL",
    "PP": "PPROTFL",
    "PPROT": "PPROTFL",
    "EFFICACY": "EFFFL",
    "EFF": "EFFFL",
    "FAS": "FASFL",
    "MITT": "MITTFL",
    "COMPLETERS": "COMPLFL",
}


def population_flag(code: str, columns: pd.Index | None = None) -> str:
    """ADaM flag variable of a population code (``ITT`` -> ``ITTFL``, ``PP`` -> ``PPROTFL``).

    Unknown codes map to ``<CODE>FL``; when ``columns`` is given, the flag must be one of them.
    """
    flag = POPULATION_FLAGS.get(code.upper(), f"{code.upper()[:6]}FL")
    if columns is not None and flag not in columns:
        raise DataError(
            f"population {code!r} needs the flag column {flag!r}, which the dataset lacks",
            details=[
                f"flag columns present: {', '.join(c for c in columns if str(c).endswith('FL')) or 'none'}"
            ],
        )
    return flag


def select_population(data: pd.DataFrame, population: str | None) -> pd.DataFrame:
    """Records of subjects in ``population`` (flag = ``"Y"``); all records when ``population`` is None."""
    data = _checks.require_frame(data)
    if population is None:
        return data
    flag = population_flag(population, data.columns)
    values = data[flag].astype("string").str.strip().str.upper()
    unexpected = set(values.dropna().unique()) - {"Y", "N", ""}
    if unexpected:
        raise DataError(
            f"population flag {flag!r} must hold 'Y' or 'N' (or blank); found {sorted(unexpected)[:3]}"
        )
    out = data[values == "Y"]
    if out.empty:
        raise DataError(f"no records with {flag} = 'Y' (population {population})")
    return out


def analysis_records(
    data: pd.DataFrame,
    *,
    paramcd: str | None = None,
    population: str | None = None,
    visits: list | None = None,
    filters: Mapping[str, object] | None = None,
    post_baseline: bool = True,
) -> pd.DataFrame:
    """The records one analysis uses: one parameter, one population, some visits, analysis flags.

    Parameters
    ----------
    data : DataFrame
        BDS dataset.
    paramcd : str, optional
        Parameter code (``PARAMCD``) to keep.
    population : str, optional
        Population code of the analysis plan (``ITT``, ``PP`` ...).
    visits : list, optional
        ``AVISIT`` values (or ``AVISITN`` numbers) to keep.
    filters : mapping, optional
        Further equality filters, e.g. ``{"ANL01FL": "Y"}``.
    post_baseline : bool
        Drop baseline records (``ABLFL == "Y"``) — the analysis models change from baseline.
    """
    frame = select_population(data, population)
    if paramcd is not None:
        _checks.require_columns(frame, ["PARAMCD"])
        present = frame["PARAMCD"].dropna().unique().tolist()
        frame = frame[frame["PARAMCD"] == paramcd]
        if frame.empty:
            raise DataError(
                f"no records of PARAMCD {paramcd!r} in the dataset",
                details=[f"parameters present: {', '.join(map(str, present[:20]))}"],
            )
    for col, value in (filters or {}).items():
        _checks.require_columns(frame, [col])
        frame = frame[frame[col] == value]
    if post_baseline and "ABLFL" in frame.columns:
        frame = frame[frame["ABLFL"].astype("string").fillna("") != "Y"]
    if visits is not None:
        keys = list(visits)
        numeric = all(isinstance(v, int | float) for v in keys)
        col = "AVISITN" if numeric else "AVISIT"
        _checks.require_columns(frame, [col])
        frame = frame[frame[col].isin(keys)]
        if frame.empty:
            raise DataError(f"no records at visit(s) {', '.join(map(str, keys))} ({col})")
    return frame


def resolve_column(data: pd.DataFrame, name: str, *, role: str) -> str:
    """The column of ``data`` that holds the variable ``name`` (as written, upper case, or as a SAS name)."""
    cleaned = re.sub(r"[^A-Z0-9]", "", name.upper())[:8]
    for candidate in (name, name.upper(), cleaned):
        if candidate in data.columns:
            return candidate
    labels = data.attrs.get("labels", {}) if isinstance(data.attrs.get("labels"), dict) else {}
    for col, label in labels.items():
        if isinstance(label, str) and label.lower().endswith(name.lower()) and col in data.columns:
            return col
    raise DataError(
        f"{role} {name!r} has no column in the analysis dataset (looked for {name!r}, {name.upper()!r}, {cleaned!r})",
        details=[f"columns: {', '.join(map(str, data.columns[:40]))}"],
    )
