"""The house style of every report figure: one plotly template, arm styles, numbered titles and footnotes.

Plotly measures fonts and sizes in CSS pixels (1/96 inch); Chromium prints them at that scale, so a
10 pt font is 10 × 96 / 72 ≈ 13.3 px in the HTML and exactly 10 pt in the PDF and SVG.

Arms are told apart by colour (the Okabe–Ito palette, safe for the common colour-vision deficiencies)
*and* by a line dash, a marker symbol and a bar fill pattern, so a grayscale print keeps them apart.
"""

from __future__ import annotations

import datetime as _dt
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "ARM_COLORS",
    "ARM_DASHES",
    "ARM_PATTERNS",
    "ARM_SYMBOLS",
    "FONT_FAMILY",
    "TEMPLATE_NAME",
    "ArmStyle",
    "FigureInfo",
    "arm_styles",
    "finish_figure",
    "figure_info",
    "order_arms",
    "pt_to_px",
    "register_template",
]

#: name under which the house template is registered in ``plotly.io.templates``
TEMPLATE_NAME = "toolkit"
#: fonts installed with Chromium on Debian; Chromium embeds them (subset) in PDF and SVG exports
FONT_FAMILY = "Liberation Sans, DejaVu Sans, Arial, sans-serif"
#: Okabe & Ito (2008) colour-blind-safe palette, darkest first after blue/vermillion
ARM_COLORS: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: line dashes, one per arm, so arms stay apart in grayscale
ARM_DASHES: tuple[str, ...] = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot", "5px,2px,1px,2px")
#: marker symbols, one per arm
ARM_SYMBOLS: tuple[str, ...] = ("circle", "square", "triangle-up", "diamond", "x", "star", "cross")
#: bar fill patterns, one per arm
ARM_PATTERNS: tuple[str, ...] = ("", "/", ".", "x", "\\", "+", "-")

#: page geometry: CSS px per inch, as Chromium prints
PX_PER_INCH = 96.0
#: body text, axis titles and legends (pt)
BASE_FONT_PT = 10.0
#: figure titles (pt)
TITLE_FONT_PT = 12.0
#: footnotes and number-at-risk tables (pt)
SMALL_FONT_PT = 9.0
#: default figure size in inches (fits a portrait page with 1 inch margins)
DEFAULT_WIDTH_IN = 6.5
DEFAULT_HEIGHT_IN = 4.5

_CONTROL_WORDS = ("sham", "placebo", "control", "vehicle", "untreated")


def pt_to_px(points: float) -> float:
    """Convert typographic points (1/72 inch) to plotly's CSS pixels (1/96 inch)."""
    return points * PX_PER_INCH / 72.0


@dataclass(frozen=True)
class ArmStyle:
    """How one treatment arm is drawn in every figure.

    Attributes
    ----------
    color : str
        Line, marker and bar colour (hex).
    dash : str
        Plotly line dash.
    symbol : str
        Plotly marker symbol.
    pattern : str
        Plotly bar pattern shape (``""`` for a solid fill).
    """

    color: str
    dash: str
    symbol: str
    pattern: str

    def line(self, width: float = 2.0) -> dict:
        """Plotly ``line`` properties of this arm."""
        return {"color": self.color, "dash": self.dash, "width": width}

    def marker(self, size: float = 8.0) -> dict:
        """Plotly ``marker`` properties of this arm (open symbols stay visible over lines)."""
        return {"color": self.color, "symbol": self.symbol, "size": size, "line": {"color": self.color, "width": 1}}

    def bar_marker(self) -> dict:
        """Plotly bar ``marker`` properties: colour plus a fill pattern for grayscale prints."""
        return {
            "color": self.color,
            "line": {"color": "#000000", "width": 0.8},
            "pattern": {"shape": self.pattern, "fillmode": "overlay", "fgcolor": "#000000", "fgopacity": 0.6,
                        "size": 6},
        }


def order_arms(arms: Iterable[object]) -> list[str]:
    """Sort arm labels the same way in every figure: active arms alphabetically, then sham/placebo/control.

    Parameters
    ----------
    arms : iterable
        Arm labels (duplicates and missing values are dropped).

    Returns
    -------
    list of str
    """
    unique = {str(a) for a in arms if a is not None and str(a) not in ("", "nan", "<NA>", "None")}

    def key(arm: str) -> tuple[int, str]:
        is_control = any(word in arm.lower() for word in _CONTROL_WORDS)
        return (1 if is_control else 0, arm.lower())

    return sorted(unique, key=key)


