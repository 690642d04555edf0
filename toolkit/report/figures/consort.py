"""CONSORT flow diagram drawn with plotly shapes and annotations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from toolkit.errors import DataError
from toolkit.report._columns import require_columns
from toolkit.report.figures._common import arms_and_styles
from toolkit.report.style import finish_figure

__all__ = ["ConsortCounts", "consort_counts", "fig_consort"]

_YES = {"Y", "YES", "1", "TRUE"}


@dataclass(frozen=True)
class ConsortCounts:
    """Subject counts of a CONSORT diagram.

    Attributes
    ----------
    assessed : int
        Assessed for eligibility (screened).
    randomised : int
        Randomised.
    allocated, lost, analysed : dict of str to int
        Per arm: allocated, discontinued / lost to follow-up, analysed.
    lost_reasons : dict of str to dict of str to int
        Per arm, discontinuation reason → count.
    """

    assessed: int
    randomised: int
    allocated: dict[str, int]
    lost: dict[str, int]
    analysed: dict[str, int]
    lost_reasons: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def excluded(self) -> int:
        """Assessed but not randomised."""
        return self.assessed - self.randomised


def _flag(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.upper().isin(_YES)


def consort_counts(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRT01P",
    randomised: str | None = "RANDFL",
    status: str | None = "EOSSTT",
    completed_value: str = "COMPLETED",
    reason: str | None = "DCSREAS",
    analysed: str | None = "EFFFL",
    assessed: int | None = None,
    arm_order: Sequence[str] | None = None,
) -> ConsortCounts:
    """Count subjects for a CONSORT diagram from a subject-level dataset (ADSL).

    Parameters
    ----------
    data : DataFrame
        One row per subject: ``subject``, ``arm`` (planned arm = allocation) and the optional flag columns.
    subject, arm : str
        Column names.
    randomised : str or None
        ``"Y"``/``"N"`` flag; when the column is absent every row counts as randomised.
    status, completed_value : str
        End-of-study status column and its "completed" value; other non-missing values except ``ONGOING``
        count as lost.
    reason : str or None
        Discontinuation reason column, counted per arm.
    analysed : str or None
        Analysis population flag (``EFFFL``, ``FASFL``, ``ITTFL``); absent column: all randomised analysed.
    assessed : int, optional
        Number screened when the dataset holds randomised subjects only; defaults to the row count.
    arm_order : sequence of str, optional
        Arm display order.

    Returns
    -------
    ConsortCounts
    """
    what = "CONSORT diagram"
    require_columns(data, [subject, arm], what=what)
    if data[subject].duplicated().any():
        raise DataError(f"{what}: {subject!r} must hold one row per subject (ADSL)")
    rand_mask = _flag(data[randomised]) if randomised and randomised in data.columns else pd.Series(True, data.index)
    rand = data[rand_mask]
    arms, _ = arms_and_styles(rand, arm, arm_order, what=what)
    n_assessed = len(data) if assessed is None else int(assessed)
    if n_assessed < len(rand):
        raise DataError(f"{what}: assessed={n_assessed} is less than the {len(rand)} randomised subjects")
    allocated, lost, analysed_n, reasons = {}, {}, {}, {}
    for a in arms:
        sub = rand[rand[arm].astype(str) == a]
        allocated[a] = len(sub)
        if status and status in sub.columns:
            st = sub[status].astype(str).str.strip().str.upper()
            # still in the study is neither completed nor lost
            lost_mask = sub[status].notna() & (st != "") & (st != completed_value.upper()) & (st != "ONGOING")
        else:
            lost_mask = pd.Series(False, sub.index)
        lost[a] = int(lost_mask.sum())
        if reason and reason in sub.columns:
            reasons[a] = {str(k): int(v) for k, v in sub.loc[lost_mask, reason].fillna("Not stated")
                          .astype(str).str.strip().replace("", "Not stated").value_counts().items()}
        analysed_n[a] = int(_flag(sub[analysed]).sum()) if analysed and analysed in sub.columns else len(sub)
    return ConsortCounts(assessed=n_assessed, randomised=len(rand), allocated=allocated, lost=lost,
                         analysed=analysed_n, lost_reasons=reasons)


def fig_consort(
    data: pd.DataFrame | ConsortCounts,
    *,
    subject: str = "USUBJID",
    arm: str = "TRT01P",
    randomised: str | None = "RANDFL",
    status: str | None = "EOSSTT",
    reason: str | None = "DCSREAS",
    analysed: str | None = "EFFFL",
    assessed: int | None = None,
    arm_order: Sequence[str] | None = None,
    max_reasons: int = 3,
    number: str = "14.1.1",
    title: str = "CONSORT flow diagram",
    source: str = "ADSL",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """CONSORT 2010 flow diagram: assessed, excluded, randomised, allocated, lost and analysed per arm.

    Parameters
    ----------
    data : DataFrame or ConsortCounts
        ADSL (see :func:`consort_counts` for the columns) or counts already made.
    subject, arm, randomised, status, reason, analysed, assessed, arm_order
        Passed to :func:`consort_counts`.
    max_reasons : int
        Discontinuation reasons listed per arm (the rest are summed as "other").
    number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        Boxes are layout shapes, texts are annotations (no data traces); counts are kept in
        ``layout.meta["consort"]``.
    """
    counts = data if isinstance(data, ConsortCounts) else consort_counts(
        data, subject=subject, arm=arm, randomised=randomised, status=status, reason=reason,
        analysed=analysed, assessed=assessed, arm_order=arm_order)
    arms = list(counts.allocated)
    fig = go.Figure()
    n_arms = len(arms)
    box_w = min(0.9 / n_arms, 0.3)

    def box(x: float, y: float, w: float, h: float, text: str) -> None:
        fig.add_shape(type="rect", xref="paper", yref="paper", x0=x - w / 2, x1=x + w / 2, y0=y - h / 2,
                      y1=y + h / 2, line={"color": "#000000", "width": 1}, fillcolor="#FFFFFF", layer="below")
        fig.add_annotation(x=x, y=y, xref="paper", yref="paper", text=text, showarrow=False, align="center",
                           xanchor="center", yanchor="middle", valign="middle",
                           font={"size": 12})

    def line(x0: float, y0: float, x1: float, y1: float) -> None:
        fig.add_shape(type="line", xref="paper", yref="paper", x0=x0, y0=y0, x1=x1, y1=y1,
                      line={"color": "#000000", "width": 1})

    y_assess, y_rand, y_alloc, y_lost, y_anal = 0.95, 0.72, 0.47, 0.24, 0.04
    box(0.35, y_assess, 0.34, 0.08, f"Assessed for eligibility (n={counts.assessed})")
    box(0.8, (y_assess + y_rand) / 2, 0.3, 0.08, f"Excluded (n={counts.excluded})")
    box(0.35, y_rand, 0.3, 0.08, f"Randomised (n={counts.randomised})")
    line(0.35, y_assess - 0.04, 0.35, y_rand + 0.04)
    line(0.35, (y_assess + y_rand) / 2, 0.65, (y_assess + y_rand) / 2)
    centres = [(i + 0.5) / n_arms for i in range(n_arms)]
    line(0.35, y_rand - 0.04, 0.35, y_rand - 0.09)
    line(min(centres), y_rand - 0.09, max(centres), y_rand - 0.09)
    for a, x in zip(arms, centres, strict=True):
        line(x, y_rand - 0.09, x, y_alloc + 0.07)
        box(x, y_alloc, box_w, 0.14, f"<b>{a}</b><br>Allocated (n={counts.allocated[a]})")
        reasons = sorted(counts.lost_reasons.get(a, {}).items(), key=lambda kv: -kv[1])
        shown = reasons[:max_reasons]
        other = sum(v for _, v in reasons[max_reasons:])
        lines = [f"Discontinued (n={counts.lost[a]})"] + [f"{k}: {v}" for k, v in shown]
        if other:
            lines.append(f"Other: {other}")
        box(x, y_lost, box_w, 0.2, "<br>".join(lines))
        box(x, y_anal, box_w, 0.08, f"Analysed (n={counts.analysed[a]})")
        line(x, y_alloc - 0.07, x, y_lost + 0.1)
        line(x, y_lost - 0.1, x, y_anal + 0.04)
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[0, 1])
    fig = finish_figure(fig, kind="consort", number=number, title=title, source=source, footnotes=footnotes,
                        height_in=6.0, axis_space_px=12)
    fig.update_layout(meta={**fig.layout.meta, "consort": {
        "assessed": counts.assessed, "randomised": counts.randomised, "allocated": counts.allocated,
        "lost": counts.lost, "analysed": counts.analysed}})
    return fig
