"""Efficacy figures (ICH E3 section 14.2): change over visits, trajectories, waterfall, forest, box/violin."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toolkit.errors import DataError
from toolkit.report._columns import require_columns, require_numeric
from toolkit.report.figures._common import arms_and_styles, axis_label, check_level, mean_ci, visit_order
from toolkit.report.style import finish_figure

__all__ = ["fig_box", "fig_forest", "fig_mean_change", "fig_trajectories", "fig_waterfall"]

_DODGE = 0.08  # horizontal offset between arms at one visit, in visit units


def fig_mean_change(
    data: pd.DataFrame,
    *,
    arm: str = "TRT01A",
    visit: str = "AVISIT",
    visit_num: str | None = "AVISITN",
    value: str = "CHG",
    ci_low: str | None = None,
    ci_high: str | None = None,
    visit_order: Sequence[str] | None = None,
    arm_order: Sequence[str] | None = None,
    level: float = 0.95,
    parameter: str = "Change from baseline",
    unit: str | None = None,
    number: str = "14.2.1",
    title: str = "Mean change from baseline over visits by arm",
    source: str = "ADEFF",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Mean change from baseline by visit and arm with confidence intervals.

    Two inputs are accepted:

    * subject-level rows (BDS: one row per subject and visit; columns ``arm``, ``visit``, ``value``), from
      which the mean and the t-based ``level`` confidence interval are computed per arm and visit; or
    * model estimates (e.g. MMRM LS means), one row per arm and visit, when ``ci_low`` and ``ci_high`` name
      the interval columns and ``value`` the estimate (e.g. ``value="estimate"``).

    Parameters
    ----------
    data : DataFrame
        Rows as described above. Baseline rows (change 0 or missing) may be included.
    arm, visit, value : str
        Columns: treatment arm (``TRT01A``), visit label (``AVISIT``), change (``CHG``) or estimate.
    visit_num : str or None
        Numeric visit column (``AVISITN``) used to order visits when present.
    ci_low, ci_high : str, optional
        Interval columns of pre-computed estimates; both or neither.
    visit_order, arm_order : sequence of str, optional
        Display order; defaults to ``visit_num`` order and the house arm order.
    level : float
        Confidence level for intervals computed here.
    parameter, unit : str
        Y-axis label and unit.
    number, title, source : str
        ICH E3 number, title and source data named in the footnote.
    footnotes : sequence of str
        Further footnote lines.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per arm (mean with error bars); arms differ in colour, dash and marker symbol.

    Examples
    --------
    >>> import pandas as pd
    >>> from toolkit.report import fig_mean_change
    >>> bds = pd.DataFrame({"TRT01A": ["EP", "EP", "MC", "MC"], "AVISIT": ["Week 4"] * 4,
    ...                     "CHG": [-1.0, -2.0, -0.5, -0.7]})
    >>> fig = fig_mean_change(bds, visit_num=None, number="14.2.1")
    >>> fig.layout.title.text
    'Figure 14.2.1 Mean change from baseline over visits by arm'
    >>> [trace.name for trace in fig.data]
    ['EP', 'MC']
    """
    what = f"Figure {number} (mean change)"
    if (ci_low is None) != (ci_high is None):
        raise DataError(f"{what}: give both ci_low and ci_high, or neither")
    require_columns(data, [arm, visit, value, ci_low, ci_high], what=what)
    check_level(level, what=what)
    y_all = require_numeric(data, value, what=what)
    arms, styles = arms_and_styles(data, arm, arm_order, what=what)
    visits = visit_order_ = _visits(data, visit, visit_num, visit_order, what)
    x_of = {v: i for i, v in enumerate(visit_order_)}
    fig = go.Figure()
    for k, a in enumerate(arms):
        sub = data[data[arm].astype(str) == a]
        rows = []
        for v in visits:
            at = sub[sub[visit].astype(str) == v]
            if at.empty:
                continue
            if ci_low is None:
                n, mean, lo, hi = mean_ci(y_all.loc[at.index], level)
            else:
                if len(at) != 1:
                    raise DataError(f"{what}: expected one estimate row for arm {a!r} at visit {v!r}, found {len(at)}")
                n = None
                mean = float(y_all.loc[at.index[0]])
                lo, hi = float(at[ci_low].iloc[0]), float(at[ci_high].iloc[0])
            rows.append((x_of[v], v, n, mean, lo, hi))
        if not rows:
            continue
        xs, labels, ns, means, los, his = zip(*rows, strict=True)
        offset = (k - (len(arms) - 1) / 2) * _DODGE
        style = styles[a]
        fig.add_trace(go.Scatter(
            x=np.asarray(xs, dtype=float) + offset, y=means, name=a, legendgroup=a,
            mode="lines+markers", line=style.line(), marker=style.marker(),
            error_y={"type": "data", "symmetric": False, "array": np.subtract(his, means),
                     "arrayminus": np.subtract(means, los), "color": style.color, "thickness": 1.2, "width": 4},
            customdata=np.column_stack([labels, [n if n is not None else "" for n in ns], los, his]),
            hovertemplate="%{customdata[0]}<br>mean %{y:.3g} [%{customdata[2]:.3g}, %{customdata[3]:.3g}]"
                          "<br>n=%{customdata[1]}<extra>" + a + "</extra>",
        ))
    fig.add_hline(y=0, line={"color": "#000000", "width": 0.8, "dash": "dot"})
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(visits))), ticktext=visits, title_text="Visit",
                     showgrid=False)
    ci_text = f"{level:.0%} CI" if ci_low is None else "CI"
    fig.update_yaxes(title_text=axis_label(f"{parameter}, mean ({ci_text})", unit))
    note = (f"Error bars: two-sided {level:.0%} t-based confidence interval of the mean."
            if ci_low is None else "Points: model estimates; error bars: confidence intervals as supplied.")
    return finish_figure(fig, kind="mean_change", number=number, title=title, source=source,
                         footnotes=[note, *footnotes])