def arm_styles(arms: Sequence[str]) -> dict[str, ArmStyle]:
    """Assign colour, dash, symbol and pattern to arms, by position in ``arms``.

    Parameters
    ----------
    arms : sequence of str
        Arm labels in display order (see :func:`order_arms`).

    Returns
    -------
    dict
        ``{arm: ArmStyle}``; styles cycle after seven arms.
    """
    styles = {}
    for i, arm in enumerate(arms):
        styles[str(arm)] = ArmStyle(
            color=ARM_COLORS[i % len(ARM_COLORS)],
            dash=ARM_DASHES[i % len(ARM_DASHES)],
            symbol=ARM_SYMBOLS[i % len(ARM_SYMBOLS)],
            pattern=ARM_PATTERNS[i % len(ARM_PATTERNS)],
        )
    return styles


def register_template() -> go.layout.Template:
    """Register the house template as ``plotly.io.templates["toolkit"]`` (idempotent) and return it.

    The template is not made the global default, so a user's own plots keep their style.
    """
    if TEMPLATE_NAME in pio.templates:
        return pio.templates[TEMPLATE_NAME]
    base = pt_to_px(BASE_FONT_PT)
    axis = {
        "showline": True,
        "linecolor": "#000000",
        "linewidth": 1,
        "mirror": False,
        "ticks": "outside",
        "tickcolor": "#000000",
        "ticklen": 4,
        "showgrid": True,
        "gridcolor": "#E5E5E5",
        "zeroline": False,
        "title": {"font": {"size": base}, "standoff": 6},
        "tickfont": {"size": base},
        "automargin": True,
    }
    template = go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "size": base, "color": "#000000"},
            "title": {"font": {"size": pt_to_px(TITLE_FONT_PT)}, "x": 0.0, "xanchor": "left", "xref": "container",
                      "pad": {"l": 10}},
            "paper_bgcolor": "#FFFFFF",
            "plot_bgcolor": "#FFFFFF",
            "colorway": list(ARM_COLORS),
            "xaxis": axis,
            "yaxis": axis,
            "legend": {"font": {"size": base}, "bgcolor": "rgba(255,255,255,0.8)", "borderwidth": 0},
            "hoverlabel": {"font": {"family": FONT_FAMILY}},
            "annotationdefaults": {"font": {"size": pt_to_px(SMALL_FONT_PT)}},
        },
        data={
            "scatter": [go.Scatter(marker={"size": 7}, line={"width": 2})],
            "bar": [go.Bar(marker={"line": {"color": "#000000", "width": 0.8}})],
        },
    )
    pio.templates[TEMPLATE_NAME] = template
    return template


@dataclass(frozen=True)
class FigureInfo:
    """What a report figure is: kept in ``figure.layout.meta`` so exports and the index can read it.

    Attributes
    ----------
    number : str
        ICH E3 number, e.g. ``"14.2.1"``.
    title : str
        Title without the number.
    source : str
        The data the figure was drawn from.
    program : str
        The function (and toolkit version) that drew it.
    run_time : str
        UTC time the figure was made (ISO 8601).
    kind : str
        The figure function's short name (``"mean_change"``, ``"km"`` …).
    """

    number: str
    title: str
    source: str
    program: str
    run_time: str
    kind: str

    @property
    def full_title(self) -> str:
        """``"Figure <number> <title>"``."""
        return f"Figure {self.number} {self.title}"


def figure_info(fig: go.Figure) -> FigureInfo:
    """Read the :class:`FigureInfo` a figure function stored in ``fig.layout.meta``.

    Raises
    ------
    DataError
        If the figure was not made by a :mod:`toolkit.report` figure function.
    """
    from toolkit.errors import DataError

    meta = fig.layout.meta
    if not isinstance(meta, Mapping) or "number" not in meta:
        raise DataError("figure has no report metadata (layout.meta); make it with a toolkit.report fig_* function")
    return FigureInfo(**{k: str(meta[k]) for k in FigureInfo.__dataclass_fields__})


def _program_name(kind: str) -> str:
    import toolkit

    return f"toolkit.report.fig_{kind} (toolkit {toolkit.__version__})"


def _slanted_tick_space(fig: go.Figure, width_px: float) -> float:
    """Room the bottom axis needs when its category labels do not fit side by side.

    Plotly slants such labels by itself, after the layout is fixed, so the footnotes placed under the axis
    would overlap them. Here the slant is decided up front (30°) and the room it takes is reserved.
    """
    labels = [str(v) for t in fig.data if getattr(t, "x", None) is not None and getattr(t, "xaxis", None)
              in (None, "x") for v in t.x if isinstance(v, str)]
    if not labels:
        return 0.0
    categories = list(dict.fromkeys(labels))
    font = pt_to_px(BASE_FONT_PT)
    longest_px = max(len(c) for c in categories) * font * 0.55
    slot_px = (width_px - 70 - 20 - 160) / len(categories)  # plot width less margins and a legend
    if longest_px <= 0.9 * slot_px:
        return 0.0
    fig.update_layout(xaxis_tickangle=30)
    title_px = font * 1.8 if fig.layout.xaxis.title.text else 0.0
    return 14 + font + longest_px * math.sin(math.radians(30)) + title_px


