"""Delivered waveform against its prescription and tolerance band; dose delivered per session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toolkit.errors import DataError
from toolkit.report._columns import require_columns, require_numeric
from toolkit.report.figures._common import arms_and_styles, axis_label
from toolkit.report.style import finish_figure

__all__ = ["fig_capture", "fig_dose", "fig_waveform"]


def _time_scale(span_s: float) -> tuple[float, str]:
    for factor, unit in ((1e6, "µs"), (1e3, "ms")):
        if span_s * factor < 5000:
            return factor, unit
    return 1.0, "s"


#: most points a drawn trace keeps; a deeper capture is drawn as its min/max envelope per time bucket
MAX_DRAWN_POINTS = 4000


def _drawn(x: pd.Series, y: pd.Series, how: str = "envelope") -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`MAX_DRAWN_POINTS` points of a trace: each bucket's lowest and highest sample in time
    order (``'envelope'``: no peak is lost), or every k-th sample (``'stride'``: smooth reference curves)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = xs.size
    if n <= MAX_DRAWN_POINTS:
        return xs, ys
    buckets = MAX_DRAWN_POINTS // 2
    if how == "stride":
        k = -(-n // MAX_DRAWN_POINTS)
        return xs[::k], ys[::k]
    edges = np.linspace(0, n, buckets + 1).astype(int)
    idx_lo = np.array([a + int(np.argmin(ys[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True)])
    idx_hi = np.array([a + int(np.argmax(ys[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True)])
    first = np.minimum(idx_lo, idx_hi)
    second = np.maximum(idx_lo, idx_hi)
    order = np.column_stack((first, second)).ravel()
    return xs[order], ys[order]


def _band_outline(x: pd.Series, lo: pd.Series, hi: pd.Series) -> tuple[list, list]:
    """The band as closed outlines, one per stretch of rows where it is given, separated by gaps (None): along
    its upper edge, back along its lower one. At most about :data:`MAX_DRAWN_POINTS` points in all."""
    xs, los, his = (np.asarray(v, dtype=float) for v in (x, lo, hi))
    given = np.isfinite(los) & np.isfinite(his)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], given.astype(np.int8), [0]))))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    total = int(sum(b - a for a, b in runs))
    step = max(1, -(-2 * total // MAX_DRAWN_POINTS))
    bx: list = []
    by: list = []
    for a, b in runs:
        idx = np.unique(np.concatenate((np.arange(a, b, step), [b - 1])))  # both ends of every stretch
        bx += [*xs[idx], *xs[idx][::-1], xs[idx[0]], None]
        by += [*his[idx], *los[idx][::-1], his[idx[0]], None]
    return bx, by


def fig_waveform(
    data: pd.DataFrame,
    *,
    time: str = "time_s",
    measured: str = "measured",
    prescribed: str | None = "prescribed",
    lower: str | None = "lower",
    upper: str | None = "upper",
    quantity: str = "Voltage",
    unit: str = "V",
    number: str = "14.3.5",
    title: str = "Delivered waveform against its prescription",
    source: str = "waveform capture",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """A captured waveform over its prescribed shape and tolerance band; samples outside are marked.

    Parameters
    ----------
    data : DataFrame
        One row per sample: ``time`` in seconds, ``measured`` (SI unit ``unit``), optional ``prescribed``,
        ``lower`` and ``upper`` (the tolerance envelope, both or neither; blank in the same rows where the
        level is not checked: there no band is drawn and no sample is outside it).
    time, measured, prescribed, lower, upper : str
        Column names; pass ``None`` for columns that do not exist.
    quantity, unit : str
        Y-axis label and SI unit of the values.
    number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: the band (filled outlines), prescribed (dashed), measured (solid), out-of-band samples
        (markers); ``layout.meta["n_outside"]`` holds the number of samples outside the band. A capture
        deeper than :data:`MAX_DRAWN_POINTS` is drawn as its min/max envelope (every peak kept); the
        out-of-band count and markers use every sample.
    """
    what = f"Figure {number} (waveform)"
    if (lower is None) != (upper is None):
        raise DataError(f"{what}: give both lower and upper tolerance columns, or neither")
    require_columns(data, [time, measured, prescribed, lower, upper], what=what)
    t = require_numeric(data, time, what=what)
    if t.diff().dropna().lt(0).any():
        raise DataError(f"{what}: column {time!r} must be increasing (seconds since the trigger)")
    factor, t_unit = _time_scale(float(t.max() - t.min()))
    x = t * factor
    y = require_numeric(data, measured, what=what)
    fig = go.Figure()
    n_outside = 0
    if lower is not None:
        lo = require_numeric(data, lower, what=what)
        hi = require_numeric(data, upper, what=what)
        if (lo > hi).any():
            raise DataError(f"{what}: {lower!r} exceeds {upper!r} in some rows")
        if lo.isna().ne(hi.isna()).any():
            raise DataError(f"{what}: {lower!r} and {upper!r} must be blank in the same rows (where the level "
                            "is not checked)")
        bx, by = _band_outline(x, lo, hi)
        fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", line={"width": 0.5, "color": "#7F7F7F"}, fill="toself",
                                 fillcolor="rgba(127,127,127,0.25)", name="tolerance band", hoverinfo="skip"))
    if prescribed is not None:
        xp, yp = _drawn(x, require_numeric(data, prescribed, what=what), "stride")
        fig.add_trace(go.Scatter(x=xp, y=yp, mode="lines",
                                 name="prescribed", line={"color": "#000000", "dash": "dash", "width": 1.5}))
    xd, yd = _drawn(x, y)
    fig.add_trace(go.Scatter(x=xd, y=yd, mode="lines", name="delivered", line={"color": "#0072B2", "width": 1.5}))
    notes = list(footnotes)
    if lower is not None:
        out = (y < lo) | (y > hi)  # false where the band is blank (NaN): no level checked there
        n_outside = int(out.sum())
        notes.append(f"Samples outside the band: {n_outside} of the {int(lo.notna().sum()):,} where it is given"
                     + (" (marked ×)." if n_outside else "."))
        fig.add_trace(go.Scatter(x=x[out], y=y[out], mode="markers", name=f"outside band (n={n_outside})",
                                 marker={"symbol": "x", "size": 7, "color": "#D55E00"}))
    fig.update_xaxes(title_text=f"Time ({t_unit})")
    fig.update_yaxes(title_text=axis_label(quantity, unit))
    fig = finish_figure(fig, kind="waveform", number=number, title=title, source=source, footnotes=notes)
    fig.update_layout(meta={**fig.layout.meta, "n_outside": n_outside})
    return fig


def fig_capture(
    capture: Mapping[str, Any],
    *,
    number: str = "14.3.5",
    title: str = "Delivered waveform",
    source: str = "waveform capture",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """A stored scope capture over its prescribed envelope (:func:`fig_waveform`), with notes that say what
    the band is.

    Parameters
    ----------
    capture : mapping
        As :func:`toolkit.delivery.captures.load_capture` returns it: ``time_s``, ``volts_V``, ``amps_A``,
        ``meta`` and, when stored, ``envelope_V`` (electroporation: the electrode voltage is drawn) or
        ``envelope_A`` (microcurrent: the current). A capture without an envelope is drawn alone (the voltage,
        or the current when no voltage was recorded), older ``prescribed_V``/``lower_V``/``upper_V`` arrays
        are used when present.
    number, title, source, footnotes
        Labels; the notes about the envelope come after ``footnotes``.
    """
    from toolkit.delivery.envelope import BAND_FROM, BAND_TO, envelope_samples

    what = f"Figure {number} (waveform)"
    if "time_s" not in capture:
        raise DataError(f"{what}: the capture has no time_s array")
    meta = capture.get("meta") if isinstance(capture.get("meta"), Mapping) else {}
    envelope = next((k for k in ("envelope_V", "envelope_A") if k in capture), None)
    if envelope is not None:
        unit = envelope[-1]
    else:
        has_v = "volts_V" in capture and np.any(capture["volts_V"])
        unit = "V" if has_v or "amps_A" not in capture else "A"
    key = "volts_V" if unit == "V" else "amps_A"
    if key not in capture:
        raise DataError(f"{what}: the capture has no {key} array")
    frame = pd.DataFrame({"time_s": capture["time_s"], "measured": capture[key]})
    cols: dict[str, str | None] = {"prescribed": None, "lower": None, "upper": None}
    if envelope is not None:
        for name, values in envelope_samples(capture[envelope], capture["time_s"]).items():
            frame[name] = values
            cols[name] = name
        if not np.isfinite(frame["lower"]).any():
            cols["lower"] = cols["upper"] = None
    else:
        for name in cols:
            if f"{name}_{unit}" in capture:
                frame[name] = capture[f"{name}_{unit}"]
                cols[name] = name
        if (cols["lower"] is None) != (cols["upper"] is None):
            cols["lower"] = cols["upper"] = None
    described = meta.get("envelope") or {}
    notes = list(footnotes)
    quantity = described.get("quantity", "electrode voltage" if unit == "V" else "current")
    if envelope is None and cols["prescribed"] is None:
        notes.append("No prescribed envelope was stored with this capture"
                     + (f" ({meta['envelope_missing']})." if meta.get("envelope_missing") else "."))
    elif described.get("unchecked"):
        notes.append(f"Dashed: the prescribed {quantity}. Its level is not checked in this capture: "
                     f"{described['unchecked']}.")
    elif envelope is not None:
        notes.append(f"Dashed: the prescribed {quantity} as the instrument was set, from the trigger. Grey band: "
                     f"what the session accepts, the study's tolerance ({described.get('band', 'as recorded')}), "
                     f"where it checks the level: from {BAND_FROM:.0%} to {BAND_TO:.0%} of each pulse, carrier "
                     "half-cycle or phase. Edges are judged by the pulse width; off-time and pauses are not "
                     "checked by level.")
    scale = meta.get("scale")
    if isinstance(scale, int | float) and 0 < scale < 1:
        notes.append(f"Captured during a ramp, at {scale:.0%} of the full amplitude.")
    return fig_waveform(frame, **cols, quantity=quantity[:1].upper() + quantity[1:], unit=unit, number=number,
                        title=title, source=source, footnotes=notes)


def fig_dose(
    data: pd.DataFrame,
    *,
    subject: str = "USUBJID",
    arm: str = "TRT01A",
    session: str = "SESSION",
    value: str = "AVAL",
    prescribed: str | None = None,
    arm_order: Sequence[str] | None = None,
    parameter: str = "Delivered dose",
    unit: str | None = None,
    number: str = "14.3.6",
    title: str = "Dose delivered per session by arm",
    source: str = "ADEX",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Dose delivered at each session: every subject's value and the arm mean over sessions.

    Parameters
    ----------
    data : DataFrame
        One row per subject and session: ``subject``, ``arm``, ``session`` (number), ``value``, optional
        ``prescribed`` (dose the prescription asked for).
    subject, arm, session, value, prescribed : str
        Column names.
    arm_order : sequence of str, optional
        Display order.
    parameter, unit, number, title, source, footnotes
        Labels (e.g. ``parameter="Delivered charge", unit="mC"``).

    Returns
    -------
    plotly.graph_objects.Figure
        Per arm two traces: subjects' doses (markers in the arm's symbol) and the arm mean (line in the arm's
        dash); plus one prescribed trace when ``prescribed`` is given.
    """
    what = f"Figure {number} (dose)"
    require_columns(data, [subject, arm, session, value, prescribed], what=what)
    s = require_numeric(data, session, what=what)
    v = require_numeric(data, value, what=what)
    arms, styles = arms_and_styles(data, arm, arm_order, what=what)
    frame = data.assign(_s=s, _v=v)
    fig = go.Figure()
    for k, a in enumerate(arms):
        sub = frame[frame[arm].astype(str) == a]
        style = styles[a]
        offset = (k - (len(arms) - 1) / 2) * 0.15
        fig.add_trace(go.Scatter(x=sub["_s"] + offset, y=sub["_v"], mode="markers", name=f"{a} subjects",
                                 legendgroup=a, text=sub[subject].astype(str),
                                 marker={**style.marker(6), "opacity": 0.6},
                                 hovertemplate="%{text}: %{y:.3g}<extra>" + a + "</extra>"))
        means = sub.groupby("_s")["_v"].mean()
        fig.add_trace(go.Scatter(x=means.index + offset, y=means.values, mode="lines+markers", name=f"{a} mean",
                                 legendgroup=a, line=style.line(), marker=style.marker(8)))
    if prescribed is not None:
        rx = frame.assign(_p=require_numeric(frame, prescribed, what=what)).groupby("_s")["_p"].mean()
        fig.add_trace(go.Scatter(x=rx.index, y=rx.values, mode="lines", name="prescribed",
                                 line={"color": "#000000", "dash": "longdash", "width": 1, "shape": "hvh"}))
    sessions = np.sort(frame["_s"].dropna().unique())
    fig.update_xaxes(title_text="Session", tickmode="array", tickvals=sessions.tolist(), showgrid=False)
    fig.update_yaxes(title_text=axis_label(parameter, unit))
    return finish_figure(fig, kind="dose", number=number, title=title, source=source, footnotes=footnotes)
