"""Figures of the sensitivity analyses: the tipping point of a delta-adjusted imputation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toolkit.errors import DataError
from toolkit.report._columns import require_columns, require_numeric
from toolkit.report.figures._common import arms_and_styles, axis_label
from toolkit.report.style import finish_figure

__all__ = ["fig_tipping_point"]


def fig_tipping_point(
    data: pd.DataFrame,
    *,
    delta: str = "delta",
    estimate: str = "estimate",
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    contrast: str | None = "comparison",
    tipping: str | None = "tipping_delta",
    unit: str | None = None,
    number: str = "14.2.9",
    title: str = "Tipping-point analysis",
    source: str = "analysis results",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Treatment difference and its confidence interval against the delta added to imputed values.

    Parameters
    ----------
    data : DataFrame
        One row per delta (and comparison): ``delta, estimate, ci_low, ci_high`` and optionally the
        comparison and the tipping delta (the same on every row of a comparison).
    delta, estimate, ci_low, ci_high, contrast, tipping : str
        Column names; ``contrast`` draws one line per comparison, ``tipping`` a dotted vertical line where
        the conclusion changes.
    unit, number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        Per comparison an estimate line with a shaded interval; a dashed line at no difference.
    """
    what = f"Figure {number} (tipping point)"
    require_columns(data, [delta, estimate, ci_low, ci_high, contrast, tipping], what=what)
    if data.empty:
        raise DataError(f"{what}: no rows to draw")
    frame = data.assign(
        _d=require_numeric(data, delta, what=what),
        _e=require_numeric(data, estimate, what=what),
        _lo=require_numeric(data, ci_low, what=what),
        _hi=require_numeric(data, ci_high, what=what),
    )
    key = contrast or "_all"
    if contrast is None:
        frame[key] = "difference"
    groups = list(dict.fromkeys(frame[key].astype(str)))
    _, styles = arms_and_styles(pd.DataFrame({"c": groups}), "c", None, what=what)
    fig = go.Figure()
    for k, g in enumerate(groups):
        sub = frame[frame[key].astype(str) == g].sort_values("_d")
        style = styles[g]
        band = np.r_[sub["_hi"].to_numpy(), sub["_lo"].to_numpy()[::-1]]
        fig.add_trace(go.Scatter(
            x=np.r_[sub["_d"].to_numpy(), sub["_d"].to_numpy()[::-1]], y=band, fill="toself", mode="lines",
            line={"width": 0}, fillcolor=style.color, opacity=0.18, hoverinfo="skip", showlegend=False,
            name=f"{g} 95% CI",
        ))
        fig.add_trace(go.Scatter(x=sub["_d"], y=sub["_e"], mode="lines+markers", name=g, line=style.line(2),
                                 marker=style.marker(6)))
        if tipping is not None:
            value = pd.to_numeric(sub[tipping], errors="coerce").dropna()
            if len(value) and np.isfinite(value.iloc[0]) and value.iloc[0] != 0:
                # one label per comparison, stacked so that two close tipping points stay legible
                fig.add_vline(x=float(value.iloc[0]), line={"color": style.color, "width": 1.5, "dash": "dot"})
                fig.add_annotation(x=float(value.iloc[0]), y=1.0 - 0.08 * k, yref="paper", xanchor="left",
                                   showarrow=False, text=f" {g}: {value.iloc[0]:.3g}",
                                   font={"color": style.color})
    fig.add_hline(y=0.0, line={"color": "#000000", "width": 1, "dash": "dash"})
    fig.update_xaxes(title_text=axis_label("Delta added to values imputed after an intercurrent event", unit))
    fig.update_yaxes(title_text=axis_label("Treatment difference (95% CI)", unit))
    return finish_figure(fig, kind="tipping_point", number=number, title=title, source=source,
                         footnotes=footnotes)
