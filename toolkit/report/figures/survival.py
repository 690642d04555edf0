"""Kaplan–Meier estimate and figure of time to first visible improvement."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toolkit.errors import DataError
from toolkit.report._columns import require_columns, require_numeric
from toolkit.report.figures._common import arms_and_styles, check_level
from toolkit.report.style import SMALL_FONT_PT, finish_figure, pt_to_px

__all__ = ["fig_km", "kaplan_meier"]


def kaplan_meier(
    data: pd.DataFrame, *, time: str = "AVAL", censor: str = "CNSR", level: float = 0.95
) -> pd.DataFrame:
    """Product-limit estimate of the event-free probability with Greenwood variance and log-log CI.

    Parameters
    ----------
    data : DataFrame
        One row per subject: ``time`` (time to event or censoring, ≥ 0) and ``censor`` (ADaM ``CNSR``:
        0 = event observed, 1 = censored).
    time, censor : str
        Column names.
    level : float
        Confidence level of the pointwise interval.

    Returns
    -------
    DataFrame
        One row per distinct event time (plus time 0): ``time``, ``n_risk``, ``n_event``, ``n_censor``,
        ``survival``, ``se`` (Greenwood), ``ci_low``, ``ci_high`` (log(−log) transform, as SAS PROC LIFETEST's
        default).

    References
    ----------
    Kaplan EL, Meier P (1958). Nonparametric estimation from incomplete observations. JASA 53:457–481.

    Examples
    --------
    >>> import pandas as pd
    >>> km = kaplan_meier(pd.DataFrame({"AVAL": [6, 6, 6, 7, 10], "CNSR": [0, 0, 1, 0, 1]}))
    >>> km[["time", "n_risk", "n_event", "survival"]].round(3).to_dict("records")[1]
    {'time': 6.0, 'n_risk': 5, 'n_event': 2, 'survival': 0.6}
    """
    what = "Kaplan-Meier"
    require_columns(data, [time, censor], what=what)
    check_level(level, what=what)
    t = require_numeric(data, time, what=what)
    c = require_numeric(data, censor, what=what)
    if t.isna().any() or c.isna().any():
        raise DataError(f"{what}: columns {time!r} and {censor!r} must not have missing values")
    if (t < 0).any():
        raise DataError(f"{what}: column {time!r} has negative times")
    if not c.isin([0.0, 1.0]).all():
        raise DataError(f"{what}: column {censor!r} must be 0 (event) or 1 (censored)")
    t_arr, event = t.to_numpy(), (c.to_numpy() == 0)
    times = np.unique(t_arr)
    from scipy import stats  # scipy.stats is slow to import; only needed here
    z = stats.norm.ppf(0.5 + level / 2)
    rows = [{"time": 0.0, "n_risk": len(t_arr), "n_event": 0, "n_censor": 0, "survival": 1.0, "se": 0.0,
             "ci_low": 1.0, "ci_high": 1.0}]
    surv, greenwood = 1.0, 0.0
    for ti in times:
        at_risk = int((t_arr >= ti).sum())
        d = int(((t_arr == ti) & event).sum())
        cens = int(((t_arr == ti) & ~event).sum())
        if d:
            surv *= 1.0 - d / at_risk
            if at_risk > d:
                greenwood += d / (at_risk * (at_risk - d))
            else:
                greenwood = float("inf")
        se = surv * np.sqrt(greenwood) if np.isfinite(greenwood) else float("nan")
        if 0.0 < surv < 1.0 and np.isfinite(greenwood):
            # log(-log S) interval keeps the bounds inside (0, 1)
            se_loglog = np.sqrt(greenwood) / abs(np.log(surv))
            lo, hi = surv ** np.exp(z * se_loglog), surv ** np.exp(-z * se_loglog)
        else:
            lo = hi = float("nan") if surv == 0.0 else 1.0
        if ti == 0.0 and rows:
            rows[0].update(n_event=d, n_censor=cens, survival=surv, se=se, ci_low=lo, ci_high=hi)
        elif d or cens:
            rows.append({"time": float(ti), "n_risk": at_risk, "n_event": d, "n_censor": cens, "survival": surv,
                         "se": se, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def fig_km(
    data: pd.DataFrame,
    *,
    arm: str = "TRT01A",
    time: str = "AVAL",
    censor: str = "CNSR",
    arm_order: Sequence[str] | None = None,
    risk_times: Sequence[float] | None = None,
    incidence: bool = True,
    level: float = 0.95,
    time_unit: str = "days",
    number: str = "14.2.6",
    title: str = "Time to first visible improvement (Kaplan–Meier)",
    source: str = "ADTTE",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Kaplan–Meier curves by arm as step functions with a confidence band and a number-at-risk table.

    Parameters
    ----------
    data : DataFrame
        ADaM time-to-event rows, one per subject: ``arm``, ``time`` (``AVAL``), ``censor`` (``CNSR``, 0 = event).
    arm, time, censor : str
        Column names.
    arm_order : sequence of str, optional
        Display order.
    risk_times : sequence of float, optional
        Times at which the number at risk is shown (and the time axis ticked); default: the observed times when
        there are at most 12 whole-number ones (sessions of assessment), else six evenly spaced times.
    incidence : bool
        Plot the cumulative proportion improved (1 − S) rather than the proportion not yet improved (S).
    level : float
        Confidence level of the band.
    time_unit, number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        Per arm: band lower edge, band upper edge (filled to it), the step curve named after the arm, a trace
        of censoring marks when any subject is censored, and the number-at-risk row (text trace, lower panel).
    """
    what = f"Figure {number} (Kaplan-Meier)"
    require_columns(data, [arm, time, censor], what=what)
    arms, styles = arms_and_styles(data, arm, arm_order, what=what)
    t_max = float(require_numeric(data, time, what=what).max())
    if risk_times is None:
        observed = np.unique(pd.to_numeric(data[time], errors="coerce").dropna().to_numpy(dtype=float))
        if len(observed) <= 12 and np.all(observed == np.round(observed)):
            risk_times = np.unique(np.concatenate([[0.0], observed]))  # assessment times, e.g. sessions 4, 8, 12
        else:
            risk_times = np.linspace(0.0, t_max, 6)
    risk_times = [float(x) for x in risk_times]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.78, 0.22], shared_xaxes=True, vertical_spacing=0.1)
    for k, a in enumerate(arms):
        sub = data[data[arm].astype(str) == a]
        if sub.empty:
            continue
        km = kaplan_meier(sub, time=time, censor=censor, level=level)
        style = styles[a]
        surv, lo, hi = km["survival"], km["ci_low"], km["ci_high"]
        # where S reaches 0 (or 1) the log-log interval is undefined: the band closes onto the curve there
        lo, hi = lo.fillna(surv), hi.fillna(surv)
        if incidence:
            surv, lo, hi = 1 - surv, 1 - hi, 1 - lo
        fill = style.color.lstrip("#")
        rgba = f"rgba({int(fill[0:2], 16)},{int(fill[2:4], 16)},{int(fill[4:6], 16)},0.15)"
        last_t = float(pd.to_numeric(sub[time]).max())
        # the band holds its last value up to the arm's last time, as the step curve does
        band_t = [*km["time"].tolist(), last_t]
        fig.add_trace(go.Scatter(x=band_t, y=[*lo.tolist(), float(lo.iloc[-1])], mode="lines",
                                 line={"width": 0, "shape": "hv"}, showlegend=False, legendgroup=a,
                                 hoverinfo="skip", name=f"{a} CI low"), 1, 1)
        fig.add_trace(go.Scatter(x=band_t, y=[*hi.tolist(), float(hi.iloc[-1])], mode="lines",
                                 line={"width": 0, "shape": "hv"}, fill="tonexty", fillcolor=rgba,
                                 showlegend=False, legendgroup=a, hoverinfo="skip", name=f"{a} CI high"), 1, 1)
        xs = [*km["time"].tolist(), last_t]
        ys = [*surv.tolist(), float(surv.iloc[-1])]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=a, legendgroup=a,
                                 line={**style.line(), "shape": "hv"}), 1, 1)
        cens = km[km["n_censor"] > 0]
        if not cens.empty:
            fig.add_trace(go.Scatter(x=cens["time"], y=surv[cens.index], mode="markers", name=f"{a} censored",
                                     legendgroup=a, showlegend=False,
                                     marker={"symbol": "line-ns-open", "size": 9, "color": style.color,
                                             "line": {"width": 1.5, "color": style.color}}), 1, 1)
        counts = [int((pd.to_numeric(sub[time]) >= rt).sum()) for rt in risk_times]
        fig.add_trace(go.Scatter(x=risk_times, y=[k] * len(risk_times), mode="text", text=[str(c) for c in counts],
                                 textfont={"size": pt_to_px(SMALL_FONT_PT), "color": style.color},
                                 showlegend=False, hoverinfo="skip", name=f"{a} at risk"), 2, 1)
    fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%",
                     title_text="Cumulative proportion improved" if incidence else "Proportion not yet improved",
                     row=1, col=1)
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(arms))), ticktext=arms, range=[len(arms) - 0.5, -0.5],
                     showgrid=False, showline=False, ticks="", title_text="At risk", row=2, col=1)
    fig.update_xaxes(showticklabels=True, tickmode="array", tickvals=risk_times,
                     ticktext=[f"{t:g}" for t in risk_times], row=1, col=1)
    fig.update_xaxes(tickmode="array", tickvals=risk_times, showline=False, ticks="", showgrid=False,
                     title_text=f"Time ({time_unit})", row=2, col=1)
    note = f"Shaded: pointwise {level:.0%} confidence band (log-log); ticks: censored subjects."
    return finish_figure(fig, kind="km", number=number, title=title, source=source, footnotes=[note, *footnotes],
                         height_in=5.2)