def finish_figure(
    fig: go.Figure,
    *,
    kind: str,
    number: str,
    title: str,
    source: str,
    program: str | None = None,
    footnotes: Sequence[str] = (),
    run_time: str | None = None,
    width_in: float = DEFAULT_WIDTH_IN,
    height_in: float = DEFAULT_HEIGHT_IN,
    axis_space_px: float = 48.0,
) -> go.Figure:
    """Apply the house style: template, numbered title, footnotes (source, program, run time), size.

    Parameters
    ----------
    fig : Figure
        The figure to finish (changed in place and returned).
    kind : str
        Short name of the figure function, stored in the metadata.
    number, title : str
        ICH E3 number (``"14.2.1"``) and title; shown as ``"Figure 14.2.1 <title>"``.
    source : str
        Source data named in the footnote.
    program : str, optional
        Program named in the footnote; defaults to the figure function and toolkit version.
    footnotes : sequence of str
        Further footnote lines, shown above the source line.
    run_time : str, optional
        Time stamp for the footnote; defaults to now (UTC, to the second).
    width_in, height_in : float
        Figure size in inches (PNG pixels = inches × 300).
    axis_space_px : float
        Room below the plot area for tick labels and the x-axis title before the footnotes start.

    Returns
    -------
    Figure
    """
    from toolkit.errors import DataError

    if not str(number).strip():
        raise DataError("figure number must not be empty (ICH E3 numbering, e.g. '14.2.1')")
    register_template()
    run_time = run_time or _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    program = program or _program_name(kind)
    info = FigureInfo(number=str(number), title=str(title), source=str(source), program=program,
                      run_time=run_time, kind=kind)
    lines = [*footnotes, f"Source: {source}", f"Program: {program}; run {run_time}"]
    width_px = width_in * PX_PER_INCH
    # wrap long titles: about 0.55 em per character of Liberation Sans at the title size
    title_lines = textwrap.wrap(info.full_title, width=max(20, int(width_px / (pt_to_px(TITLE_FONT_PT) * 0.55))))
    top = 22 + pt_to_px(TITLE_FONT_PT) * (1.3 * len(title_lines) + 1.0)
    small = pt_to_px(SMALL_FONT_PT)
    # footnotes start at the plot's left edge (70 px margin) and must stay on the page
    chars = max(30, int((width_px - 80) / (small * 0.5)))
    lines = [part for line in lines for part in (textwrap.wrap(line, width=chars) or [""])]
    line_px = small * 1.35
    axis_space_px = max(axis_space_px, _slanted_tick_space(fig, width_px))
    bottom = axis_space_px + line_px * len(lines) + 12
    fig.update_layout(
        template=TEMPLATE_NAME,
        # plotly anchors a multi-line title by its first line's middle: the top pad must clear half a line
        title={"text": "<br>".join(_escape(t) for t in title_lines), "y": 1.0, "yref": "container",
               "yanchor": "top", "pad": {"t": 10 + pt_to_px(TITLE_FONT_PT), "l": 10}},
        width=round(width_in * PX_PER_INCH),
        height=round(height_in * PX_PER_INCH),
        margin={"l": 70, "r": 20, "t": top, "b": bottom},
        meta={**info.__dict__},
    )
    _wrap_axis_titles(fig, plot_height_px=height_in * PX_PER_INCH - top - bottom)
    fig.add_annotation(
        text="<br>".join(_escape(line) for line in lines),
        xref="paper", yref="paper", x=0.0, y=0.0, xanchor="left", yanchor="top",
        yshift=-axis_space_px, align="left", showarrow=False,
        font={"size": small, "family": FONT_FAMILY}, name="footnotes",
    )
    return fig


def _wrap_axis_titles(fig: go.Figure, *, plot_height_px: float) -> None:
    """Break a vertical axis title that is longer than the plot is high (it would run into the title)."""
    chars = max(12, int(plot_height_px / (pt_to_px(BASE_FONT_PT) * 0.55)))
    for name in [k for k in fig.layout if k.startswith("yaxis")]:
        axis = fig.layout[name]
        text = axis.title.text if axis.title is not None else None
        if text and "<br>" not in text and len(text) > chars:
            fig.layout[name].title.text = "<br>".join(textwrap.wrap(text, width=chars))


def _escape(text: str) -> str:
    # plotly annotations speak a small HTML subset; keep user text literal
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


register_template()
