"""Running a session from JupyterLab: a live plot, a Stop button and a Confirm button.

A notebook cell cannot block on a button (the kernel would never see the click), so
:class:`SessionPanel` runs :func:`~toolkit.delivery.run_session` in a background thread: the live plotly trace
updates as captures arrive, **Stop** sets the session's :class:`~toolkit.delivery.stop.StopToken` (the output
goes off and is read back, as on Ctrl+C), and **Confirm** answers the operator's questions (dummy load
connected, electrodes placed). ipywidgets is needed only here.

>>> panel = SessionPanel("studies/epmc-demo", "S-001", 3)       # doctest: +SKIP
>>> panel.start()                                               # doctest: +SKIP
>>> panel.widget                                                # doctest: +SKIP
>>> panel.wait().outcome                                        # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import Any

from toolkit.delivery.operator import ConfirmRequest
from toolkit.delivery.progress import NotebookProgress, ProgressEvent
from toolkit.delivery.record import DeliveryRecord
from toolkit.delivery.stop import StopToken

__all__ = ["SessionPanel"]


class SessionPanel:
    """A session running in the background with notebook controls.

    Parameters
    ----------
    study, subject_id, session_number
        As for :func:`~toolkit.delivery.run_session`.
    auto_confirm : bool
        Confirm the operator steps automatically (simulation on the twin only; refused otherwise by
        :func:`~toolkit.delivery.run_session`, which then needs a person).
    **kwargs
        Further keyword arguments of :func:`~toolkit.delivery.run_session` (``bench``, ``twin``,
        ``settings`` ...).
    """

    def __init__(self, study: Any, subject_id: str, session_number: int, *, auto_confirm: bool = False,
                 **kwargs: Any) -> None:
        import ipywidgets as widgets

        self.stop_token = StopToken()
        self.plot = NotebookProgress()
        self.status = widgets.HTML("ready")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.confirm_button = widgets.Button(description="Confirm", button_style="warning", disabled=True)
        self.stop_button.on_click(lambda _: self.stop_token.stop("notebook Stop button"))
        self.confirm_button.on_click(lambda _: self._answer(True))
        self.widget = widgets.VBox([widgets.HBox([self.stop_button, self.confirm_button]), self.status,
                                    self.plot.widget])
        self._args = (study, subject_id, session_number)
        self._kwargs = kwargs
        self._auto = auto_confirm
        self._answered = threading.Event()
        self._answer_value = False
        self._thread: threading.Thread | None = None
        #: the session's record once it ended
        self.record: DeliveryRecord | None = None
        #: the exception that ended the session, if any (a refusal, a bad file ...)
        self.error: BaseException | None = None

    def _answer(self, value: bool) -> None:
        self._answer_value = value
        self.confirm_button.disabled = True
        self._answered.set()

    def _confirm(self, request: ConfirmRequest) -> bool:
        self.status.value = f"<b>operator:</b> {request.message}"
        self._answered.clear()
        self.confirm_button.disabled = False
        while not self._answered.wait(0.2):
            if self.stop_token.stopped:
                return False
        return self._answer_value

    def _progress(self, event: ProgressEvent) -> None:
        self.plot(event)
        if event.phase != "capture":
            self.status.value = f"{event.phase}: {event.message}"

    def _run(self) -> None:
        from toolkit.delivery.runner import run_session

        kwargs = dict(self._kwargs)
        if not self._auto:
            kwargs.setdefault("confirm", self._confirm)
        try:
            self.record = run_session(*self._args, stop=self.stop_token, progress=self._progress, **kwargs)
            self.status.value = "<pre>" + self.record.summary() + "</pre>"
        except BaseException as exc:  # shown in the panel; the thread must not die silently
            self.error = exc
            self.status.value = f"<b>not delivered:</b> {exc}"
        finally:
            self.stop_button.disabled = True
            self.confirm_button.disabled = True

    def start(self) -> SessionPanel:
        """Start the session in the background and return the panel (display :attr:`widget`)."""
        if self._thread is not None:
            raise RuntimeError("this panel already ran its session; make a new SessionPanel")
        self._thread = threading.Thread(target=self._run, name="delivery-session", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout_s: float | None = None) -> DeliveryRecord | None:
        """Block until the session ended (for scripts and tests); return its record."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error
        return self.record
