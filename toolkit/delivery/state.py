"""The session state machine: which step may follow which.

Every session walks the same path; a transition that is not listed here is a programming error and is
refused loudly, so a refactoring can never, say, enable the output before the dummy-load check passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["IllegalTransition", "SessionState", "SessionStateMachine", "StateChange"]


class SessionState(StrEnum):
    """Steps of one delivery session, in order."""

    CREATED = "created"
    ELIGIBLE = "eligible"
    RECORD_OPEN = "record_open"
    PREFLIGHT_OK = "preflight_ok"
    CONFIGURED = "configured"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    ELECTRODES_CONFIRMED = "electrodes_confirmed"
    RAMPING_UP = "ramping_up"
    DELIVERING = "delivering"
    RAMPING_DOWN = "ramping_down"
    OUTPUT_OFF = "output_off"
    COMPLETED = "completed"
    ABORTING = "aborting"
    ABORTED = "aborted"
    OUTPUT_STATE_UNKNOWN = "output_state_unknown"
    REFUSED = "refused"


_S = SessionState
#: the legal forward path; before the record is open a session may only be refused, after it only aborted
_NEXT: dict[SessionState, frozenset[SessionState]] = {
    _S.CREATED: frozenset({_S.ELIGIBLE, _S.REFUSED}),
    _S.ELIGIBLE: frozenset({_S.RECORD_OPEN, _S.REFUSED}),
    _S.RECORD_OPEN: frozenset({_S.PREFLIGHT_OK, _S.ABORTING}),
    _S.PREFLIGHT_OK: frozenset({_S.CONFIGURED, _S.ABORTING}),
    _S.CONFIGURED: frozenset({_S.VERIFYING, _S.ABORTING}),
    _S.VERIFYING: frozenset({_S.VERIFIED, _S.ABORTING}),
    _S.VERIFIED: frozenset({_S.ELECTRODES_CONFIRMED, _S.ABORTING}),
    _S.ELECTRODES_CONFIRMED: frozenset({_S.RAMPING_UP, _S.DELIVERING, _S.ABORTING}),
    # ramps that meet (ramp up + ramp down = the whole session) go straight from one to the other
    _S.RAMPING_UP: frozenset({_S.DELIVERING, _S.RAMPING_DOWN, _S.ABORTING}),
    _S.DELIVERING: frozenset({_S.RAMPING_DOWN, _S.OUTPUT_OFF, _S.ABORTING}),
    _S.RAMPING_DOWN: frozenset({_S.OUTPUT_OFF, _S.ABORTING}),
    _S.OUTPUT_OFF: frozenset({_S.COMPLETED, _S.ABORTING}),
    _S.ABORTING: frozenset({_S.ABORTED, _S.OUTPUT_STATE_UNKNOWN}),
    _S.COMPLETED: frozenset(),
    _S.ABORTED: frozenset(),
    _S.OUTPUT_STATE_UNKNOWN: frozenset(),
    _S.REFUSED: frozenset(),
}

#: states in which the stimulator output may be enabled
OUTPUT_ALLOWED = frozenset({_S.VERIFYING, _S.RAMPING_UP, _S.DELIVERING, _S.RAMPING_DOWN})


class IllegalTransition(RuntimeError):
    """A session tried to skip or reorder its steps (a defect, never a user error)."""


@dataclass(frozen=True)
class StateChange:
    """One transition: the new state, the session time it happened and why."""

    state: SessionState
    t_s: float
    note: str = ""


@dataclass
class SessionStateMachine:
    """Tracks the current state and the history of a session.

    Examples
    --------
    >>> sm = SessionStateMachine()
    >>> sm.advance(SessionState.ELIGIBLE, t_s=0.0)
    >>> sm.state
    <SessionState.ELIGIBLE: 'eligible'>
    >>> sm.advance(SessionState.DELIVERING, t_s=1.0)
    Traceback (most recent call last):
    ...
    toolkit.delivery.state.IllegalTransition: eligible -> delivering is not a legal session step
    """

    state: SessionState = SessionState.CREATED
    history: list[StateChange] = field(default_factory=list)

    def advance(self, new: SessionState, *, t_s: float, note: str = "") -> None:
        """Move to ``new``; raise :class:`IllegalTransition` when that step may not follow the current one."""
        if new not in _NEXT[self.state]:
            raise IllegalTransition(f"{self.state} -> {new} is not a legal session step")
        self.state = new
        self.history.append(StateChange(new, t_s, note))

    @property
    def finished(self) -> bool:
        """Whether the session reached a final state."""
        return not _NEXT[self.state]

    @property
    def output_allowed(self) -> bool:
        """Whether the current state allows the stimulator output to be on."""
        return self.state in OUTPUT_ALLOWED

    def can_abort(self) -> bool:
        """Whether an abort is a legal next step (the record is open and the session not finished)."""
        return SessionState.ABORTING in _NEXT[self.state]

    def as_list(self) -> list[dict[str, object]]:
        """The history as plain dictionaries (for the record's verification field)."""
        return [{"state": c.state.value, "t_s": round(c.t_s, 6), "note": c.note} for c in self.history]
