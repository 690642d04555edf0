"""Starting a treatment session from the site's notebook: choose the subject and the session, then the
:class:`~toolkit.delivery.notebook.SessionPanel` runs it with its live trace, Stop and Confirm buttons.

Everything the command line checks is checked the same way (:func:`~toolkit.delivery.run_session` is called
with the form's store): eligibility, an unresolved serious adverse event, the session window, the safety
envelope; a refusal is shown in the panel, never as a traceback.
"""

from __future__ import annotations

import html
from typing import Any

from toolkit.site.fields import FormBase, subject_options

__all__ = ["SessionLauncher"]


class SessionLauncher(FormBase):
    """Pick a randomised subject and a session, start it in a :class:`SessionPanel`.

    Parameters
    ----------
    store : Store
        The logged-in store (an operator or investigator).
    twin : TwinBench, optional
        A running digital twin: sessions run on it in simulated time, and the operator's confirmations are
        given by a simulated operator. Without it the bench is ``bench`` and a person confirms.
    **session_kwargs
        Further arguments of :func:`~toolkit.delivery.run_session` (``bench``, ``settings`` …).
    """

    form = "session"

    def __init__(self, store: Any, *, twin: Any = None, **session_kwargs: Any) -> None:
        import ipywidgets as widgets

        super().__init__(store)
        self.twin = twin
        self.kwargs = session_kwargs
        sessions = store.info.sessions_planned or 1
        self.subject = self.field("subject", "Subject", widgets.Dropdown(options=subject_options(store, allocated=True), value=None)).widget
        self.session = self.field("session_number", "Session", widgets.Dropdown(
            options=[(f"session {n}", n) for n in range(1, sessions + 1)], value=1)).widget
        self.repeat = self.field("repeat", "Repeat", widgets.Checkbox(
            value=False, indent=False, description="deliver a completed session again (a new linked record)")).widget
        self.button = widgets.Button(description="Start session", button_style="success", icon="play")
        self.button.add_class("epmc-session-start")
        self.button.on_click(lambda _: self.start())
        self.refresh_button = widgets.Button(description="Reload subjects", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.panel_box = widgets.VBox([])
        self.panel_box.add_class("epmc-session-panel")
        #: the panel of the session started last
        self.panel: Any = None
        where = "the digital twin (simulated operator)" if twin is not None else "the bench"
        self.widget = widgets.VBox([
            widgets.HTML(f"<h3>Treatment session</h3><p>On {html.escape(where)}. The session runs in the "
                         "background: <b>Stop</b> switches the output off and reads it back.</p>"),
            *[f.row for f in self.fields.values()], widgets.HBox([self.button, self.refresh_button]),
            self.status, self.panel_box])

    def refresh(self) -> None:
        """Reload the randomised subjects."""
        self.reload_subjects(self.subject, allocated=True)

    def start(self) -> bool:
        """Start the chosen session in a new panel (refusals beside the fields or in the panel)."""
        from toolkit.delivery.notebook import SessionPanel

        if self.panel is not None and self.panel._thread is not None and self.panel._thread.is_alive():
            self.fields["subject"].show("a session is running; wait for it to end or press Stop")
            return False

        def launch() -> Any:
            from toolkit.errors import DataError

            if self.subject.value is None:
                raise DataError("choose a randomised subject", field="subject")
            study = self.store.study if self.store.study is not None else self.store.study_id
            panel = SessionPanel(study, self.subject.value, int(self.session.value), store=self.store,
                                 twin=self.twin, auto_confirm=self.twin is not None,
                                 repeat=bool(self.repeat.value), **self.kwargs)
            return panel.start()

        def shown(panel: Any) -> None:
            self.panel = panel
            self.panel_box.children = [panel.widget]
            self.say(f"session {self.session.value} of {html.escape(self.subject.value)} started")

        return self.submit_with(launch, on_success=shown)

    def wait(self, timeout_s: float | None = None) -> Any:
        """Block until the session started last has ended; return its record (``None`` when refused)."""
        if self.panel is None:
            return None
        try:
            return self.panel.wait(timeout_s)
        except Exception:  # the refusal is shown in the panel
            return None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