def _visits(data, visit, visit_num, order, what) -> list[str]:
    return visit_order(data, visit, visit_num, order, what=what)


def fig_trajectories(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRT01A",
    visit: str = "AVISIT",
    visit_num: str | None = "AVISITN",
    value: str = "AVAL",
    visit_order: Sequence[str] | None = None,
    arm_order: Sequence[str] | None = None,
    show_mean: bool = True,
    parameter: str = "Analysis value",
    unit: str | None = None,
    number: str = "14.2.2",
    title: str = "Individual trajectories by arm",
    source: str = "ADEFF",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Each subject's values over visits, one thin line per subject, coloured and dashed by arm.

    Parameters
    ----------
    data : DataFrame
        BDS rows, one per subject and visit: ``subject``, ``arm``, ``visit``, ``value``.
    subject, arm, visit, value : str
        Column names (``USUBJID``, ``TRT01A``, ``AVISIT``, ``AVAL``).
    visit_num : str or None
        Numeric visit column used to order visits when present.
    visit_order, arm_order : sequence of str, optional
        Display order.
    show_mean : bool
        Add a bold arm-mean line per arm.
    parameter, unit, number, title, source, footnotes
        Labels, as for :func:`fig_mean_change`.

    Returns
    -------
    plotly.graph_objects.Figure
        Per arm one trace holding all subjects (lines separated by gaps), plus one mean trace when
        ``show_mean``.
    """
    what = f"Figure {number} (trajectories)"
    require_columns(data, [subject, arm, visit, value], what=what)
    y_all = require_numeric(data, value, what=what)
    arms, styles = arms_and_styles(data, arm, arm_order, what=what)
    visits = _visits(data, visit, visit_num, visit_order, what)
    x_of = {v: i for i, v in enumerate(visits)}
    frame = data.assign(_y=y_all, _x=data[visit].astype(str).map(x_of))
    fig = go.Figure()
    for a in arms:
        sub = frame[frame[arm].astype(str) == a].sort_values([subject, "_x"])
        xs: list[float | None] = []
        ys: list[float | None] = []
        ids: list[str | None] = []
        for sid, rows in sub.groupby(subject, sort=True):
            xs.extend(rows["_x"].tolist() + [None])
            ys.extend(rows["_y"].tolist() + [None])
            ids.extend([str(sid)] * len(rows) + [None])
        style = styles[a]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, name=a, legendgroup=a, mode="lines", connectgaps=False, text=ids,
            line={"color": style.color, "dash": style.dash, "width": 0.8}, opacity=0.45,
            hovertemplate="%{text}: %{y:.3g}<extra>" + a + "</extra>",
        ))
        if show_mean:
            means = sub.groupby("_x")["_y"].mean()
            fig.add_trace(go.Scatter(
                x=means.index.tolist(), y=means.tolist(), name=f"{a} mean", legendgroup=a,
                mode="lines+markers", line=style.line(width=3), marker=style.marker(9),
            ))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(visits))), ticktext=visits, title_text="Visit",
                     showgrid=False)
    fig.update_yaxes(title_text=axis_label(parameter, unit))
    return finish_figure(fig, kind="trajectories", number=number, title=title, source=source,
                         footnotes=["Thin lines: individual subjects; bold lines: arm means.", *footnotes])


def fig_waterfall(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRT01A",
    value: str = "CHG",
    arm_order: Sequence[str] | None = None,
    threshold: float | None = None,
    parameter: str = "Change from baseline",
    unit: str | None = None,
    number: str = "14.2.3",
    title: str = "Individual change from baseline (waterfall)",
    source: str = "ADEFF",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """One bar per subject, sorted from largest to smallest change, filled by arm.

    Parameters
    ----------
    data : DataFrame
        One row per subject (filter the visit first): ``subject``, ``arm``, ``value``.
    subject, arm, value : str
        Column names (``USUBJID``, ``TRT01A``, ``CHG``).
    arm_order : sequence of str, optional
        Legend order.
    threshold : float, optional
        A responder threshold drawn as a horizontal line.
    parameter, unit, number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace per arm; arms differ in colour and fill pattern.
    """
    what = f"Figure {number} (waterfall)"
    require_columns(data, [subject, arm, value], what=what)
    dup = data[subject].duplicated()
    if dup.any():
        raise DataError(f"{what}: one row per subject expected; {data.loc[dup, subject].iloc[0]!r} appears twice "
                        "(select one visit first)")
    frame = data.assign(_y=require_numeric(data, value, what=what)).dropna(subset=["_y"])
    frame = frame.sort_values("_y", ascending=False, kind="stable").reset_index(drop=True)
    frame["_rank"] = np.arange(1, len(frame) + 1)
    arms, styles = arms_and_styles(frame, arm, arm_order, what=what)
    fig = go.Figure()
    for a in arms:
        sub = frame[frame[arm].astype(str) == a]
        fig.add_trace(go.Bar(x=sub["_rank"], y=sub["_y"], name=a, legendgroup=a, marker=styles[a].bar_marker(),
                             text=sub[subject].astype(str), hovertemplate="%{text}: %{y:.3g}<extra>" + a + "</extra>"))
    if threshold is not None:
        fig.add_hline(y=float(threshold), line={"color": "#000000", "width": 1, "dash": "dash"})
    fig.update_layout(bargap=0.1, barmode="overlay")
    fig.update_xaxes(title_text="Subjects, ordered by change", showticklabels=False, ticks="", showgrid=False)
    fig.update_yaxes(title_text=axis_label(parameter, unit))
    return finish_figure(fig, kind="waterfall", number=number, title=title, source=source, footnotes=footnotes)


def fig_forest(
    data: pd.DataFrame,
    *,
    subgroup: str = "subgroup",
    level: str = "level",
    estimate: str = "estimate",
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    contrast: str | None = None,
    n: str | None = None,
    null_value: float = 0.0,
    effect_label: str = "Treatment difference",
    unit: str | None = None,
    number: str = "14.2.4",
    title: str = "Treatment effect by subgroup",
    source: str = "analysis results",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Forest plot: treatment effect and confidence interval per subgroup level.

    Parameters
    ----------
    data : DataFrame
        One row per subgroup level (and contrast): ``subgroup`` (e.g. ``"Sex"``, ``"Overall"``), ``level``
        (``"F"``), ``estimate``, ``ci_low``, ``ci_high`` (stats vocabulary), optional ``contrast`` and ``n``.
    subgroup, level, estimate, ci_low, ci_high : str
        Column names.
    contrast : str, optional
        Column naming the comparison (``"EP - MC"``); one trace per contrast, told apart by symbol.
    n : str, optional
        Column with the number of subjects, shown in the row label.
    null_value : float
        Value of no effect (0 for differences, 1 for ratios), drawn as a vertical line.
    effect_label, unit, number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per contrast (one trace when ``contrast`` is None).
    """
    what = f"Figure {number} (forest)"
    require_columns(data, [subgroup, level, estimate, ci_low, ci_high, contrast, n], what=what)
    est = require_numeric(data, estimate, what=what)
    lo = require_numeric(data, ci_low, what=what)
    hi = require_numeric(data, ci_high, what=what)
    if ((lo > est) | (hi < est)).any():
        raise DataError(f"{what}: every row needs {ci_low} <= {estimate} <= {ci_high}")
    frame = data.assign(_e=est, _lo=lo, _hi=hi)
    labels = []
    for _, row in frame.drop_duplicates([subgroup, level]).iterrows():
        text = f"{row[subgroup]}: {row[level]}" if str(row[level]) not in ("", "nan") else str(row[subgroup])
        if n is not None:
            text += f" (n={row[n]})"
        labels.append((row[subgroup], row[level], text))
    y_of = {(s, lv): len(labels) - i for i, (s, lv, _) in enumerate(labels)}
    groups = [None] if contrast is None else list(dict.fromkeys(frame[contrast].astype(str)))
    _, styles = arms_and_styles(pd.DataFrame({"c": groups if groups != [None] else ["effect"]}), "c", None,
                                what=what)
    fig = go.Figure()
    for k, g in enumerate(groups):
        sub = frame if g is None else frame[frame[contrast].astype(str) == g]
        style = styles[g if g is not None else "effect"]
        offset = (k - (len(groups) - 1) / 2) * 0.18
        ys = [y_of[(s, lv)] + offset for s, lv in zip(sub[subgroup], sub[level], strict=True)]
        fig.add_trace(go.Scatter(
            x=sub["_e"], y=ys, mode="markers", name=g or effect_label, showlegend=g is not None,
            marker=style.marker(9),
            error_x={"type": "data", "symmetric": False, "array": sub["_hi"] - sub["_e"],
                     "arrayminus": sub["_e"] - sub["_lo"], "color": style.color, "thickness": 1.5, "width": 3},
        ))
    fig.add_vline(x=float(null_value), line={"color": "#000000", "width": 1, "dash": "dash"})
    fig.update_yaxes(tickmode="array", tickvals=[y_of[(s, lv)] for s, lv, _ in labels],
                     ticktext=[t for _, _, t in labels], showgrid=False, range=[0.4, len(labels) + 0.6])
    fig.update_xaxes(title_text=axis_label(f"{effect_label} (95% CI)", unit), zeroline=False)
    height = max(3.0, 1.6 + 0.28 * len(labels))
    return finish_figure(fig, kind="forest", number=number, title=title, source=source, footnotes=footnotes,
                         height_in=height)


def fig_box(
    data: pd.DataFrame,
    *,
    arm: str = "TRT01A",
    visit: str = "AVISIT",
    visit_num: str | None = "AVISITN",
    value: str = "AVAL",
    kind: str = "box",
    visit_order: Sequence[str] | None = None,
    arm_order: Sequence[str] | None = None,
    parameter: str = "Analysis value",
    unit: str | None = None,
    number: str = "14.2.5",
    title: str | None = None,
    source: str = "ADEFF",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Distribution of a value by arm and visit as box plots or violins.

    Parameters
    ----------
    data : DataFrame
        BDS rows: ``arm``, ``visit``, ``value``.
    arm, visit, value : str
        Column names (``TRT01A``, ``AVISIT``, ``AVAL``).
    kind : {'box', 'violin'}
        Plot type.
    visit_num, visit_order, arm_order
        Ordering, as for :func:`fig_mean_change`.
    parameter, unit, number, title, source, footnotes
        Labels; the title defaults to "Distribution of <parameter> by arm and visit".

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per arm; boxes are filled with the arm's pattern-free colour and outlined, with the arm's
        marker symbol for outliers and its dash on the median/mean line (violins).
    """
    what = f"Figure {number} ({kind})"
    if kind not in ("box", "violin"):
        raise DataError(f"{what}: kind must be 'box' or 'violin', got {kind!r}")
    require_columns(data, [arm, visit, value], what=what)
    y = require_numeric(data, value, what=what)
    arms, styles = arms_and_styles(data, arm, arm_order, what=what)
    visits = _visits(data, visit, visit_num, visit_order, what)
    fig = go.Figure()
    for a in arms:
        mask = data[arm].astype(str) == a
        style = styles[a]
        common = {"x": data.loc[mask, visit].astype(str), "y": y[mask], "name": a, "legendgroup": a,
                  "marker": {"color": style.color, "symbol": style.symbol, "size": 5},
                  "line": {"color": style.color, "width": 1.5}}
        if kind == "box":
            fig.add_trace(go.Box(**common, boxmean=True, fillcolor=_tint(style.color), boxpoints="outliers"))
        else:
            fig.add_trace(go.Violin(**common, box_visible=True, meanline={"visible": True},
                                    fillcolor=_tint(style.color), points="outliers", spanmode="hard"))
    if kind == "box":
        fig.update_layout(boxmode="group")
    else:
        fig.update_layout(violinmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=visits, title_text="Visit", showgrid=False)
    fig.update_yaxes(title_text=axis_label(parameter, unit))
    # the label as written, as in every other title: lower-casing it would break names and acronyms
    title = title or f"Distribution of {parameter} by arm and visit"
    note = ("Box: quartiles; whiskers: 1.5 IQR; dashed line: mean; markers: outliers."
            if kind == "box" else "Violin: kernel density; inner box: quartiles; line: mean.")
    return finish_figure(fig, kind=kind, number=number, title=title, source=source, footnotes=[note, *footnotes])


def _tint(hex_color: str, alpha: float = 0.35) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
