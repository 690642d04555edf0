"""The operator's part of a session: connecting the dummy load, placing the electrodes.

The runner asks before each physical step through a ``confirm`` callback that receives a
:class:`ConfirmRequest` and returns ``True`` to go on (``False`` aborts the session, nothing delivered to the
subject). A terminal uses :class:`PromptOperator`; simulation uses :class:`TwinOperator`, which moves the
digital twin's load itself and always confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfirmCallback", "ConfirmRequest", "PromptOperator", "TwinOperator"]


@dataclass(frozen=True)
class ConfirmRequest:
    """A question to the operator.

    Attributes
    ----------
    kind : {'dummy_load', 'electrodes'}
        ``dummy_load``: connect the bench's dummy load for verification; ``electrodes``: electrodes are
        placed on the subject as listed.
    subject_id, arm_id, side : str
        Who and what (the arm id is shown only to unblinded staff by the callers that need blinding).
    placement : list of str
        Electrode pairs, e.g. ``["cheek_l – jawline_l"]``.
    message : str
        The full question.
    """

    kind: str
    subject_id: str
    arm_id: str
    side: str | None
    placement: list[str] = field(default_factory=list)
    message: str = ""


ConfirmCallback = Callable[[ConfirmRequest], bool]


class TwinOperator:
    """The simulated operator: switches the twin's load (dummy resistor or skin) and confirms every step.

    The twin has one skin model; placing the electrodes on another subject (or side) puts that skin's own
    state in place — intact the first time, else as it recovered since its last session — so one subject's
    electroporated skin never carries over to the next.
    """

    def __init__(self, twin: Any | None = None) -> None:
        self.twin = twin
        #: requests seen, in order (for tests and logs)
        self.requests: list[ConfirmRequest] = []

    def __call__(self, request: ConfirmRequest) -> bool:
        """Do what the request asks on the twin and return ``True``."""
        self.requests.append(request)
        if self.twin is not None:
            model = self.twin.model
            if request.kind == "electrodes":
                self._place_on(model, (request.subject_id, request.side))
            model.set_load("dummy" if request.kind == "dummy_load" else "skin")
        return True

    @staticmethod
    def _place_on(model: Any, who: tuple[str, str | None]) -> None:
        current = model.skin_owner
        if current == who:
            return
        if current is not None:
            model.saved_skins[current] = model.skin_state()
        model.set_skin_state(model.saved_skins.get(who))
        model.skin_owner = who


class PromptOperator:
    """Asks in the terminal (``typer.confirm``); answering no aborts before anything reaches the subject."""

    def __call__(self, request: ConfirmRequest) -> bool:
        """Print the request and wait for yes/no."""
        import typer

        return bool(typer.confirm(request.message, default=False))
