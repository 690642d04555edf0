"""Live progress of a session: a terminal progress bar or a live notebook plot.

The runner calls a progress callback with a :class:`ProgressEvent` at every step change and every capture.
Any callable works; :class:`RichProgress` draws a bar in a terminal and :class:`NotebookProgress` a live
plotly ``FigureWidget`` of current and impedance (needs ipywidgets; imported only when used). A failing
progress display never stops or prolongs stimulation: the runner swallows its errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NotebookProgress", "ProgressCallback", "ProgressEvent", "RichProgress"]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress update.

    Attributes
    ----------
    phase : str
        Session state (``"delivering"``, ``"ramping_up"``, ...) or ``"capture"`` for a live capture.
    t_s : float
        Session (clock) time in seconds since the first output was enabled (0 before).
    total_s : float
        Prescribed delivery time in seconds, ramps included.
    current_A, impedance_ohm : float or None
        Latest live measures (``None`` before the first capture).
    message : str
        A human-readable line for logs.
    measures : dict
        All measures of the latest capture.
    """

    phase: str
    t_s: float
    total_s: float
    current_A: float | None = None
    impedance_ohm: float | None = None
    message: str = ""
    measures: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


class RichProgress:
    """A rich progress bar for the terminal; use as a context manager and pass as ``progress=``.

    Examples
    --------
    >>> with RichProgress(transient=True) as bar:  # doctest: +SKIP
    ...     run_session(study, "S-001", 3, progress=bar)
    """

    def __init__(self, *, console: Any = None, transient: bool = False) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.fields[phase]:<20}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f} %"),
            TextColumn("{task.fields[live]}"),
            TimeRemainingColumn(),
            console=console,
            transient=transient,
        )
        self._console = self._progress.console
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task("session", total=1.0, phase="starting", live="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        """Update the bar from one event."""
        if self._task is None:
            return
        live = ""
        if event.current_A is not None:
            live = f"I {event.current_A * 1e6:8.1f} uA"
        if event.impedance_ohm is not None:
            live += f"  Z {event.impedance_ohm / 1e3:7.2f} kohm"
        completed = min(event.t_s / event.total_s, 1.0) if event.total_s > 0 else 0.0
        self._progress.update(
            self._task, completed=completed, phase=event.phase if event.phase != "capture" else "delivering",
            live=live,
        )
        if event.message and event.phase not in ("capture",):
            self._console.print(f"[dim]{event.t_s:7.1f} s[/] {event.message}", highlight=False)


class NotebookProgress:
    """A live plotly trace of current (µA) and impedance (kΩ) for JupyterLab.

    Display :attr:`widget` in a cell, then pass the object as ``progress=``. With ``anywidget`` installed
    the figure is a live ``FigureWidget``; without it, a static figure is redrawn in an ipywidgets
    ``Output`` at most every ``redraw_s`` seconds. ``max_points`` bounds the trace length so a long session
    keeps the browser responsive.
    """

    def __init__(self, *, max_points: int = 2000, redraw_s: float = 0.5) -> None:
        import plotly.graph_objects as go

        self.max_points = max_points
        self.redraw_s = redraw_s
        self._last_draw = 0.0
        try:
            self.figure = go.FigureWidget()
            self.live = True
        except ImportError:  # plotly ≥ 6 needs anywidget for FigureWidget
            self.figure = go.Figure()
            self.live = False
        self.figure.add_scatter(name="current (uA)", mode="lines", x=[], y=[])
        self.figure.add_scatter(name="impedance (kohm)", mode="lines", x=[], y=[], yaxis="y2")
        self.figure.update_layout(
            xaxis_title="session time (s)",
            yaxis={"title": "current (uA)"},
            yaxis2={"title": "impedance (kohm)", "overlaying": "y", "side": "right"},
            title="delivery: starting",
            height=320,
        )
        self.output: Any = None
        if self.live:
            self.widget: Any = self.figure
        else:
            try:
                import ipywidgets

                self.output = ipywidgets.Output()
                self.widget = self.output
            except ImportError:
                self.widget = self.figure

    def __call__(self, event: ProgressEvent) -> None:
        """Append the latest measures to the traces."""
        import time

        title = f"delivery: {event.phase} — {event.t_s:.0f} / {event.total_s:.0f} s"
        cur, imp = self.figure.data
        with self.figure.batch_update():
            self.figure.layout.title = title
            if event.phase == "capture":
                x = (*cur.x, event.t_s)[-self.max_points:]
                cur.x = x
                cur.y = (*cur.y, None if event.current_A is None else event.current_A * 1e6)[-self.max_points:]
                imp.x = x
                imp.y = (*imp.y, None if event.impedance_ohm is None else event.impedance_ohm / 1e3)[
                    -self.max_points:
                ]
        now = time.monotonic()
        if self.output is not None and (now - self._last_draw >= self.redraw_s or event.phase != "capture"):
            self._last_draw = now
            from IPython.display import display

            with self.output:
                self.output.clear_output(wait=True)
                display(self.figure)
