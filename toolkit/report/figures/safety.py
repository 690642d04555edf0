"""Adverse event incidence by arm (ICH E3 section 14.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from toolkit.errors import DataError
from toolkit.report._columns import require_columns
from toolkit.report.figures._common import arms_and_styles
from toolkit.report.style import finish_figure

__all__ = ["ae_incidence", "fig_ae_incidence"]


def _denominators(
    population: pd.DataFrame | Mapping[str, int] | None, pop_arm: str, pop_subject: str, fallback: pd.DataFrame,
    arm: str, subject: str, what: str,
) -> dict[str, int]:
    if population is None:
        return {str(a): int(n) for a, n in fallback.groupby(fallback[arm].astype(str))[subject].nunique().items()}
    if isinstance(population, Mapping):
        out = {str(a): int(n) for a, n in population.items()}
    else:
        require_columns(population, [pop_arm, pop_subject], what=f"{what} population")
        out = {str(a): int(n) for a, n in population.groupby(population[pop_arm].astype(str))[pop_subject]
               .nunique().items()}
    if any(n <= 0 for n in out.values()):
        raise DataError(f"{what}: every arm needs a positive number of subjects at risk, got {out}")
    return out


def ae_incidence(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRTA",
    soc: str = "AEBODSYS",
    pt: str | None = "AEDECOD",
    emergent: str | None = "TRTEMFL",
    population: pd.DataFrame | Mapping[str, int] | None = None,
    population_arm: str = "TRT01A",
    population_subject: str = "USUBJID",
) -> pd.DataFrame:
    """Number and percentage of subjects with at least one (treatment-emergent) event, by arm and term.

    Parameters
    ----------
    data : DataFrame
        ADAE: one row per event with ``subject``, ``arm``, ``soc`` and ``pt``.
    subject, arm, soc, pt : str
        Column names; ``pt=None`` counts system organ classes only.
    emergent : str or None
        Treatment-emergent flag; rows where it is not ``"Y"`` are left out. Ignored when the column is absent.
    population : DataFrame or mapping, optional
        Subjects at risk: ADSL (safety population; arm column ``population_arm``) or ``{arm: N}``. When
        omitted, the subjects present in ``data`` are the denominator (a footnote says so).
    population_arm, population_subject : str
        Columns of ``population`` when it is a DataFrame.

    Returns
    -------
    DataFrame
        Columns ``level`` (``"ANY"``, ``"SOC"`` or ``"PT"``), ``soc``, ``pt``, ``arm``, ``n`` (subjects with the
        event), ``N`` (subjects at risk), ``pct`` (100 · n / N); subjects are counted once per term.
    """
    what = "AE incidence"
    require_columns(data, [subject, arm, soc, pt], what=what)
    rows = data
    if emergent and emergent in data.columns:
        rows = data[data[emergent].astype(str).str.upper() == "Y"]
    denom = _denominators(population, population_arm, population_subject, data, arm, subject, what)
    unknown = sorted(set(rows[arm].astype(str)) - set(denom))
    if unknown:
        raise DataError(f"{what}: arm(s) {unknown} of the events have no subjects at risk in the population "
                        f"(population arms: {sorted(denom)})")
    rows = rows.assign(_arm=rows[arm].astype(str))
    out = []

    def add(level: str, keys: list[str], frame: pd.DataFrame) -> None:
        grouped = frame.groupby([*keys, "_arm"])[subject].nunique()
        terms = frame[keys].drop_duplicates().itertuples(index=False) if keys else [()]
        for term in terms:
            for a, n_risk in denom.items():
                key = (*term, a)
                n = int(grouped.get(key if keys else a, 0)) if len(frame) else 0
                rec = {"level": level, "soc": term[0] if keys else "ANY EVENT",
                       "pt": term[1] if len(keys) > 1 else "", "arm": a, "n": n, "N": n_risk}
                rec["pct"] = 100.0 * n / n_risk
                out.append(rec)

    add("ANY", [], rows)
    add("SOC", [soc], rows)
    if pt is not None:
        add("PT", [soc, pt], rows)
    return pd.DataFrame(out, columns=["level", "soc", "pt", "arm", "n", "N", "pct"])


def fig_ae_incidence(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRTA",
    soc: str = "AEBODSYS",
    pt: str | None = "AEDECOD",
    by: str = "pt",
    emergent: str | None = "TRTEMFL",
    population: pd.DataFrame | Mapping[str, int] | None = None,
    population_arm: str = "TRT01A",
    arm_order: Sequence[str] | None = None,
    top: int | None = 15,
    number: str = "14.3.1",
    title: str | None = None,
    source: str = "ADAE",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Horizontal bars of the percentage of subjects with each adverse event, grouped by arm.

    Parameters
    ----------
    data : DataFrame
        ADAE (see :func:`ae_incidence`).
    subject, arm, soc, pt, emergent, population, population_arm
        As for :func:`ae_incidence`.
    by : {'pt', 'soc'}
        Preferred term or system organ class.
    arm_order : sequence of str, optional
        Display order.
    top : int or None
        Show the ``top`` most frequent terms (over all arms); ``None`` shows all.
    number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace per arm, told apart by colour and fill pattern.
    """
    what = f"Figure {number} (AE incidence)"
    if by not in ("pt", "soc"):
        raise DataError(f"{what}: by must be 'pt' or 'soc', got {by!r}")
    if by == "pt" and pt is None:
        raise DataError(f"{what}: by='pt' needs the preferred term column (pt=...)")
    table = ae_incidence(data, subject=subject, arm=arm, soc=soc, pt=pt if by == "pt" else None,
                         emergent=emergent, population=population, population_arm=population_arm)
    level = "PT" if by == "pt" else "SOC"
    table = table[table["level"] == level]
    table = table.assign(term=table["pt"] if by == "pt" else table["soc"])
    arms, styles = arms_and_styles(table, "arm", arm_order, what=what)
    totals = table.groupby("term")["n"].sum().sort_values(ascending=False, kind="stable")
    terms = list(totals.index[:top] if top else totals.index)
    fig = go.Figure()
    for a in arms:
        sub = table[(table["arm"] == a) & table["term"].isin(terms)].set_index("term").reindex(terms)
        n_risk = int(table.loc[table["arm"] == a, "N"].iloc[0]) if (table["arm"] == a).any() else 0
        fig.add_trace(go.Bar(y=terms, x=sub["pct"].fillna(0.0), orientation="h", name=f"{a} (N={n_risk})",
                             legendgroup=a, marker=styles[a].bar_marker(), customdata=sub["n"].fillna(0),
                             hovertemplate="%{y}: %{customdata} (%{x:.1f}%)<extra>" + a + "</extra>"))
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05, legend={"traceorder": "normal"})
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(title_text="Subjects with event (%)", rangemode="tozero")
    notes = ["Subjects are counted once per term; treatment-emergent events."]
    if population is None:
        notes.append("Denominator: subjects with at least one event record (no population given).")
    term_name = "preferred term" if by == "pt" else "system organ class"
    title = title or f"Incidence of treatment-emergent adverse events by {term_name} and arm"
    height = max(3.5, 1.8 + 0.16 * len(terms) * max(1, len(arms)))
    return finish_figure(fig, kind="ae_incidence", number=number, title=title, source=source,
                         footnotes=[*notes, *footnotes], height_in=min(height, 9.0))
