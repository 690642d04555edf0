"""Why a session stops early, and the rules that decide it.

The abort rules look at each live capture's measures and at the stimulator's error queue. They are pure:
measures and tolerances in, an :class:`Abort` (or ``None``) out, so every rule is tested without a bench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from instruments.units import format_quantity

__all__ = ["Abort", "AbortReason", "AbortRules", "SessionAborted"]


class AbortReason(StrEnum):
    """Reasons a started session ends before it was delivered as prescribed."""

    #: measured output differs from the prescription by more than the study's tolerance
    DEVIATION = "deviation"
    #: impedance above the study's maximum: an electrode lifted or lost contact
    ELECTRODE_LIFTED = "electrode_lifted"
    #: impedance below the study's minimum: electrodes shorted
    ELECTRODE_SHORT = "electrode_short"
    #: the stimulator or scope reported an error, or a read-back disagreed
    INSTRUMENT_ERROR = "instrument_error"
    #: an instrument stopped answering (timeout, dropped connection, garbled reply)
    CONNECTION_LOST = "connection_lost"
    #: the operator stopped the session (Ctrl+C, notebook Stop button)
    OPERATOR_STOP = "operator_stop"
    #: the dummy-load check failed before anything touched the subject
    VERIFICATION_FAILED = "verification_failed"
    #: the operator did not confirm electrode placement
    NOT_CONFIRMED = "not_confirmed"
    #: sham session: the output was found on
    SHAM_OUTPUT_ON = "sham_output_on"
    #: the bench delivered less than prescribed (bursts cut, ignored or not started in time)
    UNDER_DELIVERED = "under_delivered"
    #: anything else (a defect); the message says what
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class Abort:
    """A decision to abort: the reason and a human-readable explanation with the numbers."""

    reason: AbortReason
    message: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"


class SessionAborted(Exception):
    """Raised inside the runner to leave the delivery loop; carries the :class:`Abort`."""

    def __init__(self, abort: Abort) -> None:
        super().__init__(str(abort))
        self.abort = abort


@dataclass(frozen=True)
class AbortRules:
    """Live-capture rules of one session.

    Parameters
    ----------
    impedance_ohm_min, impedance_ohm_max : float
        Accepted electrode impedance range; below is a short, above a lifted electrode.
    current_rel : float
        Accepted relative deviation of the measured r.m.s. (MC) or peak (EP) current from the expected value.
    amplitude_rel : float
        Accepted relative deviation of the measured peak voltage from the expected value (EP).
    consecutive : int
        Number of consecutive captures that must break the same rule before aborting (1 = first capture);
        an impedance excursion of one noisy capture then does not end a session.
    """

    impedance_ohm_min: float
    impedance_ohm_max: float
    current_rel: float
    amplitude_rel: float = 0.1
    consecutive: int = 1

    def __post_init__(self) -> None:
        if not (0 <= self.impedance_ohm_min < self.impedance_ohm_max):
            raise ValueError(
                f"impedance range must satisfy 0 <= min < max, got {self.impedance_ohm_min}..{self.impedance_ohm_max}"
            )
        if self.current_rel <= 0 or self.amplitude_rel <= 0:
            raise ValueError("tolerances must be positive fractions")
        if self.consecutive < 1:
            raise ValueError("consecutive must be at least 1")

    def check_impedance(self, impedance_ohm: float | None) -> Abort | None:
        """Abort when the impedance is outside the accepted range (``None``/NaN: nothing measured)."""
        if impedance_ohm is None or math.isnan(impedance_ohm):
            return None
        if impedance_ohm > self.impedance_ohm_max:
            return Abort(
                AbortReason.ELECTRODE_LIFTED,
                f"impedance {format_quantity(impedance_ohm, 'Ω')} above the study maximum "
                f"{format_quantity(self.impedance_ohm_max, 'Ω')} "
                "(electrode lifted or dry?)",
            )
        if impedance_ohm < self.impedance_ohm_min:
            return Abort(
                AbortReason.ELECTRODE_SHORT,
                f"impedance {format_quantity(impedance_ohm, 'Ω')} below the study minimum "
                f"{format_quantity(self.impedance_ohm_min, 'Ω')} "
                "(electrodes shorted?)",
            )
        return None

    def check_deviation(
        self, name: str, measured: float | None, expected: float, rel_tol: float, *, unit: str
    ) -> Abort | None:
        """Abort when ``measured`` differs from ``expected`` by more than ``rel_tol`` (relative).

        ``unit`` is the symbol of both values in their base unit (``"A"``, ``"s"``, ``"Hz"`` …); the message
        writes them with an SI prefix (``12.3 mA``), never as bare numbers.
        """
        if expected == 0:
            return None
        want = format_quantity(expected, unit)
        if measured is None or math.isnan(measured):
            return Abort(AbortReason.DEVIATION, f"{name} could not be measured (expected {want})")
        rel = abs(measured - expected) / abs(expected)
        if rel > rel_tol:
            return Abort(
                AbortReason.DEVIATION,
                f"{name} measured {format_quantity(measured, unit)}, expected {want} "
                f"({rel * 100:.1f} % off, tolerance {rel_tol * 100:.1f} %)",
            )
        return None


class RuleDebouncer:
    """Counts consecutive breaks of each rule; fires once a rule broke ``consecutive`` times in a row."""

    def __init__(self, consecutive: int) -> None:
        self._need = consecutive
        self._counts: dict[AbortReason, int] = {}

    def feed(self, aborts: list[Abort]) -> Abort | None:
        """Feed the breaks of one capture; return the abort to act on, if any."""
        first: dict[AbortReason, Abort] = {}
        for abort in aborts:
            first.setdefault(abort.reason, abort)
        for reason in list(self._counts):
            if reason not in first:
                del self._counts[reason]
        # one count per capture and reason; the earliest listed reason wins a tie
        fired = None
        for reason, abort in first.items():
            self._counts[reason] = self._counts.get(reason, 0) + 1
            if fired is None and self._counts[reason] >= self._need:
                fired = abort
        return fired
