"""Builders of the standard ICH E3 tables from tidy data: demographics (14.1), efficacy results (14.2),
adverse events (14.3) and subject listings (16.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from toolkit.errors import DataError
from toolkit.report._columns import require_columns, require_numeric
from toolkit.report.figures.safety import ae_incidence
from toolkit.report.style import order_arms
from toolkit.report.tables.model import Table
from toolkit.stats.rounding import format_half_up, format_percent

__all__ = ["ae_table", "demographics_table", "format_p_value", "listing_table", "results_table"]


def _fmt(x: float, decimals: int) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{decimals}f}"


def format_p_value(p: float) -> str:
    """Format a p-value as regulators print it: ``"<0.001"``, else three decimals (``"0.046"``)."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def demographics_table(
    data: pd.DataFrame,
    *,
    arm: str = "TRT01A",
    continuous: Mapping[str, str] | Sequence[str] = ("AGE",),
    categorical: Mapping[str, str] | Sequence[str] = ("SEX", "RACE"),
    arm_order: Sequence[str] | None = None,
    total: bool = True,
    decimals: int = 1,
    number: str = "14.1.1",
    title: str = "Demographic and baseline characteristics",
    population: str | None = None,
    source: str = "ADSL",
    footnotes: Sequence[str] = (),
) -> Table:
    """Table 1: n, mean (SD), median, min–max of continuous and n (%) of categorical variables by arm.

    Parameters
    ----------
    data : DataFrame
        ADSL, one row per subject of the population: ``arm`` and the variables.
    arm : str
        Treatment column.
    continuous, categorical : mapping or sequence of str
        Variables, optionally ``{column: label}``.
    arm_order : sequence of str, optional
        Column order of the arms.
    total : bool
        Add a Total column.
    decimals : int
        Decimals of means and medians (SD one more, min/max as the data).
    number, title, population, source, footnotes
        Table labels.

    Returns
    -------
    Table
        Columns ``Characteristic``, ``Statistic`` and one per arm headed ``"<arm> (N=n)"``; percentages use
        the arm's N as denominator.
    """
    what = f"Table {number} (demographics)"
    cont = dict(continuous) if isinstance(continuous, Mapping) else {c: c for c in continuous}
    cat = dict(categorical) if isinstance(categorical, Mapping) else {c: c for c in categorical}
    require_columns(data, [arm, *cont, *cat], what=what)
    arms = [str(a) for a in arm_order] if arm_order else order_arms(data[arm])
    groups = [(a, data[data[arm].astype(str) == a]) for a in arms]
    if total:
        groups.append(("Total", data))
    headers = [f"{a} (N={len(g)})" for a, g in groups]
    rows: list[list[str]] = []
    for col, label in cont.items():
        values = require_numeric(data, col, what=what)
        stats_rows = [("n", []), ("Mean (SD)", []), ("Median", []), ("Min, Max", [])]
        for _, g in groups:
            x = values.loc[g.index].dropna()
            stats_rows[0][1].append(str(len(x)))
            sd = x.std(ddof=1) if len(x) > 1 else float("nan")
            stats_rows[1][1].append(f"{_fmt(x.mean(), decimals)} ({_fmt(sd, decimals + 1)})" if len(x) else "")
            stats_rows[2][1].append(_fmt(x.median(), decimals) if len(x) else "")
            stats_rows[3][1].append(f"{_num(x.min())}, {_num(x.max())}" if len(x) else "")
        for k, (stat, cells) in enumerate(stats_rows):
            rows.append([label if k == 0 else "", stat, *cells])
    for col, label in cat.items():
        levels = [str(v) for v in pd.unique(data[col].dropna().astype(str))]
        levels = sorted(levels)
        for k, level in enumerate(levels):
            cells = []
            for _, g in groups:
                n = int((g[col].astype(str) == level).sum())
                cells.append(f"{n} ({format_percent(n, len(g))}%)" if len(g) else "0")
            rows.append([label if k == 0 else "", level, *cells])
        missing = [int(g[col].isna().sum()) for _, g in groups]
        if any(missing):
            rows.append(["", "Missing", *map(str, missing)])
    body = pd.DataFrame(rows, columns=["Characteristic", "Statistic", *headers])
    return Table(number=number, title=title, body=body, population=population, source=source,
                 footnotes=["Percentages are based on N, the number of subjects in the arm.", *footnotes])


def _num(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


def ae_table(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRTA",
    soc: str = "AEBODSYS",
    pt: str = "AEDECOD",
    emergent: str | None = "TRTEMFL",
    population: pd.DataFrame | Mapping[str, int] | None = None,
    population_arm: str = "TRT01A",
    arm_order: Sequence[str] | None = None,
    number: str = "14.3.1",
    title: str = "Treatment-emergent adverse events by system organ class and preferred term",
    population_label: str | None = "Safety population",
    source: str = "ADAE",
    footnotes: Sequence[str] = (),
    percent_decimals: int = 0,
) -> Table:
    """Incidence table of treatment-emergent adverse events: any event, each SOC and its preferred terms.

    Parameters
    ----------
    data : DataFrame
        ADAE (see :func:`toolkit.report.figures.ae_incidence` for the columns and the counting rule).
    subject, arm, soc, pt, emergent, population, population_arm
        As for :func:`toolkit.report.figures.ae_incidence`.
    arm_order : sequence of str, optional
        Column order.
    number, title, population_label, source, footnotes
        Table labels.
    percent_decimals : int
        Decimals of the percentages, rounded half up as SAS prints them.

    Returns
    -------
    Table
        Rows: "Any adverse event", then each SOC (upper case as coded) followed by its preferred terms
        indented, by descending total frequency; cells ``"n (%)"``.
    """
    inc = ae_incidence(data, subject=subject, arm=arm, soc=soc, pt=pt, emergent=emergent, population=population,
                       population_arm=population_arm)
    arms = [str(a) for a in arm_order] if arm_order else order_arms(inc["arm"])
    n_of = inc.drop_duplicates("arm").set_index("arm")["N"]
    headers = [f"{a} (N={int(n_of.get(a, 0))})" for a in arms]

    def cells(frame: pd.DataFrame) -> list[str]:
        by_arm = frame.set_index("arm")
        return [f"{int(by_arm.loc[a, 'n'])} ({format_half_up(by_arm.loc[a, 'pct'], percent_decimals)}%)"
                if a in by_arm.index else "0" for a in arms]

    rows = [["Any adverse event", *cells(inc[inc["level"] == "ANY"])]]
    socs = inc[inc["level"] == "SOC"].groupby("soc")["n"].sum().sort_values(ascending=False, kind="stable")
    pts = inc[inc["level"] == "PT"]
    for soc_name in socs.index:
        rows.append([str(soc_name), *cells(inc[(inc["level"] == "SOC") & (inc["soc"] == soc_name)])])
        sub = pts[pts["soc"] == soc_name]
        for pt_name in sub.groupby("pt")["n"].sum().sort_values(ascending=False, kind="stable").index:
            rows.append([f"    {pt_name}", *cells(sub[sub["pt"] == pt_name])])
    body = pd.DataFrame(rows, columns=["System organ class / Preferred term", *headers])
    notes = ["n (%): subjects with at least one event; a subject is counted once per SOC and once per term."]
    return Table(number=number, title=title, body=body, population=population_label, source=source,
                 footnotes=[*notes, *footnotes])


_VOCAB = ("estimate", "se", "df", "ci_low", "ci_high", "p_value", "statistic")


def results_table(
    data: pd.DataFrame,
    *,
    labels: Sequence[str] | None = None,
    decimals: int = 2,
    number: str = "14.2.1",
    title: str = "Analysis results",
    population: str | None = None,
    source: str = "analysis results",
    footnotes: Sequence[str] = (),
) -> Table:
    """Format model results (LS means, contrasts) in the stats vocabulary into a report table.

    Parameters
    ----------
    data : DataFrame
        Rows of estimates with any of ``estimate``, ``se``, ``df``, ``ci_low``, ``ci_high``, ``p_value`` and
        label columns (e.g. ``endpoint``, ``visit``, ``arm``, ``contrast``).
    labels : sequence of str, optional
        Label columns to keep, in order (default: every non-numeric-vocabulary column).
    decimals : int
        Decimals of estimates, SE and CI.
    number, title, population, source, footnotes
        Table labels.

    Returns
    -------
    Table
        Label columns, then ``Estimate (SE)``, ``95% CI``, ``df``, ``p-value`` for the vocabulary present.
    """
    what = f"Table {number} (results)"
    if "estimate" not in data.columns:
        raise DataError(f"{what}: results need an 'estimate' column (stats vocabulary: {', '.join(_VOCAB)}); "
                        f"found {', '.join(map(str, data.columns))}")
    labels = list(labels) if labels is not None else [c for c in data.columns if c not in _VOCAB]
    require_columns(data, labels, what=what)
    out = data[labels].astype(str).copy() if labels else pd.DataFrame(index=data.index)
    est = require_numeric(data, "estimate", what=what)
    if "se" in data.columns:
        se = require_numeric(data, "se", what=what)
        out["Estimate (SE)"] = [f"{_fmt(e, decimals)} ({_fmt(s, decimals + 1)})" for e, s in zip(est, se, strict=True)]
    else:
        out["Estimate"] = [_fmt(e, decimals) for e in est]
    if "ci_low" in data.columns and "ci_high" in data.columns:
        lo, hi = require_numeric(data, "ci_low", what=what), require_numeric(data, "ci_high", what=what)
        out["95% CI"] = [f"({_fmt(a, decimals)}, {_fmt(b, decimals)})" for a, b in zip(lo, hi, strict=True)]
    if "df" in data.columns:
        out["df"] = [_fmt(d, 1) for d in require_numeric(data, "df", what=what)]
    if "p_value" in data.columns:
        out["p-value"] = [format_p_value(p) for p in require_numeric(data, "p_value", what=what)]
    return Table(number=number, title=title, body=out.reset_index(drop=True), population=population,
                 source=source, footnotes=footnotes)


def listing_table(
    data: pd.DataFrame,
    *,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    sort_by: Sequence[str] | None = ("USUBJID",),
    number: str = "16.2.1",
    title: str = "Subject data listing",
    population: str | None = None,
    source: str = "",
    footnotes: Sequence[str] = (),
) -> Table:
    """A subject listing (ICH E3 16.2): selected columns of a dataset, sorted, values as recorded.

    Parameters
    ----------
    data : DataFrame
        Any dataset.
    columns : mapping or sequence of str, optional
        Columns to list, optionally ``{column: header}`` (default: all).
    sort_by : sequence of str, optional
        Sort keys present in ``data`` (missing keys are ignored).
    number, title, population, source, footnotes
        Table labels.

    Returns
    -------
    Table
    """
    cols = dict(columns) if isinstance(columns, Mapping) else {c: c for c in (columns or data.columns)}
    require_columns(data, list(cols), what=f"Listing {number}")
    keys = [k for k in (sort_by or ()) if k in data.columns]
    frame = data.sort_values(keys, kind="stable") if keys else data
    body = frame[list(cols)].rename(columns=cols).reset_index(drop=True)
    for col in body.columns:  # a count or a day read back as float (a column with gaps) is listed as 52, not 52.0
        if _whole_numbers(body[col]):
            body[col] = ["" if pd.isna(v) else str(int(v)) for v in body[col]]
    return Table(number=number, title=title, body=body, population=population, source=source,
                 footnotes=footnotes)


def _whole_numbers(values: pd.Series) -> bool:
    """A float column whose values (ignoring gaps) are all whole numbers."""
    if not pd.api.types.is_float_dtype(values):
        return False
    known = values.dropna()
    return bool(len(known)) and bool(np.isfinite(known).all()) and bool((known == np.round(known)).all())
